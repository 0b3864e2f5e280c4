"""Bad-input table for ``arch-gpt corpus`` and the three training modules (pretrain, finetune, block_classifier).

Each case runs the entry point the way its command line does (``arch_gpt.cli.main`` / the modules' ``run_module``,
which their ``__main__`` calls) and asserts: exit code 2, one line on stderr naming the flag or file, no traceback,
and nothing on disk changed (the output folder included: every case fails before any work). Inputs are tiny: one
small corpus of traced CNNs and an untrained TINY checkpoint made without training.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
from datasets import load_from_disk

from arch_gpt.cli import main as cli_main
from arch_gpt.modeling import TINY, ArchGPT
from arch_gpt.tokenizer import LayerTokenizer
from arch_gpt.training import block_classifier, finetune, pretrain
from arch_gpt.training.stages import run_module
from model_fixtures import build_tiny_corpus, tiny_architectures

PROGRESS_BAR = re.compile(r"\| *\d+/\d+ \[")
MODULES = {"pretrain": pretrain, "finetune": finetune, "block_classifier": block_classifier}
RUN = ["--per_device_train_batch_size", "8", "--disable_tqdm", "true", "--use_cpu", "true", "--max_steps", "1",
       "--save_strategy", "no", "--eval_strategy", "no", "--report_to", "none"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A tiny corpus, an untrained TINY checkpoint of its vocabulary, and one with a 5-token window."""
    root = tmp_path_factory.mktemp("world")
    corpus = build_tiny_corpus(root / "corpus", [a for a in tiny_architectures() if a.name.endswith("-0")])
    tokenizer = LayerTokenizer.from_pretrained(corpus / "tokenizer")
    ArchGPT.create(tokenizer, device="cpu", **TINY).save_pretrained(root / "ckpt")
    ArchGPT.create(tokenizer, device="cpu", window=5, **TINY).save_pretrained(root / "ckpt5")
    return {"root": root, "corpus": corpus, "ckpt": root / "ckpt", "ckpt5": root / "ckpt5"}


def snapshot(*roots: Path) -> dict[str, tuple]:
    """Every path under ``roots`` with its kind, size and modification time."""
    seen = {}
    for root in roots:
        for path in [root, *root.rglob("*")]:
            st = path.lstat()
            seen[str(path)] = (path.is_dir(), st.st_size, st.st_mtime_ns)
    return seen


def one_error_line(err: str, prog: str) -> str:
    """The error line of ``err``, checked to be the only line besides progress bars (e.g. transformers' loading
    bar, drawn with carriage returns)."""
    lines = [line for line in re.split(r"[\r\n]", err) if line.strip() and not PROGRESS_BAR.search(line)]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: "), err
    return lines[0]


# ----------------------------------------------------------------------------- corpus folders made bad

def _copy(world: dict[str, Path], tmp: Path) -> Path:
    return Path(shutil.copytree(world["corpus"], tmp / "bad"))


def _write(relative: str, text: str) -> Callable[[dict, Path, str], Path]:
    def make(world: dict, tmp: Path, part: str) -> Path:
        corpus = _copy(world, tmp)
        (corpus / relative.format(part=part)).write_text(text)
        return corpus
    return make


def _garbage_arrow(world: dict, tmp: Path, part: str) -> Path:
    corpus = _copy(world, tmp)
    for arrow in (corpus / part / "train").glob("*.arrow"):
        arrow.write_bytes(b"not an arrow file")
    return corpus


def _missing_split(world: dict, tmp: Path, part: str) -> Path:
    corpus = _copy(world, tmp)
    shutil.rmtree(corpus / part / "validation")
    return corpus


def _renamed_column(world: dict, tmp: Path, part: str) -> Path:
    corpus = _copy(world, tmp)
    splits = load_from_disk(str(corpus / part))
    splits = splits.rename_column("input_ids" if part == "lm" else "context_ids", "ids")
    splits.save_to_disk(str(tmp / "renamed"))
    shutil.rmtree(corpus / part)
    os.replace(tmp / "renamed", corpus / part)
    return corpus


