"""TrainingEvaluator on sklearn's bundled digits (8x8, a 30% subset) with the tiny toy chain space."""
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from arch_gpt.errors import UserInputError
from arch_gpt.search.data import load_image_data
from arch_gpt.search.evaluators.training import TrainingConfig, TrainingEvaluator
from arch_gpt.search.protocols import Candidate
from search_toys import ChainSpace

PARENT = Candidate(("conv3", "conv1"), "conv3-conv1")


@pytest.fixture(scope="module")
def digits():
    return load_image_data("digits", input_size=8, subset=0.3, seed=0)


def _evaluator(digits, **kw):
    kw = {"epochs": 2, "lr": 0.1, "batch_size": 32, **kw}
    return TrainingEvaluator(ChainSpace(length=2), digits, TrainingConfig(**kw))


def test_training_learns_and_reports_val_test_params(digits):
    untrained = _evaluator(digits, epochs=0).evaluate([PARENT])[0]
    trained = _evaluator(digits, epochs=5).evaluate([PARENT])[0]
    assert trained.error is None and trained.extra["mode"] == "full"
    assert trained.fitness > untrained.fitness + 0.15
    assert 0.0 <= trained.test_acc <= 1.0
    assert trained.params == sum(p.numel() for p in ChainSpace(length=2).build_module(PARENT.genome, 10).parameters())


def test_same_candidate_trains_identically(digits):
    a = _evaluator(digits).evaluate([PARENT])[0]
    b = _evaluator(digits).evaluate([PARENT])[0]
    assert (a.fitness, a.test_acc) == (b.fitness, b.test_acc)


def test_predicted_units_train_alone_on_inherited_weights(digits, tmp_path):
    ev = _evaluator(digits)
    ev.set_output_dir(tmp_path)
    child = Candidate(("conv3", "conv3"), "conv3-conv3", "mutation", (PARENT.key,), predicted_units=(1,))
    parent_rec, child_rec = ev.evaluate([PARENT]), ev.evaluate([child])[0]
    assert child_rec.extra["mode"] == "predicted" and child_rec.extra["inherited_tensors"] > 0
    assert ev.export_weights(PARENT.key, tmp_path / "p.safetensors")
    assert ev.export_weights(child.key, tmp_path / "c.safetensors")
    p, c = load_file(tmp_path / "p.safetensors"), load_file(tmp_path / "c.safetensors")
    assert torch.equal(p["units.0.0.weight"], c["units.0.0.weight"])  # frozen, inherited
    assert torch.equal(p["head.weight"], c["head.weight"])
    assert not torch.equal(p["units.1.1.weight"], c["units.1.1.weight"])  # predicted unit trained
    assert child_rec.extra["trained_params"] < parent_rec[0].extra["trained_params"]


def test_children_without_predicted_units_train_only_batchnorm(digits):
    ev = _evaluator(digits)
    child = Candidate(("conv3", "conv1"), "child", "crossover", (PARENT.key,))
    ev.evaluate([PARENT])
    rec = ev.evaluate([child])[0]
    assert rec.extra["mode"] == "bn"
    bn = sum(m.weight.numel() + m.bias.numel() for m in ChainSpace(length=2).build_module(PARENT.genome, 10).modules()
             if isinstance(m, torch.nn.BatchNorm2d))
    assert rec.extra["trained_params"] == bn


def test_acceleration_switches_off(digits):
    ev = _evaluator(digits, train_predicted_only=False, bn_only=False)
    ev.evaluate([PARENT])
    child = Candidate(("conv3", "conv1"), "child", "crossover", (PARENT.key,), predicted_units=(0,))
    plain = Candidate(("conv3", "conv1"), "plain", "crossover", (PARENT.key,))
    assert [r.extra["mode"] for r in ev.evaluate([child, plain])] == ["full", "full"]


def test_inheritance_survives_a_new_evaluator_through_the_weights_folder(digits, tmp_path):
    first = _evaluator(digits)
    first.set_output_dir(tmp_path)
    first.evaluate([PARENT])
    second = _evaluator(digits)
    second.set_output_dir(tmp_path)
    child = Candidate(PARENT.genome, "child", "crossover", (PARENT.key,))
    assert second.evaluate([child])[0].extra["inherited_tensors"] > 0
    assert not _evaluator(digits).export_weights("never-trained", tmp_path / "x.safetensors")


