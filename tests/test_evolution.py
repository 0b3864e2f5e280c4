"""RegularizedEvolution (aging evolution) on the in-memory toy chain space (tests/search_toys.py)."""
import pytest

from arch_gpt.errors import UserInputError
from arch_gpt.search.strategies import create_strategy
from arch_gpt.search.strategies.evolution import RegularizedEvolution
from search_toys import ChainSpace, ToyEvaluator


def test_population_is_the_youngest_individuals():
    snapshots = []
    re = RegularizedEvolution(ChainSpace(), ToyEvaluator(), population=6, sample_size=3, children_per_generation=2,
                              budget=16, seed=0)
    result = re.run(progress=False, on_generation=lambda s: snapshots.append([i.candidate.key for i in s.population]))
    assert result.evaluations == 16
    assert [len(s) for s in snapshots] == [6] * 6
    assert snapshots[-1] == [h.key for h in result.history[-6:]]


def test_child_mutates_the_fittest_of_the_sample():
    snapshots = []
    re = RegularizedEvolution(ChainSpace(), ToyEvaluator(), population=5, sample_size=5, children_per_generation=1,
                              budget=8, seed=2)
    result = re.run(progress=False, on_generation=lambda s: snapshots.append(list(s.population)))
    for gen in range(1, len(snapshots)):
        pop = snapshots[gen - 1]
        best = max(pop, key=lambda i: i.fitness).fitness
        child = result.history[4 + gen]
        parent = next(i for i in pop if i.candidate.key == child.parents[0])
        assert parent.fitness == best and child.origin == "mutation"


def test_registry_name():
    re = create_strategy("re", space=ChainSpace(), evaluator=ToyEvaluator(), population=4, sample_size=2, budget=6)
    assert isinstance(re, RegularizedEvolution)


@pytest.mark.parametrize("kwargs", [{"population": 1}, {"sample_size": 0}, {"sample_size": 31},
                                    {"children_per_generation": 0}])
def test_bad_settings(kwargs):
    with pytest.raises(UserInputError):
        RegularizedEvolution(ChainSpace(), ToyEvaluator(), **kwargs)