def _small_tokenizer(world: dict, tmp: Path, part: str) -> Path:
    corpus = _copy(world, tmp)
    shutil.rmtree(corpus / "tokenizer")
    tokens = LayerTokenizer.from_pretrained(world["corpus"] / "tokenizer").layer_token_list
    LayerTokenizer.from_tokens(tokens[:1]).save_pretrained(corpus / "tokenizer")
    return corpus


def _empty_heldout(world: dict, tmp: Path, part: str) -> Path:
    corpus = _copy(world, tmp)
    splits = load_from_disk(str(corpus / part))
    splits["validation"] = splits["validation"].select([])
    splits.save_to_disk(str(tmp / "emptied"), num_shards={"validation": 1})
    shutil.rmtree(corpus / part)
    os.replace(tmp / "emptied", corpus / part)
    return corpus


CORPUS_CASES = {  # id: (make the corpus folder, needle in the message)
    "data-dir-missing": (lambda w, t, p: t / "nope", "no such corpus folder"),
    "data-dir-is-a-file": (lambda w, t, p: (t / "file").write_text("x") and t / "file", "a file, not a corpus folder"),
    "data-dir-empty": (lambda w, t, p: (t / "empty").mkdir() or t / "empty", "tokenizer.json missing"),
    "dataset-dict-json-corrupt": (_write("{part}/dataset_dict.json", '{"splits": ["train",'),
                                  "dataset_dict.json: line 1"),
    "dataset-dict-json-a-list": (_write("{part}/dataset_dict.json", "[1, 2]"), "key 'splits'"),
    "state-json-corrupt": (_write("{part}/train/state.json", "{\n  oops"), "train/state.json: line 2"),
    "arrow-garbage": (_garbage_arrow, "train: cannot be read as a dataset"),
    "split-folder-missing": (_missing_split, "validation/state.json: missing"),
    "column-renamed": (_renamed_column, "column(s)"),
    "ids-beyond-tokenizer": (_small_tokenizer, "ids must be in [0,"),
    "tokenizer-json-corrupt": (_write("tokenizer/tokenizer.json", "{"), "tokenizer"),
    "tokenizer-json-empty-object": (_write("tokenizer/tokenizer.json", "{}"), "tokenizer.json"),
    "summary-json-corrupt": (_write("summary.json", '{"corpus": '), "summary.json: line 1"),
    "heldout-split-empty": (_empty_heldout, "is empty (a corpus built with --validation-fraction 0?)"),
}