class NaNSpace(ChainSpace):
    def build_module(self, genome, num_classes):
        module = super().build_module(genome, num_classes)
        module.head.bias.data.fill_(float("nan"))
        return module


class BrokenSpace(ChainSpace):
    def build_module(self, genome, num_classes):
        module = super().build_module(genome, num_classes)
        module.head = torch.nn.Linear(7, num_classes)  # shape error at the first forward
        return module


class OOMSpace(ChainSpace):
    def build_module(self, genome, num_classes):
        module = super().build_module(genome, num_classes)

        def boom(*args):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        module.stem.register_forward_hook(boom)
        return module


@pytest.mark.parametrize("space, reason", [(NaNSpace(length=2), "non-finite loss"),
                                           (BrokenSpace(length=2), "RuntimeError"),
                                           (OOMSpace(length=2), "out of memory")])
def test_failing_candidates_get_fitness_zero_and_reason(digits, space, reason):
    ev = TrainingEvaluator(space, digits, TrainingConfig(epochs=1, batch_size=64))
    ok = TrainingEvaluator(ChainSpace(length=2), digits, TrainingConfig(epochs=1, batch_size=64))
    rec = ev.evaluate([PARENT])[0]
    assert rec.fitness == 0.0 and reason in rec.error
    assert ok.evaluate([PARENT])[0].error is None


@pytest.mark.parametrize("kwargs", [{"epochs": -1}, {"lr": 0.0}, {"batch_size": 0}, {"max_steps_per_epoch": 0}])
def test_bad_config(kwargs):
    with pytest.raises(UserInputError):
        TrainingConfig(**kwargs)


def test_default_batch_sizes(digits):
    assert TrainingConfig().lr == 0.01 and TrainingConfig().epochs == 6
    assert TrainingEvaluator(ChainSpace(), digits).batch_size == 128


@pytest.mark.parametrize("name, batch", [("cifar10", 512), ("cifar100", 512), ("imagenet", 128)])
def test_paper_batch_sizes(digits, name, batch):
    """The builder's per-dataset defaults reach the evaluator."""
    from arch_gpt.search.spec import SearchConfig, build_evaluator
    assert build_evaluator(SearchConfig(dataset=name), ChainSpace(), digits).batch_size == batch


def test_search_killed_between_generations_resumes_identically(digits, tmp_path):
    from arch_gpt.search.strategies.genetic import GeneticSearch

    class Killed(Exception):
        pass

    def kill(state):
        if state.generation == 2:
            raise Killed

    def ga():
        return GeneticSearch(ChainSpace(length=2), _evaluator(digits, epochs=1), population=3, generations=4, seed=0)
    full = ga().run(tmp_path / "full", progress=False)
    with pytest.raises(Killed):
        ga().run(tmp_path / "cut", progress=False, on_generation=kill)
    resumed = ga().run(tmp_path / "cut", resume=True, progress=False)
    strip = [replace(h, cost_s=0.0) for h in full.history]
    assert [replace(h, cost_s=0.0) for h in resumed.history] == strip
    assert {h.origin for h in full.history} - {"sample"}  # offspring were trained (inheriting weights)
    assert (tmp_path / "cut" / "best.safetensors").is_file()


def test_retain_keeps_only_the_given_weights(digits, tmp_path):
    ev = _evaluator(digits, epochs=0)
    ev.set_output_dir(tmp_path)
    other = Candidate(("pool", "skip"), "pool-skip")
    ev.evaluate([PARENT, other])
    assert len(list((tmp_path / "weights").glob("*.safetensors"))) == 2
    ev.retain({PARENT.key})
    assert len(list((tmp_path / "weights").glob("*.safetensors"))) == 1
    assert ev.export_weights(PARENT.key, tmp_path / "p.safetensors")
    assert not ev.export_weights(other.key, tmp_path / "o.safetensors")


def test_kept_weights_get_the_umask_mode(digits, tmp_path):
    import os
    import stat

    from arch_gpt.search.strategies.genetic import GeneticSearch
    GeneticSearch(ChainSpace(length=2), _evaluator(digits, epochs=1), population=2, generations=1,
                  seed=0).run(tmp_path / "run", progress=False)
    umask = os.umask(0)
    os.umask(umask)
    files = list((tmp_path / "run" / "weights").glob("*.safetensors")) + [tmp_path / "run" / "best.safetensors"]
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask for f in files)
