"""GeneticSearch on the in-memory toy chain space (tests/search_toys.py): defaults, budget, cache, elitism."""
import pytest

from arch_gpt.errors import UserInputError
from arch_gpt.search.strategies import create_strategy
from arch_gpt.search.strategies.genetic import GeneticSearch
from search_toys import ChainSpace, ToyEvaluator


def test_paper_defaults():
    ga = GeneticSearch(ChainSpace(), ToyEvaluator())
    assert (ga.population, ga.generations, ga.crossover_rate, ga.mutation_rate) == (30, 20, 0.7, 0.5)
    assert ga.budget == 600 and ga.elitism == 1


def test_runs_population_times_generations_and_improves():
    ev = ToyEvaluator()
    result = GeneticSearch(ChainSpace(), ev, population=8, generations=6, seed=0).run(progress=False)
    assert result.evaluations == 48 and result.generations == 6
    assert [len(b) for b in ev.batches][0] == 8
    first = max(h.fitness for h in result.history[:8])
    assert result.best.fitness >= first
    assert result.best.fitness == 1.0  # conv3 everywhere is the toy optimum


def test_budget_cuts_last_generation():
    result = GeneticSearch(ChainSpace(), ToyEvaluator(), population=5, budget=13, seed=0).run(progress=False)
    assert result.evaluations == 13
    assert [h.generation for h in result.history].count(2) == 3


def test_repeated_keys_are_cached_not_reevaluated():
    ev = ToyEvaluator()
    space = ChainSpace(length=2)  # 16 genomes only, so repeats are unavoidable
    result = GeneticSearch(space, ev, population=6, generations=6, seed=3).run(progress=False)
    seen = [k for batch in ev.batches for k in batch]
    assert len(seen) == len(set(seen)) <= 16
    assert result.evaluations == 36
    assert sum(h.cached for h in result.history) == 36 - len(seen)
    assert all(h.cost_s == 0.0 for h in result.history if h.cached)


def test_elitism_keeps_the_best():
    bests = []
    ga = GeneticSearch(ChainSpace(), ToyEvaluator(), population=6, generations=8, seed=5)
    ga.run(progress=False, on_generation=lambda s: bests.append(max(i.fitness for i in s.population)))
    assert bests == sorted(bests)


def test_offspring_origins_and_parents():
    result = GeneticSearch(ChainSpace(), ToyEvaluator(), population=6, generations=3, seed=1).run(progress=False)
    gen0 = [h for h in result.history if h.generation == 0]
    later = [h for h in result.history if h.generation > 0]
    assert {h.origin for h in gen0} == {"sample"} and all(h.parents == () for h in gen0)
    assert all(h.parents for h in later)
    assert {h.origin for h in later} <= {"crossover", "mutation", "crossover+mutation", "copy"}


def test_same_seed_same_run_other_seed_other_run():
    def keys(seed):
        r = GeneticSearch(ChainSpace(), ToyEvaluator(), population=6, generations=3, seed=seed).run(progress=False)
        return [h.key for h in r.history]
    assert keys(7) == keys(7)
    assert keys(7) != keys(8)


def test_registry_builds_it():
    ga = create_strategy("ga", space=ChainSpace(), evaluator=ToyEvaluator(), population=4, generations=2)
    assert isinstance(ga, GeneticSearch) and ga.budget == 8


class Recorder:
    """A reconstructor that sets unit 0 to conv3 and records what it was given."""
    def __init__(self):
        self.calls = []

    def reconstruct(self, space, candidates, progress, rng):
        from dataclasses import replace
        self.calls.append((progress, [c.key for c in candidates]))
        out = []
        for c in candidates:
            g = ("conv3",) + tuple(c.genome[1:])
            out.append(replace(c, genome=g, key=space.key(g), predicted_units=(0,)))
        return out


def test_every_new_individual_is_reconstructed_before_evaluation():
    rec = Recorder()
    result = GeneticSearch(ChainSpace(), ToyEvaluator(), rec, population=4, generations=3, seed=0).run(progress=False)
    assert [len(keys) for _, keys in rec.calls] == [4, 4, 4]
    assert [p for p, _ in rec.calls] == [0.0, 4 / 12, 8 / 12]
    assert all(h.key.startswith("conv3") and h.predicted_units == (0,) for h in result.history)
    assert result.strategy == "ga+gpt"


@pytest.mark.parametrize("kwargs", [{"population": 1}, {"generations": 0}, {"crossover_rate": 1.5},
                                    {"mutation_rate": -0.1}, {"elitism": 40}, {"budget": 0}])
def test_bad_settings_are_user_errors(kwargs):
    with pytest.raises(UserInputError):
        GeneticSearch(ChainSpace(), ToyEvaluator(), **kwargs)
