"""Bad input, tried as a careless user would, on `arch-gpt search`, `arch-gpt bench`, `arch-gpt ablation` and the
search's Python API. Each case: exit code 2 (or the package's UserInputError), one stderr line naming the flag,
field or file, no traceback, and nothing outside the output folder changed. Real tables (synthetic, complete),
a real tiny ArchGPT, real runs."""
from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest

from arch_gpt import modeling
from arch_gpt.cli import main
from arch_gpt.errors import UserInputError
from arch_gpt.search.reconstruction import GPTReconstructor
from arch_gpt.search.records import Candidate
from arch_gpt.search.spaces import create_space
from arch_gpt.search.spec import SearchConfig, build_search
from arch_gpt.tokenizer import LayerTokenizer
from arch_gpt.zoo import nasbench201


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A folder with a complete synthetic NB-201 table, a tiny GPT, and a finished run to resume or damage."""
    root = tmp_path_factory.mktemp("world")
    rng = np.random.default_rng(0)
    table = {nasbench201.arch_str(ops): {"val_acc_200": float(v), "test_acc_200": float(v) + 1, "rank": 1}
             for ops, v in zip(itertools.product(nasbench201.OPS, repeat=6), rng.uniform(10, 90, 5 ** 6))}
    (root / "nb201.json").write_text(json.dumps(table))
    space = create_space("nasbench201")
    tokenizer = LayerTokenizer.build([space.to_architecture(space.parse(nasbench201.arch_str((op,) * 6)))
                                      for op in nasbench201.OPS])
    modeling.ArchGPT.create(tokenizer, **modeling.TINY).save_pretrained(root / "gpt")
    assert main(["search", "--no-progress", "--space", "nasbench201", "--benchmark", str(root / "nb201.json"),
                 "--strategy", "ga", "--budget", "20", "--population", "5", "--output", str(root / "run")]) == 0
    (root / "notes.txt").write_text("mine")
    return root


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def fails(capsys, world, argv, *needles, leaves=None):
    """Run ``argv``; exit 2, one line naming every needle, no traceback, ``world`` unchanged (but ``leaves``)."""
    before = snapshot(world)
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err and "internal error" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    after = snapshot(world)
    if leaves is not None:
        after = {k: v for k, v in after.items() if not k.startswith(leaves)}
        before = {k: v for k, v in before.items() if not k.startswith(leaves)}
    assert after == before
    return err


TAB = ("--space", "nasbench201", "--benchmark", "{table}", "--no-progress")


def tab(world, *extra):
    return ["search", *(a.format(table=world / "nb201.json") for a in TAB), *extra]


SEARCH_CASES = [
    (("--strategy", "ga+ft"), ("--strategy", "ga+gpt+ft")),
    (("--strategy", "evolution"), ("--strategy", "unknown 'evolution'")),
    (("--strategy", "ga", "--seed", "-1"), ("--seed",)),
    (("--strategy", "ga", "--population", "0"), ("--population",)),
    (("--strategy", "ga", "--budget", "-5"), ("--budget",)),
    (("--strategy", "ga", "--budget", "5", "--generations", "2"), ("--budget, --generations",)),
    (("--strategy", "ga", "--mask-rate", "0.5"), ("--mask-rate", "would be ignored")),
    (("--strategy", "ga", "--model", "x"), ("--model", "would be ignored")),
    (("--strategy", "ga+gpt", "--finetune-steps", "3"), ("--finetune-steps", "would be ignored")),
    (("--strategy", "ga", "--device", "cuda"), ("--device", "would be ignored")),
    (("--strategy", "ga", "--epochs", "3"), ("--epochs", "trains nothing")),
    (("--strategy", "ga+gpt", "--mask-rate", "2", "--model", "{gpt}"), ("--mask-rate", "[0, 1]")),
    (("--strategy", "ga+gpt", "--model", "{missing}"), ("--model", "missing-gpt")),
    (("--strategy", "ga+gpt", "--model", "{gpt}", "--device", "bogus"), ("--device", "'bogus'")),
    (("--strategy", "ga", "--num-classes", "0"), ("--num-classes",)),
    (("--strategy", "ga", "--output", "{notes}"), ("--output", "notes.txt", "is a file")),
    (("--strategy", "ga", "--output", "{notes}/sub"), ("--output", "notes.txt", "is a file")),
    (("--strategy", "ga", "--output", "{run}"), ("--output", "already holds a run")),
    (("--strategy", "ga", "--resume"), ("--resume",)),
    (("--strategy", "ga", "--output", "{world}/fresh", "--resume"), ("nothing to resume",)),
    (("--strategy", "re", "--output", "{run}", "--resume", "--budget", "30"), ("checkpoint.json: field 'config.",)),
    (("--strategy", "ga", "--output", "{run}", "--resume", "--budget", "30", "--population", "5"),
     ("config.budget",)),
]


@pytest.mark.parametrize("extra, needles", SEARCH_CASES, ids=[" ".join(c[0]) for c in SEARCH_CASES])
def test_search_tabular(capsys, world, extra, needles):
    fill = {"gpt": world / "gpt", "missing": world / "missing-gpt", "notes": world / "notes.txt",
            "run": world / "run", "world": world}
    argv = tab(world, *(a.format(**fill) for a in extra))
    fails(capsys, world, argv, *needles)


TRAIN_CASES = [
    (("--dataset", "mnist"), ("--dataset", "mnist")),
    (("--input-size", "4"), ("--input-size",)),
    (("--input-size", "100000"), ("--input-size", "1024")),
    (("--subset", "0"), ("--subset",)),
    (("--lr", "nan"), ("--lr",)),
    (("--lr", "-1"), ("--lr",)),
    (("--epochs", "-2"), ("--epochs",)),
    (("--batch-size", "0"), ("--batch-size",)),
    (("--max-steps", "0"), ("--max-steps",)),
    (("--device", "bogus"), ("--device", "bogus")),
    (("--dataset", "cifar10"), ("--data-dir",)),
    (("--dataset", "cifar10", "--data-dir", "{world}/nope"), ("--data-dir", "does not exist")),
    (("--widths", "12,20"), ("widths",)),
    (("--space", "cells"), ("unknown search space 'cells'",)),
    (("--seed", "-3"), ("--seed",)),
]


@pytest.mark.parametrize("extra, needles", TRAIN_CASES, ids=[" ".join(c[0]) for c in TRAIN_CASES])
def test_search_training(capsys, world, extra, needles):
    argv = ["search", "--no-progress", "--strategy", "random", "--population", "2", "--generations", "1",
            *(a.format(world=world) for a in extra)]
    fails(capsys, world, argv, *needles)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="about a machine without a GPU")
def test_search_cuda_without_a_gpu(capsys, world):
    fails(capsys, world, ["search", "--strategy", "random", "--device", "cuda"], "--device", "no CUDA GPU")


def damaged_copy(world: Path, tmp_path: Path, change) -> Path:
    import shutil
    run = Path(shutil.copytree(world / "run", tmp_path / "run"))
    data = json.loads((run / "checkpoint.json").read_text())
    change(data)
    (run / "checkpoint.json").write_text(json.dumps(data))
    return run


CHECKPOINT_CASES = {
    "no config": (lambda d: d.pop("config"), "field 'config'"),
    "garbage rng": (lambda d: d.update(rng={"state": "x"}), "field 'rng'"),
    "population key not cached": (lambda d: d["population"][0].update(record="nope"), "population[0].record"),
    "unknown record field": (lambda d: d["cache"][0].update(colour=1), "unknown field 'colour'"),
    "best null": (lambda d: d.update(best=None), "field 'best'"),
    "evaluations beyond budget": (lambda d: d.update(evaluations=1000), "field 'evaluations'"),
    "history shorter": (lambda d: d["history"].pop(), "field 'evaluations'"),
    "generation a string": (lambda d: d.update(generation="3"), "field 'generation'"),
    "genome of another key": (lambda d: d["best"].update(key="|none~0|"), "field 'best'"),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
def test_resume_from_a_damaged_checkpoint(capsys, world, tmp_path, case):
    change, needle = CHECKPOINT_CASES[case]
    run = damaged_copy(world, tmp_path, change)
    fails(capsys, tmp_path, tab(world, "--strategy", "ga", "--budget", "20", "--population", "5", "--output", run,
                                "--resume"), "checkpoint.json", needle)


def test_a_run_folder_without_checkpoint_is_not_overwritten(capsys, world, tmp_path):
    import shutil
    run = Path(shutil.copytree(world / "run", tmp_path / "run"))
    (run / "checkpoint.json").unlink()
    fails(capsys, tmp_path, tab(world, "--strategy", "ga", "--budget", "10", "--output", run),
          "holds the files of another run")


def test_every_candidate_failing_exits_2(capsys, tmp_path):
    """Training on a 1-pixel-wide stem would fail every candidate: the run says so instead of a fitness-0 best."""
    code = main(["search", "--no-progress", "--strategy", "random", "--population", "2", "--generations", "1",
                 "--epochs", "1", "--lr", "1e30", "--subset", "0.2", "--output", str(tmp_path / "r")])
    err = capsys.readouterr().err
    if code == 0:
        pytest.skip("the huge lr happened not to diverge on this machine")
    assert code == 2 and "every one of the 2 candidates failed" in err


def test_resume_without_the_weights_folder_is_refused(capsys, tmp_path, monkeypatch):
    """Killed after its first generation, the run lost weights/: resuming would diverge, so it is refused."""
    import shutil

    from arch_gpt.search import loop
    out = tmp_path / "digits"
    args = ["search", "--no-progress", "--strategy", "ga", "--population", "2", "--generations", "3", "--epochs",
            "1", "--subset", "0.2", "--max-steps", "2", "--output", str(out)]
    real = loop.save_checkpoint

    def save_then_die(*a, **kw):
        real(*a, **kw)
        raise KeyboardInterrupt
    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    assert main(args) == 130
    monkeypatch.setattr(loop, "save_checkpoint", real)
    capsys.readouterr()
    shutil.rmtree(out / "weights")
    fails(capsys, tmp_path, args + ["--resume"], "weights", "start a new run")


BENCH_CASES = [
    (("--strategies", "ga,sa"), ("--strategies", "unknown 'sa'")),
    (("--strategies", "ga+ft"), ("--strategies", "ga+gpt+ft")),
    (("--budgets", "0"), ("--budgets",)),
    (("--seeds", "0"), ("--seeds",)),
    (("--mask-rate", "5", "--strategies", "ga+gpt"), ("--mask-rate",)),
    (("--num-classes", "0",), ("--num-classes",)),
    (("--finetune-steps", "0", "--strategies", "ga+gpt+ft"), ("--finetune-steps",)),
    (("--finetune-lr", "-1", "--strategies", "ga+gpt+ft"), ("--finetune-lr",)),
    (("--model", "{world}/missing-gpt", "--strategies", "ga+gpt"), ("--model", "missing-gpt")),
    (("--output", "{world}/notes.txt"), ("--output", "is a file")),
    (("--output", "{world}"), ("--output", "other files")),
]


@pytest.mark.parametrize("extra, needles", BENCH_CASES, ids=[" ".join(c[0]) for c in BENCH_CASES])
def test_bench(capsys, world, extra, needles):
    extra = [a.format(world=world) for a in extra]
    out = [] if "--output" in extra else ["--output", str(world / "study")]
    argv = ["bench", "--no-progress", "--space", "nasbench201", "--benchmark", str(world / "nb201.json"),
            "--strategies", "ga", "--budgets", "10", "--seeds", "2", *out, *extra]
    fails(capsys, world, argv, *needles)
    assert not (world / "study").exists()  # nothing written before the settings were checked


@pytest.mark.parametrize("content, needle", [
    ("{", "line 1: not valid JSON"), ("[]", "expected a non-empty JSON object"),
    ('{"|none~0|+|none~0|none~1|+|none~0|none~1|none~2|": {"val_acc_200": 1e308, "test_acc_200": 5, "rank": 1}}',
     "must be in [0, 100]"),
    ('{"|none~0|+|none~0|none~1|+|none~0|none~1|none~2|": {"val_acc_200": -5, "test_acc_200": 5, "rank": 1}}',
     "must be in [0, 100]"),
])
def test_bench_and_search_on_a_bad_table(capsys, world, tmp_path, content, needle):
    (tmp_path / "bad.json").write_text(content)
    for argv in (["bench", "--space", "nasbench201", "--benchmark", str(tmp_path / "bad.json"), "--output",
                  str(tmp_path / "o")],
                 ["search", "--space", "nasbench201", "--benchmark", str(tmp_path / "bad.json"), "--strategy", "ga"]):
        fails(capsys, world, argv, "bad.json", needle)


ABLATION_CASES = [
    (("mask-rate", "--rates", "0,1.5"), ("--rates",)),
    (("mask-rate", "--seeds", "0"), ("--seeds",)),
    (("mask-rate", "--population", "1"), ("--population",)),
    (("mask-rate", "--seed", "-1"), ("--seed",)),
    (("mask-rate", "--model", "{world}/missing-gpt"), ("--model", "missing-gpt")),
    (("mask-rate", "--space", "nasbench201", "--benchmark", "{world}/nope.json"), ("nope.json",)),
    (("mask-rate", "--output", "{world}/notes.txt"), ("--output", "is a file")),
    (("mask-rate", "--input-size", "3"), ("--input-size",)),
    (("mask-rate", "--dataset", "mnist"), ("--dataset",)),
    (("mask-rate", "--widths", "7"), ("widths",)),
    (("epoch-correlation", "--samples", "2"), ("--samples",)),
    (("epoch-correlation", "--few-epochs", "3", "--more-epochs", "3"), ("--few-epochs, --more-epochs",)),
    (("epoch-correlation", "--seed", "-2"), ("--seed",)),
    (("epoch-correlation", "--lr", "nan"), ("--lr",)),
    (("epoch-correlation", "--batch-size", "0"), ("--batch-size",)),
    (("epoch-correlation", "--output", "{world}/notes.txt/x"), ("--output", "is a file")),
]


@pytest.mark.parametrize("extra, needles", ABLATION_CASES, ids=[" ".join(c[0]) for c in ABLATION_CASES])
def test_ablation(capsys, world, extra, needles):
    extra = [a.format(world=world) for a in extra]
    out = [] if "--output" in extra else ["--output", str(world / "abl")]
    fails(capsys, world, ["ablation", *extra, "--max-steps", "1", *out], *needles)


def test_ablation_refuses_to_overwrite_earlier_results(capsys, world, tmp_path):
    out = tmp_path / "abl"
    out.mkdir()
    (out / "epoch-correlation.md").write_text("my notes")
    fails(capsys, tmp_path, ["ablation", "epoch-correlation", "--output", out], "--overwrite", "epoch-correlation.md")


# --- the Python API ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gpt(world):
    return modeling.ArchGPT.from_pretrained(world / "gpt")


@pytest.mark.parametrize("progress, rng, needle", [
    (float("nan"), np.random.default_rng(0), "progress"), (1.5, np.random.default_rng(0), "progress"),
    (0.5, None, "rng"), (0.5, 0, "rng"),
])
def test_reconstruct_checks_its_arguments(gpt, progress, rng, needle):
    space = create_space("nasbench201")
    genome = space.sample(np.random.default_rng(0))
    with pytest.raises(UserInputError, match=rf"^{needle}: "):
        GPTReconstructor(gpt).reconstruct(space, [Candidate(genome, space.key(genome))], progress, rng)


@pytest.mark.parametrize("config, needle", [
    (SearchConfig(strategy="ga", population=1), "population"),
    (SearchConfig(strategy="ga+gpt", top_k=3), None),
    (SearchConfig(strategy="ga", lr=float("inf")), "lr"),
    (SearchConfig(strategy="nope"), "strategy"),
    (SearchConfig(strategy="ga", seed=-1), "seed"),
])
def test_build_search_checks_its_config(world, gpt, config, needle):
    from dataclasses import replace
    from arch_gpt.search.evaluators.tabular import TabularBenchmark
    config = replace(config, space="nasbench201", benchmark=str(world / "nb201.json"))
    table = TabularBenchmark.load(world / "nb201.json")
    if needle is None:
        assert build_search(config, table=table, model=gpt).strategy.reconstructor.top_k == 3
        return
    with pytest.raises(UserInputError, match=rf"^{needle}"):
        build_search(config, table=table, model=gpt)