ARGUMENT_CASES = {  # id: (extra arguments, needle); {out} is the case's output folder
    "lr-nan": (["--learning_rate", "nan"], "--learning_rate"),
    "lr-negative": (["--learning_rate", "-0.1"], "--learning_rate"),
    "lr-inf": (["--learning_rate", "inf"], "--learning_rate"),
    "seed-negative": (["--seed", "-1"], "--seed"),
    "data-seed-huge": (["--data_seed", str(2**40)], "--data_seed"),
    "no-steps": (["--max_steps", "0", "--num_train_epochs", "0"], "--max_steps"),
    "no-epochs": (["--max_steps", "-1", "--num_train_epochs", "0"], "at least one step"),
    "epochs-nan": (["--max_steps", "-1", "--num_train_epochs", "nan"], "--num_train_epochs"),
    "batch-size-zero": (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size"),
    "weight-decay-nan": (["--weight_decay", "nan"], "--weight_decay"),
    "max-train-windows-zero": (["--max_train_windows", "0"], "--max_train_windows"),
    "subsample-seed-negative": (["--subsample_seed", "-3"], "--subsample_seed"),
    "loss-weighting-unknown": (["--loss_weighting", "log"], "--loss_weighting"),
    "time-budget-zero": (["--max_train_minutes", "0"], "--max_train_minutes"),
    "heldout-split-unknown": (["--heldout_split", "nope"], "--heldout_split"),
    "push-without-repo": (["--push_to_hub", "true"], "--hub_model_id"),
    "eval-steps-zero": (["--eval_strategy", "steps", "--eval_steps", "0", "--logging_steps", "0"],
                        "--logging_steps"),
    "resume-from-nothing": (["--resume_from_checkpoint", "{out}/checkpoint-9"], "--resume_from_checkpoint"),
    "resume-last-without-checkpoint": (["--resume_from_checkpoint", "last"], "no checkpoint-* folder"),
}


def _output_cases(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """Output folders that must not be written: made here, inside the case's folder."""
    (tmp / "used").mkdir()
    (tmp / "used" / "precious.txt").write_text("keep me")
    (tmp / "a-file").write_text("keep me")
    (tmp / "not-a-checkpoint").mkdir()
    (tmp / "not-a-checkpoint" / "notes.txt").write_text("keep me")
    mismatch = tmp / "run" / "checkpoint-1"
    mismatch.mkdir(parents=True)
    (mismatch / "trainer_state.json").write_text(json.dumps({"global_step": 1}))
    (mismatch / "config.json").write_text(json.dumps({"vocab_size": 3}))
    damaged = tmp / "damaged" / "checkpoint-2"
    damaged.mkdir(parents=True)
    (damaged / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    (damaged / "config.json").write_text("{}")
    (damaged / "model.safetensors").write_bytes(b"\x08" + b"\x00" * 30)
    return {
        "output-dir-not-empty": (["--output_dir", str(tmp / "used")], "--overwrite_output_dir"),
        "output-dir-is-a-file": (["--output_dir", str(tmp / "a-file")], "is an existing file"),
        "output-dir-under-a-file": (["--output_dir", str(tmp / "a-file" / "out")], "which is a file"),
        "final-dir-not-empty": (["--final_dir", str(tmp / "used")], "--final_dir"),
        "resume-from-a-non-checkpoint": (["--resume_from_checkpoint", str(tmp / "not-a-checkpoint")],
                                         "not a Trainer checkpoint"),
        "resume-other-model": (["--output_dir", str(tmp / "run"), "--resume_from_checkpoint", "last"],
                               "key 'vocab_size'"),
        "resume-damaged-weights": (["--output_dir", str(tmp / "damaged"), "--resume_from_checkpoint", "last"],
                                   "checkpoint-2/model.safetensors: not readable"),
    }


OUTPUT_CASE_IDS = ["output-dir-not-empty", "output-dir-is-a-file", "output-dir-under-a-file", "final-dir-not-empty",
                   "resume-from-a-non-checkpoint", "resume-other-model", "resume-damaged-weights"]

PRETRAIN_CASES = {
    "n-embd-zero": (["--n_embd", "0"], "--n_embd"),
    "n-layer-negative": (["--n_layer", "-1"], "--n_layer"),
    "n-layer-zero": (["--n_layer", "0"], "--n_layer"),
    "n-head-not-dividing": (["--n_head", "3"], "--n_head"),
    "n-head-zero": (["--n_head", "0"], "--n_head"),
    "dropout-one": (["--dropout", "1.0"], "--dropout"),
    "checkpoint-given": (["--model_name_or_path", "{ckpt}"], "--model_name_or_path"),
}


def _checkpoint_cases(world: dict, tmp: Path) -> dict[str, tuple[list[str], str]]:
    """Start checkpoints that are not what they claim (made inside the case's folder)."""
    def variant(name: str, edit: Callable[[Path], None]) -> str:
        folder = Path(shutil.copytree(world["ckpt"], tmp / name))
        edit(folder)
        return str(folder)

    flag = "--model_name_or_path"
    return {
        "checkpoint-missing-flag": ([flag, ""], "--model_name_or_path: required"),
        "checkpoint-folder-missing": ([flag, str(tmp / "no-such-ckpt")], flag),
        "checkpoint-is-a-corpus": ([flag, str(world["corpus"])], "config.json"),
        "checkpoint-of-another-model": (
            [flag, variant("bert", lambda f: (f / "config.json").write_text('{"model_type": "bert"}'))],
            "'model_type'"),
        "checkpoint-config-corrupt": ([flag, variant("badcfg", lambda f: (f / "config.json").write_text("{\n,"))],
                                      "config.json: line 2"),
        "checkpoint-weights-garbage": (
            [flag, variant("garbage", lambda f: (f / "model.safetensors").write_bytes(b"\x00" * 40))], flag),
        "checkpoint-weights-empty": (
            [flag, variant("empty", lambda f: (f / "model.safetensors").write_bytes(b""))], flag),
        "checkpoint-window-differs": ([flag, str(world["ckpt5"])], "predicts from 5 tokens"),
    }


CHECKPOINT_CASE_IDS = ["checkpoint-missing-flag", "checkpoint-folder-missing", "checkpoint-is-a-corpus",
                       "checkpoint-of-another-model", "checkpoint-config-corrupt", "checkpoint-weights-garbage",
                       "checkpoint-weights-empty", "checkpoint-window-differs"]

BLOCK_CASES = {
    "hidden-size-zero": (["--hidden_size", "0"], "--hidden_size"),
    "embed-dim-zero": (["--embed_dim", "0"], "--embed_dim"),
    "hidden-layers-negative": (["--num_hidden_layers", "-1"], "--num_hidden_layers"),
    "classifier-dropout-one": (["--classifier_dropout", "1"], "--classifier_dropout"),
}


def base_args(module: str, world: dict, tmp: Path, data_dir: Path | None = None) -> list[str]:
    args = ["--data_dir", str(data_dir or world["corpus"]), "--output_dir", str(tmp / "out"), *RUN]
    if module == "pretrain":
        return [*args, "--n_embd", "16", "--n_layer", "1", "--n_head", "2"]
    return ["--model_name_or_path", str(world["ckpt"]), *args, *(["--hidden_size", "8"]
                                                                  if module == "block_classifier" else [])]


def run_case(module: str, args: list[str], world: dict, tmp: Path, capsys) -> str:
    """Run ``python -m arch_gpt.training.<module> args`` in-process; assert exit 2, one line, nothing changed."""
    before = snapshot(world["root"], tmp)
    capsys.readouterr()
    rc = run_module(MODULES[module].MODULE, MODULES[module].main, args)
    err = capsys.readouterr().err
    assert rc == 2, err
    line = one_error_line(err, f"python -m {MODULES[module].MODULE}")
    assert snapshot(world["root"], tmp) == before
    return line


def _fill(args: list[str], world: dict, tmp: Path) -> list[str]:
    return [a.format(out=tmp / "out", ckpt=world["ckpt"]) for a in args]


@pytest.mark.parametrize("module", list(MODULES))
@pytest.mark.parametrize("case", list(CORPUS_CASES))
def test_bad_corpus_folder(module, case, world, tmp_path, capsys):
    make, needle = CORPUS_CASES[case]
    part = "blocks" if module == "block_classifier" else "lm"
    data_dir = make(world, tmp_path, part)
    line = run_case(module, base_args(module, world, tmp_path, data_dir), world, tmp_path, capsys)
    assert needle in line and str(data_dir) in line


@pytest.mark.parametrize("module", list(MODULES))
@pytest.mark.parametrize("case", list(ARGUMENT_CASES))
def test_bad_argument(module, case, world, tmp_path, capsys):
    extra, needle = ARGUMENT_CASES[case]
    line = run_case(module, [*base_args(module, world, tmp_path), *_fill(extra, world, tmp_path)], world, tmp_path,
                    capsys)
    assert needle in line


@pytest.mark.parametrize("module", list(MODULES))
@pytest.mark.parametrize("case", OUTPUT_CASE_IDS)
def test_output_folder_is_never_overwritten(module, case, world, tmp_path, capsys):
    extra, needle = _output_cases(tmp_path)[case]
    line = run_case(module, [*base_args(module, world, tmp_path), *extra], world, tmp_path, capsys)
    assert needle in line


@pytest.mark.parametrize("case", list(PRETRAIN_CASES))
def test_bad_gpt_size(case, world, tmp_path, capsys):
    extra, needle = PRETRAIN_CASES[case]
    line = run_case("pretrain", [*base_args("pretrain", world, tmp_path), *_fill(extra, world, tmp_path)], world,
                    tmp_path, capsys)
    assert needle in line


@pytest.mark.parametrize("module", ["finetune", "block_classifier"])
@pytest.mark.parametrize("case", CHECKPOINT_CASE_IDS)
def test_bad_start_checkpoint(module, case, world, tmp_path, capsys):
    extra, needle = _checkpoint_cases(world, tmp_path)[case]
    line = run_case(module, [*base_args(module, world, tmp_path), *extra], world, tmp_path, capsys)
    assert needle in line and "--model_name_or_path" in line


@pytest.mark.parametrize("case", list(BLOCK_CASES))
def test_bad_classifier_size(case, world, tmp_path, capsys):
    extra, needle = BLOCK_CASES[case]
    line = run_case("block_classifier", [*base_args("block_classifier", world, tmp_path), *extra], world, tmp_path,
                    capsys)
    assert needle in line


def test_case_id_lists_match_their_tables(world, tmp_path):
    for sub in ("o", "c", "k"):
        (tmp_path / sub).mkdir()
    assert set(OUTPUT_CASE_IDS) == set(_output_cases(tmp_path / "o"))
    assert set(CHECKPOINT_CASE_IDS) == set(_checkpoint_cases(world, tmp_path / "c"))
    assert set(CORPUS_CLI_CASE_IDS) == set(_corpus_cases(tmp_path / "k"))


def test_unknown_flag_is_argparse_usage_error(world, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_module(pretrain.MODULE, pretrain.main, [*base_args("pretrain", world, tmp_path), "--n_layers", "2"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "unrecognized arguments: --n_layers 2" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 2  # usage line + error line
    assert not (tmp_path / "out").exists()


def test_module_command_line_exits_2_with_one_line(world, tmp_path):
    """The ``__main__`` path itself, in a subprocess."""
    before = snapshot(world["root"], tmp_path)
    proc = subprocess.run([sys.executable, "-m", pretrain.MODULE, *base_args("pretrain", world, tmp_path),
                           "--n_layer", "-1"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2, proc.stderr
    assert one_error_line(proc.stderr, f"python -m {pretrain.MODULE}").endswith("--n_layer: must be a positive "
                                                                                  "integer, got -1")
    assert snapshot(world["root"], tmp_path) == before


# ----------------------------------------------------------------------------- arch-gpt corpus

NB = ["nasbench101", "--max-vertices", "3", "--vocab-models", "resnet18"]
TV = ["torchvision", "--models", "resnet18"]


def _corpus_cases(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """id: (arguments after ``corpus``, needle); the bad files and folders are made inside ``tmp``."""
    (tmp / "a-file").write_text("keep me")
    (tmp / "used").mkdir()
    (tmp / "used" / "precious.txt").write_text("keep me")
    (tmp / "empty-folder").mkdir()
    (tmp / "bad-tok").mkdir()
    (tmp / "bad-tok" / "tokenizer.json").write_text("{")
    (tmp / "odd-tok").mkdir()
    (tmp / "odd-tok" / "tokenizer.json").write_text("{}")
    (tmp / "garbage.tfrecord").write_bytes(b"this is not a TFRecord file at all")
    (tmp / "empty.tfrecord").write_bytes(b"")
    (tmp / "link").symlink_to(tmp / "used")
    return {
        "nb-seed-negative": ([*NB, "--seed", "-1"], "--seed"),
        "tv-seed-negative": ([*TV, "--seed", "-1"], "--seed"),
        "workers-negative": ([*NB, "--workers", "-1"], "--workers"),
        "workers-zero": ([*NB, "--workers", "0"], "--workers"),
        "max-archs-zero": ([*NB, "--max-archs", "0"], "--max-archs"),
        "validation-fraction-above-one": ([*TV, "--validation-fraction", "1.5"], "validation-fraction"),
        "validation-fraction-nan": ([*NB, "--validation-fraction", "nan"], "validation-fraction"),
        "threshold-two": ([*NB, "--threshold", "2"], "--threshold"),
        "threshold-nan": ([*NB, "--threshold", "nan"], "--threshold"),
        "input-size-zero": ([*TV, "--input-size", "0"], "--input-size"),
        "input-size-huge": ([*TV, "--input-size", "100000"], "--input-size"),
        "nb-input-size-huge": ([*NB, "--input-size", "100000"], "--input-size"),
        "max-vertices-nine": ([*NB[:1], "--max-vertices", "9"], "--max-vertices"),
        "out-is-a-file": ([*TV, "--out", str(tmp / "a-file")], "is an existing file"),
        "out-under-a-file": ([*TV, "--out", str(tmp / "a-file" / "corpus")], "which is a file"),
        "out-not-empty": ([*TV, "--out", str(tmp / "used")], "--overwrite"),
        "overwrite-non-corpus": ([*TV, "--out", str(tmp / "used"), "--overwrite"], "not a corpus folder"),
        "out-symlink": ([*TV, "--out", str(tmp / "link"), "--overwrite"], "symbolic link"),
        "models-unknown": (["torchvision", "--models", "resnet18,alexnet"], "alexnet"),
        "models-repeated": (["torchvision", "--models", "resnet18,resnet18"], "--models"),
        "models-empty": (["torchvision", "--models", ""], "--models"),
        "vocab-models-unknown": ([*NB[:3], "--vocab-models", "vgg11"], "--vocab-models"),
        "vocab-spaces-unknown": ([*NB, "--vocab-spaces", "darts"], "--vocab-spaces"),
        "tokenizer-missing": ([*TV, "--tokenizer", str(tmp / "no-tok")], "--tokenizer"),
        "tokenizer-empty-folder": ([*TV, "--tokenizer", str(tmp / "empty-folder")], "not a tokenizer folder"),
        "tokenizer-json-corrupt": ([*TV, "--tokenizer", str(tmp / "bad-tok")], "--tokenizer"),
        "tokenizer-json-not-a-tokenizer": ([*TV, "--tokenizer", str(tmp / "odd-tok")], "--tokenizer"),
        "record-missing": ([*NB, "--nasbench-record", str(tmp / "no.tfrecord")], "no.tfrecord"),
        "record-garbage": ([*NB, "--nasbench-record", str(tmp / "garbage.tfrecord")], "garbage.tfrecord"),
        "record-empty": ([*NB, "--nasbench-record", str(tmp / "empty.tfrecord")], "no records"),
        "record-is-a-folder": ([*NB, "--nasbench-record", str(tmp / "empty-folder")], "is a folder"),
    }


CORPUS_CLI_CASE_IDS = [
    "nb-seed-negative", "tv-seed-negative", "workers-negative", "workers-zero", "max-archs-zero",
    "validation-fraction-above-one", "validation-fraction-nan", "threshold-two", "threshold-nan", "input-size-zero",
    "input-size-huge", "nb-input-size-huge", "max-vertices-nine", "out-is-a-file", "out-under-a-file",
    "out-not-empty", "overwrite-non-corpus", "out-symlink", "models-unknown", "models-repeated", "models-empty",
    "vocab-models-unknown", "vocab-spaces-unknown", "tokenizer-missing", "tokenizer-empty-folder",
    "tokenizer-json-corrupt", "tokenizer-json-not-a-tokenizer", "record-missing", "record-garbage", "record-empty",
    "record-is-a-folder"]


@pytest.mark.parametrize("case", CORPUS_CLI_CASE_IDS)
def test_corpus_bad_input(case, tmp_path, capsys):
    args, needle = _corpus_cases(tmp_path)[case]
    default_out = ["--out", str(tmp_path / "new-corpus")] if "--out" not in args else []
    before = snapshot(tmp_path)
    capsys.readouterr()
    rc = cli_main(["corpus", args[0], *default_out, "--no-progress", *args[1:]])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert needle in one_error_line(err, "arch-gpt corpus")
    assert snapshot(tmp_path) == before
