"""RandomSearch on the in-memory toy chain space (tests/search_toys.py)."""
import pytest

from arch_gpt.errors import UserInputError
from arch_gpt.search.strategies import create_strategy
from arch_gpt.search.strategies.random import RandomSearch
from search_toys import ChainSpace, ToyEvaluator


def test_spends_the_budget_in_batches_of_new_samples():
    ev = ToyEvaluator()
    result = RandomSearch(ChainSpace(), ev, budget=25, batch_size=10, seed=0).run(progress=False)
    assert result.evaluations == 25 and [len(b) for b in ev.batches] == [10, 10, 5]
    keys = [h.key for h in result.history]
    assert len(set(keys)) == 25  # 256 genomes: novelty retries avoid repeats
    assert {h.origin for h in result.history} == {"sample"}
    assert result.best.fitness == max(h.fitness for h in result.history)


def test_best_is_first_of_ties():
    result = RandomSearch(ChainSpace(length=1), ToyEvaluator(), budget=8, batch_size=4, seed=0).run(progress=False)
    best = [h for h in result.history if h.fitness == result.best.fitness]
    assert result.best.candidate.key == best[0].key


def test_reconstructor_sees_every_sample():
    calls = []

    class Identity:
        def reconstruct(self, space, candidates, progress, rng):
            calls.append(len(candidates))
            return list(candidates)
    RandomSearch(ChainSpace(), ToyEvaluator(), Identity(), budget=7, batch_size=3).run(progress=False)
    assert calls == [3, 3, 1]


def test_registry_name():
    assert isinstance(create_strategy("random", space=ChainSpace(), evaluator=ToyEvaluator(), budget=3), RandomSearch)


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"budget": 0}, {"novelty_retries": -1}])
def test_bad_settings(kwargs):
    with pytest.raises(UserInputError):
        RandomSearch(ChainSpace(), ToyEvaluator(), **kwargs)
