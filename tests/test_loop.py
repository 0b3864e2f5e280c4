"""The search loop's outputs, checkpoints and resume, on the in-memory toy space (tests/search_toys.py)."""
import json
from dataclasses import dataclass

import pytest

from arch_gpt.encoding import Architecture
from arch_gpt.errors import UserInputError
from arch_gpt.search.checkpoint import CheckpointError, decode_genome, encode_genome
from arch_gpt.search.protocols import FitnessRecord
from arch_gpt.search.strategies.evolution import RegularizedEvolution
from arch_gpt.search.strategies.genetic import GeneticSearch
from arch_gpt.search.strategies.random import RandomSearch
from search_toys import ChainSpace, ToyEvaluator

MAKERS = {
    "ga": lambda seed=0: GeneticSearch(ChainSpace(), ToyEvaluator(), population=5, generations=5, seed=seed),
    "random": lambda seed=0: RandomSearch(ChainSpace(), ToyEvaluator(), budget=20, batch_size=4, seed=seed),
    "re": lambda seed=0: RegularizedEvolution(ChainSpace(), ToyEvaluator(), population=5, sample_size=2,
                                              children_per_generation=3, budget=20, seed=seed),
}


class Killed(Exception):
    pass


def _kill_after(generation):
    def callback(state):
        if state.generation == generation:
            raise Killed
    return callback


def _comparable(out):
    result = json.loads((out / "result.json").read_text())
    result.pop("timings")
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    for h in history:
        h.pop("cost_s")
    return result, history


def test_output_folder(tmp_path):
    result = MAKERS["ga"]().run(tmp_path, progress=False)
    data = json.loads((tmp_path / "result.json").read_text())
    assert {"strategy", "space", "seed", "evaluations", "best", "timings"} <= set(data)
    assert {"arch", "fitness", "params", "test_acc"} <= set(data["best"])
    assert set(data["timings"]) >= {"search_s", "reconstruction_s", "evaluation_s"}
    assert data["evaluations"] == 25 and data["best"]["fitness"] == result.best.fitness
    assert Architecture.from_text(data["best"]["arch"]) == Architecture.load(tmp_path / "best.arch")
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert len(lines) == 25 and json.loads(lines[-1])["evaluation"] == 25
    assert (tmp_path / "convergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "checkpoint.json").read_text())["generation"] == 5


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_resume_after_kill_gives_the_uninterrupted_result(tmp_path, name):
    MAKERS[name]().run(tmp_path / "full", progress=False)
    with pytest.raises(Killed):
        MAKERS[name]().run(tmp_path / "cut", progress=False, on_generation=_kill_after(2))
    assert not (tmp_path / "cut" / "result.json").exists()
    MAKERS[name]().run(tmp_path / "cut", resume=True, progress=False)
    assert _comparable(tmp_path / "cut") == _comparable(tmp_path / "full")


def test_history_lines_after_checkpoint_are_dropped_on_resume(tmp_path):
    with pytest.raises(Killed):
        MAKERS["ga"]().run(tmp_path, progress=False, on_generation=_kill_after(2))
    with open(tmp_path / "history.jsonl", "a") as fh:  # as if killed after logging, before checkpointing
        fh.write('{"evaluation": 11}\n')
    MAKERS["ga"]().run(tmp_path, resume=True, progress=False)
    evals = [json.loads(l)["evaluation"] for l in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert evals == list(range(1, 26))


def test_resume_of_finished_run_rewrites_same_result(tmp_path):
    first = MAKERS["random"]().run(tmp_path, progress=False)
    again = MAKERS["random"]().run(tmp_path, resume=True, progress=False)
    assert again.best.candidate.key == first.best.candidate.key and again.evaluations == 20


def test_resume_with_other_seed_is_refused(tmp_path):
    with pytest.raises(Killed):
        MAKERS["ga"]().run(tmp_path, progress=False, on_generation=_kill_after(1))
    with pytest.raises(CheckpointError, match="config.seed"):
        MAKERS["ga"](seed=1).run(tmp_path, resume=True, progress=False)


def test_resume_without_checkpoint_is_refused(tmp_path):
    with pytest.raises(UserInputError, match="nothing to resume"):
        MAKERS["ga"]().run(tmp_path, resume=True, progress=False)


def test_resume_without_output_is_refused():
    with pytest.raises(UserInputError, match="output_dir"):
        MAKERS["ga"]().run(None, resume=True, progress=False)


def test_existing_run_is_not_overwritten(tmp_path):
    MAKERS["random"]().run(tmp_path, progress=False)
    with pytest.raises(UserInputError, match="already holds a run"):
        MAKERS["random"]().run(tmp_path, progress=False)


def test_corrupt_checkpoint_is_a_user_error(tmp_path):
    (tmp_path / "checkpoint.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="checkpoint.json"):
        MAKERS["ga"]().run(tmp_path, resume=True, progress=False)


def test_failed_candidates_are_recorded_and_search_goes_on(tmp_path):
    space = ChainSpace(length=1)
    ga = GeneticSearch(space, ToyEvaluator(fail={"conv3"}), population=3, generations=3, seed=0)
    result = ga.run(tmp_path, progress=False)
    failed = [h for h in result.history if h.key == "conv3"]
    assert failed and all(h.fitness == 0.0 and h.error == "toy failure" for h in failed)
    assert result.best.candidate.key == "conv1" and result.evaluations == 9


def test_evaluator_with_wrong_keys_is_a_bug():
    class Wrong(ToyEvaluator):
        def evaluate(self, candidates):
            return [FitnessRecord("nope", 1.0) for _ in candidates]
    with pytest.raises(RuntimeError, match="nope"):
        RandomSearch(ChainSpace(), Wrong(), budget=2, batch_size=2).run(progress=False)


@dataclass(frozen=True)
class Gene:
    ops: tuple
    width: int


def test_genome_codec_round_trip_and_module_check():
    genome = (Gene(("a", "b"), 3), frozenset({"x", "y"}), [1, 2.5, None, True])
    data = json.loads(json.dumps(encode_genome(genome)))
    assert decode_genome(data, allowed_modules=(Gene.__module__,)) == genome
    with pytest.raises(CheckpointError, match="not from an arch_gpt module"):
        decode_genome(data)


def test_resume_with_other_mask_rate_is_refused(tmp_path):
    class Rate:
        def __init__(self, mask_rate):
            self.mask_rate = mask_rate

        def reconstruct(self, space, candidates, progress, rng):
            return list(candidates)

    def ga(rate):
        return GeneticSearch(ChainSpace(), ToyEvaluator(), Rate(rate), population=4, generations=3)
    with pytest.raises(Killed):
        ga(0.4).run(tmp_path, progress=False, on_generation=_kill_after(1))
    with pytest.raises(CheckpointError, match="config.mask_rate"):
        ga(0.2).run(tmp_path, resume=True, progress=False)
