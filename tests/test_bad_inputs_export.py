"""Bad inputs to ``arch-gpt export`` and ``arch-gpt retrain``: one clear line, exit 2, nothing else touched.

Every case starts from a good run folder (a tiny block genome; for the NAS-Bench-201 cases a tiny NB201 cell),
breaks one thing a careless or unlucky user could break, and checks through ``arch_gpt.cli.main`` that the exit
code is 2, that stderr is one line naming the field, flag or file, and that no file outside the output folder
changed (nor the output folder appeared). The data-safety tests at the end cover re-exports, overwrites,
resumes and the set-atomic retrain checkpoint.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from arch_gpt.cli import main
from arch_gpt.search.export import best_genome_record, export_run, write_best_genome
from arch_gpt.search.retrain import RetrainConfig, retrain
from arch_gpt.search.spaces import create_space
from arch_gpt.search.spaces.blocks import BlockSpace

NB201_KEY = "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|none~2|"
TRAIN = ["--epochs", "1", "--step-size", "1", "--batch-size", "128", "--lr", "0.05"]  # as the `retrained` fixture
FIXTURE_CONFIG = RetrainConfig(epochs=1, step_size=1, lr=0.05, batch_size=128)


def _space() -> BlockSpace:
    return BlockSpace(num_classes=10, input_size=16, min_blocks=3, max_blocks=4, widths=(8, 16))


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A search run folder with best_genome.json, best.safetensors and best.arch."""
    run = tmp_path_factory.mktemp("template") / "run"
    run.mkdir()
    space = _space()
    genome = space.sample(np.random.default_rng(0))
    write_best_genome(run, space, genome, fitness=0.5, num_classes=10, input_size=(16, 16, 3))
    save_file(space.build_module(genome).state_dict(), str(run / "best.safetensors"))
    (run / "best.arch").write_text("# best architecture\n")
    return run


@pytest.fixture(scope="module")
def retrained(template, tmp_path_factory) -> Path:
    """The template run after a one-epoch retrain (RUN/retrain with metrics.json and a checkpoint)."""
    run = tmp_path_factory.mktemp("retrained") / "run"
    shutil.copytree(template, run)
    retrain(run, "digits", FIXTURE_CONFIG, progress=False)
    return run


def nb201(run: Path, **space_config) -> None:
    """Turn the run into a NAS-Bench-201 one (tiny skeleton) with ``space_config`` overrides, no weights."""
    space = create_space("nasbench201", input_size=16, channels=8, cells_per_stage=1)
    record = json.loads(best_genome_record(space, NB201_KEY, fitness=91.6, num_classes=10).to_json())
    record["space_config"].update(space_config)
    (run / "best_genome.json").write_text(json.dumps(record))
    (run / "best.safetensors").unlink()


def edit_genome(**changes) -> Callable[[Path], None]:
    """A mutation setting top-level keys of best_genome.json (``None`` values are written as null)."""
    def mutate(run: Path) -> None:
        data = json.loads((run / "best_genome.json").read_text())
        data.update(changes)
        (run / "best_genome.json").write_text(json.dumps(data))
    return mutate


def edit_space_config(**changes) -> Callable[[Path], None]:
    def mutate(run: Path) -> None:
        data = json.loads((run / "best_genome.json").read_text())
        data["space_config"].update(changes)
        (run / "best_genome.json").write_text(json.dumps(data))
    return mutate


def write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def mutate(run: Path) -> None:
        path = run / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return mutate


def truncate(name: str) -> Callable[[Path], None]:
    def mutate(run: Path) -> None:
        data = (run / name).read_bytes()
        (run / name).write_bytes(data[: len(data) // 2])
    return mutate


def pickled_weights(run: Path) -> None:
    torch.save(load_file(str(run / "best.safetensors")), run / "best.safetensors")


def other_architecture(run: Path) -> None:
    save_file({"w": torch.zeros(3)}, str(run / "best.safetensors"))


def genome_of_another_key(run: Path) -> None:
    data = json.loads((run / "best_genome.json").read_text())
    other = _space().sample(np.random.default_rng(5))
    data["genome"] = _space().genome_to_json(other)
    (run / "best_genome.json").write_text(json.dumps(data))


def huge_out_channels(run: Path) -> None:
    data = json.loads((run / "best_genome.json").read_text())
    data["genome"]["blocks"][0]["out_channels"] = 8 * 10**8
    (run / "best_genome.json").write_text(json.dumps(data))


def result_json_only(fitness: str) -> Callable[[Path], None]:
    def mutate(run: Path) -> None:
        key = json.loads((run / "best_genome.json").read_text())["key"]
        (run / "best_genome.json").unlink()
        (run / "result.json").write_text('{"space": "blocks", "best": {"key": "%s", "fitness": %s}}' % (key, fitness))
    return mutate


def user_model_py(run: Path) -> None:
    (run.parent / "mine").mkdir()
    (run.parent / "mine" / "model.py").write_text("# my own model, not an export\n")


def nothing(run: Path) -> None:
    pass


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple[int, str]]:
    """Every file and folder under ``root`` (but ``skip``): its mode and content hash."""
    out = {}
    for p in sorted(root.rglob("*")):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        content = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        out[str(p.relative_to(root))] = (stat.S_IMODE(p.lstat().st_mode), content)
    return out


def check_refused(argv: list[str], out: Path, root: Path, capsys, words: list[str], command: str,
                  creates_out: bool = False) -> str:
    """Run the CLI and assert: exit 2, one error line naming ``words``, nothing changed outside ``out``."""
    skip = None if out.is_file() else out
    before, existed = snapshot(root, skip), out.exists()
    rc = main(argv)
    captured = capsys.readouterr()
    errors = [line for line in captured.err.replace("\r", "\n").splitlines() if line.startswith(f"arch-gpt {command}")]
    assert rc == 2, captured.err
    assert len(errors) == 1 and errors[0] == captured.err.replace("\r", "\n").splitlines()[-1], captured.err
    assert errors[0].startswith(f"arch-gpt {command}: error: "), errors[0]
    assert "Traceback" not in captured.err and "internal error" not in captured.err
    for word in words:
        assert word in errors[0], (word, errors[0])
    assert snapshot(root, skip) == before
    if not existed and not creates_out:
        assert not out.exists()
    return errors[0]


EXPORT_CASES = {
    "run folder missing": (nothing, "{tmp}/nowhere", [], ["nowhere", "not a run folder"]),
    "run folder is a file": (write("../afile", "x"), "{tmp}/afile", [], ["afile", "not a run folder"]),
    "genome file not JSON": (write("best_genome.json", '{"space": "blocks",'), "{run}", [],
                             ["best_genome.json", "line 1", "JSON"]),
    "genome file a list": (write("best_genome.json", "[1, 2]"), "{run}", [], ["best_genome.json", "object"]),
    "genome file not UTF-8": (write("best_genome.json", b"\xff\xfe\x00"), "{run}", [], ["best_genome.json", "UTF-8"]),
    "space_config a list": (edit_genome(space_config=[1, 2]), "{run}", [], ["best_genome.json", "'space_config'"]),
    "unknown space": (edit_genome(space="resnet"), "{run}", [], ["best_genome.json", "'space'", "resnet"]),
    "unknown space_config field": (edit_space_config(colour=1), "{run}", [], ["best_genome.json", "colour"]),
    "unknown top-level key": (edit_genome(num_clases=10), "{run}", [], ["best_genome.json", "num_clases"]),
    "format of another tool": (edit_genome(format="other/2"), "{run}", [], ["best_genome.json", "'format'"]),
    "num_classes a string": (edit_genome(num_classes="ten"), "{run}", [], ["best_genome.json", "'num_classes'"]),
    "num_classes zero": (edit_genome(num_classes=0), "{run}", [], ["best_genome.json", "'num_classes'"]),
    "num_classes huge": (edit_genome(num_classes=10**12), "{run}", [], ["best_genome.json", "'num_classes'"]),
    "num_classes not the space's": (edit_genome(num_classes=100), "{run}", [], ["best_genome.json", "'num_classes'"]),
    "space num_classes bool": (edit_space_config(num_classes=True), "{run}", [], ["best_genome.json", "num_classes"]),
    "fitness a word": (edit_genome(fitness="very good"), "{run}", [], ["best_genome.json", "'fitness'"]),
    "fitness NaN": (edit_genome(fitness=float("nan")), "{run}", [], ["best_genome.json", "'fitness'"]),
    "fitness infinite": (edit_genome(fitness=float("inf")), "{run}", [], ["best_genome.json", "'fitness'"]),
    "result.json fitness NaN": (result_json_only("NaN"), "{run}", [], ["result.json", "fitness"]),
    "genome of another key": (genome_of_another_key, "{run}", [], ["best_genome.json", "'genome'"]),
    "genome not blocks": (edit_genome(genome={"blocks": "x"}), "{run}", [], ["best_genome.json", "'genome'"]),
    "genome huge channels": (huge_out_channels, "{run}", [], ["best_genome.json", "out_channels"]),
    "key garbage": (edit_genome(genome=None, key="Conv-x"), "{run}", [], ["best_genome.json", "'key'"]),
    "key missing": (edit_genome(key=None), "{run}", [], ["best_genome.json", "'key'"]),
    "input_size two values": (edit_genome(input_size=[3, 16]), "{run}", [], ["best_genome.json", "'input_size'"]),
    "input_size huge": (edit_genome(input_size=[3, 10**5, 10**5]), "{run}", [], ["best_genome.json", "'input_size'"]),
    "widths not numbers": (edit_space_config(widths=["abc"]), "{run}", [], ["best_genome.json", "widths"]),
    "min_blocks a string": (edit_space_config(min_blocks="3"), "{run}", [], ["best_genome.json", "min_blocks"]),
    "kinds a string": (edit_space_config(kinds="Conv"), "{run}", [], ["best_genome.json", "kinds"]),
    "nb201 channels abc": (lambda r: nb201(r, channels="abc"), "{run}", [], ["best_genome.json", "channels"]),
    "nb201 channels negative": (lambda r: nb201(r, channels=-16), "{run}", [], ["best_genome.json", "channels"]),
    "nb201 channels huge": (lambda r: nb201(r, channels=10**9), "{run}", [], ["best_genome.json", "channels"]),
    "nb201 cells_per_stage 0": (lambda r: nb201(r, cells_per_stage=0), "{run}", [],
                                ["best_genome.json", "cells_per_stage"]),
    "nb201 with a genome": (lambda r: (nb201(r), edit_genome(genome={"ops": 1})(r)), "{run}", [],
                            ["best_genome.json", "'genome'"]),
    "nb201 key garbage": (lambda r: (nb201(r), edit_genome(key="|conv_5x5~0|")(r)), "{run}", [],
                          ["best_genome.json", "'key'"]),
    "weights empty": (write("best.safetensors", b""), "{run}", [], ["best.safetensors", "safetensors"]),
    "weights truncated": (truncate("best.safetensors"), "{run}", [], ["best.safetensors", "safetensors"]),
    "weights text": (write("best.safetensors", "not weights"), "{run}", [], ["best.safetensors"]),
    "weights pickled": (pickled_weights, "{run}", [], ["best.safetensors", "safetensors"]),
    "weights of another architecture": (other_architecture, "{run}", [], ["best.safetensors", "do not fit"]),
    "retrained weights corrupted": (write("retrain/model.safetensors", b"\x10" * 64), "{run}", [],
                                    ["retrain/model.safetensors"]),
    "retrain metrics classes bad": (lambda r: (shutil.copy(r / "best.safetensors", r / "model.safetensors"),
                                               write("retrain/metrics.json", '{"num_classes": "x"}')(r),
                                               shutil.move(r / "model.safetensors", r / "retrain")),
                                    "{run}", [], ["metrics.json", "'num_classes'"]),
    "network not an object": (edit_genome(network=[1]), "{run}", [], ["best_genome.json", "'network'"]),
    "search_config.json not JSON": (write("search_config.json", "{"), "{run}", [], ["search_config.json", "JSON"]),
    "search_config.json config a list": (write("search_config.json", '{"config": []}'), "{run}", [],
                                         ["search_config.json", "'config'"]),
    "result.json seed a word": (write("result.json", '{"strategy": "ga", "seed": "zero"}'), "{run}", [],
                                ["result.json", "'seed'"]),
    "out is a file": (write("../outfile", "keep me"), "{run}", ["--out", "{tmp}/outfile"], ["--out", "outfile"]),
    "out under a file": (write("../outfile", "keep me"), "{run}", ["--out", "{tmp}/outfile/sub"], ["--out", "outfile"]),
    "out is the run folder": (nothing, "{run}", ["--out", "{run}"], ["--out", "run folder"]),
    "out contains the run folder": (nothing, "{run}", ["--out", "{tmp}"], ["--out", "run folder"]),
    "out holds a user's model.py": (user_model_py, "{run}", ["--out", "{tmp}/mine"], ["--out", "model.py"]),
}


@pytest.mark.parametrize("mutate, run_arg, extra, words", EXPORT_CASES.values(), ids=EXPORT_CASES.keys())
def test_export_bad_input(template, tmp_path, capsys, mutate, run_arg, extra, words):
    run = tmp_path / "run"
    shutil.copytree(template, run)
    mutate(run)
    fmt = {"run": str(run), "tmp": str(tmp_path)}
    argv = ["export", run_arg.format(**fmt)] + [a.format(**fmt) for a in extra]
    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else Path(argv[1]) / "export"
    check_refused(argv, out, tmp_path, capsys, words, "export")


def checkpoint_folder(run: Path) -> Path:
    root = run / "retrain" / "checkpoint"
    return root / json.loads((root / "latest.json").read_text())["folder"]


def edit_state(**changes) -> Callable[[Path], None]:
    def mutate(run: Path) -> None:
        path = checkpoint_folder(run) / "state.json"
        state = json.loads(path.read_text())
        for key, value in changes.items():
            state.pop(key) if value is None else state.__setitem__(key, value)
        path.write_text(json.dumps(state))
    return mutate


def edit_optim(drop: str | None = None, replace: object = None) -> Callable[[Path], None]:
    def mutate(run: Path) -> None:
        path = checkpoint_folder(run) / "optim.pt"
        if replace is not None:
            torch.save(replace, path)
            return
        data = torch.load(path, weights_only=True)
        data.pop(drop)
        torch.save(data, path)
    return mutate


def foreign_optimizer(run: Path) -> None:
    path = checkpoint_folder(run) / "optim.pt"
    data = torch.load(path, weights_only=True)
    data["optimizer"] = {"state": {}, "param_groups": [{"params": [0, 1], "lr": 0.1}]}
    torch.save(data, path)


def in_checkpoint(name: str, content: str | bytes) -> Callable[[Path], None]:
    def mutate(run: Path) -> None:
        path = checkpoint_folder(run) / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return mutate


def drop_metrics_and_checkpoint(run: Path) -> None:
    shutil.rmtree(run / "retrain")


def user_file_as_out(run: Path) -> None:
    (run.parent / "outfile").write_text("keep me")


RESUME = TRAIN + ["--epochs", "2", "--resume"]
RETRAIN_CASES = {
    "lr nan": (drop_metrics_and_checkpoint, TRAIN + ["--lr", "nan"], ["--lr", "nan"]),
    "lr inf": (drop_metrics_and_checkpoint, TRAIN + ["--lr", "inf"], ["--lr"]),
    "lr zero": (drop_metrics_and_checkpoint, TRAIN + ["--lr", "0"], ["--lr"]),
    "lr negative": (drop_metrics_and_checkpoint, TRAIN + ["--lr", "-0.1"], ["--lr"]),
    "epochs zero": (drop_metrics_and_checkpoint, TRAIN + ["--epochs", "0"], ["--epochs"]),
    "epochs negative": (drop_metrics_and_checkpoint, TRAIN + ["--epochs", "-1"], ["--epochs"]),
    "step-size zero": (drop_metrics_and_checkpoint, TRAIN + ["--step-size", "0"], ["--step-size"]),
    "batch-size zero": (drop_metrics_and_checkpoint, TRAIN + ["--batch-size", "0"], ["--batch-size"]),
    "seed negative": (drop_metrics_and_checkpoint, TRAIN + ["--seed", "-1"], ["--seed"]),
    "seed huge": (drop_metrics_and_checkpoint, TRAIN + ["--seed", str(2**64)], ["--seed"]),
    "workers negative": (drop_metrics_and_checkpoint, TRAIN + ["--workers", "-1"], ["--workers"]),
    "device bogus": (drop_metrics_and_checkpoint, TRAIN + ["--device", "bogus"], ["--device", "bogus"]),
    "device cuda:99": (drop_metrics_and_checkpoint, TRAIN + ["--device", "cuda:99"], ["--device"]),
    "input-size 3": (drop_metrics_and_checkpoint, TRAIN + ["--input-size", "3"], ["--input-size"]),
    "input-size 100000": (drop_metrics_and_checkpoint, TRAIN + ["--input-size", "100000"], ["--input-size"]),
    "dataset unknown": (drop_metrics_and_checkpoint, TRAIN + ["--dataset", "mnist2"], ["--dataset", "mnist2"]),
    "subset nan": (drop_metrics_and_checkpoint, TRAIN + ["--subset", "nan"], ["--subset"]),
    "resume and overwrite": (nothing, RESUME + ["--overwrite"], ["--resume", "--overwrite"]),
    "resume without checkpoint": (drop_metrics_and_checkpoint, RESUME, ["--resume", "latest.json"]),
    "earlier retrain kept": (nothing, TRAIN, ["--out", "metrics.json", "overwrite"]),
    "unfinished retrain kept": (lambda r: (r / "retrain" / "metrics.json").unlink(), TRAIN,
                                ["--out", "checkpoint", "resume"]),
    "out is a file": (user_file_as_out, TRAIN + ["--out", "{tmp}/outfile"], ["--out", "outfile"]),
    "out under a file": (user_file_as_out, TRAIN + ["--out", "{tmp}/outfile/x"], ["--out", "outfile"]),
    "bad run config": (lambda r: (drop_metrics_and_checkpoint(r), edit_space_config(widths=[-8])(r)), TRAIN,
                       ["best_genome.json", "widths"]),
    "resume state without epoch": (edit_state(epoch=None), RESUME, ["state.json", "'epoch'"]),
    "resume state garbage": (in_checkpoint("state.json", "{{{"), RESUME, ["state.json", "JSON"]),
    "resume state history short": (edit_state(history=[]), RESUME, ["state.json", "'history'"]),
    "resume pointer garbage": (write("retrain/checkpoint/latest.json", '{"epoch": 1, "folder": "../../x"}'),
                               RESUME, ["latest.json", "'folder'"]),
    "resume optim without scheduler": (edit_optim(drop="scheduler"), RESUME, ["optim.pt", "'scheduler'"]),
    "resume optim without rng": (edit_optim(drop="rng"), RESUME, ["optim.pt", "'rng'"]),
    "resume optim corrupted": (in_checkpoint("optim.pt", b"PK\x03\x04garbage"), RESUME, ["optim.pt"]),
    "resume optim empty": (in_checkpoint("optim.pt", b""), RESUME, ["optim.pt"]),
    "resume optim pickled object": (edit_optim(replace=argparse.Namespace(a=1)), RESUME, ["optim.pt"]),
    "resume optim foreign state": (edit_optim(replace={"optimizer": {"state": 5}, "scheduler": {}}), RESUME,
                                   ["optim.pt"]),
    "resume optim another optimizer": (foreign_optimizer, RESUME, ["optim.pt", "'optimizer'"]),
    "resume weights corrupted": (in_checkpoint("model.safetensors", b"\x00" * 40), RESUME, ["model.safetensors"]),
    "resume weights truncated": (lambda r: truncate("model.safetensors")(checkpoint_folder(r)), RESUME,
                                 ["model.safetensors"]),
    "resume with another lr": (nothing, RESUME + ["--lr", "0.1"], ["--lr", "0.05"]),
}


@pytest.mark.parametrize("mutate, extra, words", RETRAIN_CASES.values(), ids=RETRAIN_CASES.keys())
def test_retrain_bad_input(retrained, tmp_path, capsys, mutate, extra, words):
    run = tmp_path / "run"
    shutil.copytree(retrained, run)
    mutate(run)
    argv = ["retrain", str(run)] + [a.format(tmp=tmp_path) for a in extra]
    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else tmp_path / "none"  # none: nothing may change
    check_refused(argv, out, tmp_path, capsys, words, "retrain")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_retrain_cuda_without_gpu(retrained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(retrained, run)
    check_refused(["retrain", str(run), *TRAIN, "--device", "cuda", "--overwrite"], tmp_path / "none", tmp_path,
                  capsys, ["--device", "CUDA"], "retrain")


def test_retrain_diverging_loss_stops_without_metrics(template, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(template, run)
    line = check_refused(["retrain", str(run), *TRAIN, "--lr", "1e30"], run / "retrain", tmp_path, capsys,
                         ["--lr", "diverged"], "retrain", creates_out=True)
    assert "epoch 1" in line
    assert not (run / "retrain" / "metrics.json").exists() and not (run / "retrain" / "model.safetensors").exists()


def test_resume_with_fewer_epochs_than_the_checkpoint(retrained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(retrained, run)
    assert main(["retrain", str(run), *TRAIN, "--epochs", "2", "--overwrite"]) == 0
    capsys.readouterr()
    check_refused(["retrain", str(run), *TRAIN, "--epochs", "1", "--resume"], tmp_path / "none", tmp_path, capsys,
                  ["--epochs", "epoch 2"], "retrain")


# --- data safety -------------------------------------------------------------------------------------------------
def test_reexport_removes_only_its_own_stale_files(template, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(template, run)
    out = tmp_path / "exp"
    assert main(["export", str(run), "--out", str(out)]) == 0
    assert (out / "model.safetensors").exists() and (out / "best.arch").exists()
    (out / "notes.txt").write_text("mine")
    (run / "best.safetensors").unlink()
    (run / "best.arch").unlink()
    assert main(["export", str(run), "--out", str(out)]) == 0
    assert "no trained weights" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.py", "notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"


def test_export_refuses_a_foreign_folder_and_keeps_it(template, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(template, run)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text('{"lr": 0.1}')
    assert main(["export", str(run), "--out", str(mine)]) == 2
    assert "--out" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["config.json"] and (mine / "config.json").read_text() == '{"lr": 0.1}'


def test_nan_fitness_is_recorded_as_null(tmp_path):
    space = _space()
    write_best_genome(tmp_path, space, space.sample(np.random.default_rng(0)), fitness=float("nan"))

    def refuse(token):
        raise AssertionError(f"invalid JSON constant {token}")
    assert json.loads((tmp_path / "best_genome.json").read_text(), parse_constant=refuse)["fitness"] is None


def test_retrain_refuses_then_overwrites_then_resumes(retrained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(retrained, run)
    first = (run / "retrain" / "metrics.json").read_bytes()
    assert main(["retrain", str(run), *TRAIN]) == 2
    assert (run / "retrain" / "metrics.json").read_bytes() == first
    assert main(["retrain", str(run), *TRAIN, "--overwrite", "--seed", "1"]) == 0
    assert json.loads((run / "retrain" / "metrics.json").read_text())["config"]["seed"] == 1
    assert main(["retrain", str(run), *TRAIN, "--seed", "1", "--epochs", "2", "--resume"]) == 0
    metrics = json.loads((run / "retrain" / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]


def test_retrain_checkpoint_is_one_folder_behind_a_pointer(retrained, tmp_path):
    """A kill after a new epoch folder was written but before the pointer moved resumes from the old epoch,
    exactly as if uninterrupted; the next checkpoint removes the stray folder."""
    run = tmp_path / "run"
    shutil.copytree(retrained, run)
    root = run / "retrain" / "checkpoint"
    assert sorted(p.name for p in root.iterdir())[-1] == "latest.json" and len(list(root.iterdir())) == 2
    stray = root / "epoch-0002-0badc0de"
    stray.mkdir()
    (stray / "model.safetensors").write_bytes(b"half written")
    mine = root / "my-notes"
    mine.mkdir()
    cfg = RetrainConfig(epochs=2, step_size=1, lr=0.05, batch_size=128)
    resumed = retrain(run, "digits", cfg, resume=True, progress=False)
    full = retrain(run, "digits", cfg, out_dir=tmp_path / "full", progress=False)
    assert resumed["history"] == full["history"]
    a = load_file(str(run / "retrain" / "model.safetensors"))
    b = load_file(str(tmp_path / "full" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    names = sorted(p.name for p in root.iterdir())
    assert not stray.exists() and mine.exists() and len(names) == 3 and names[0].startswith("epoch-0002-")


def test_files_get_the_umask_permissions(template, tmp_path):
    """Export and retrain files are created like any file (0644 under umask 022), not 0600."""
    umask = os.umask(0)
    os.umask(umask)
    run = tmp_path / "run"
    shutil.copytree(template, run)
    export_run(run, tmp_path / "exp")
    retrain(run, "digits", FIXTURE_CONFIG, progress=False)
    written = list((tmp_path / "exp").iterdir()) + [run / "retrain"] + list((run / "retrain").rglob("*"))
    assert len(written) > 8
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == (0o777 if path.is_dir() else 0o666) & ~umask, path
