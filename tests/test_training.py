"""The training entry points end to end on a tiny real corpus (built with the corpus code from small traced CNNs):
a real ``Trainer`` for a few steps through each script's ``main(args)``, resuming, fine-tuning with a grown
vocabulary, the block classifier, the argument errors, and what a transformers user expects of the scripts
(logging, ``*_results.json``, ``trainer_state.json``, top-1/top-5 in every evaluation). No mocks but the Hub's HTTP."""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys

import numpy as np
import torch
import transformers

import pytest
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from arch_gpt.errors import UserInputError
from arch_gpt.hub import load_training_record
from arch_gpt.modeling import ArchGPT
from arch_gpt.tokenizer import LayerTokenizer
from arch_gpt.training import block_classifier, finetune, pretrain
from arch_gpt.training.corpus_loading import CorpusFolderError, load_windows
from arch_gpt.training.metrics import (
    next_layer_eval_metrics, next_layer_logits_for_metrics, next_layer_metrics, next_token_arrays,
)
from arch_gpt.training.stages import command_line, run_module, take_debug_flag
from model_fixtures import build_tiny_corpus, fake_hub, tiny_architectures  # noqa: F401 (fixture)

TINY_ARGS = ["--n_embd", "16", "--n_layer", "2", "--n_head", "2", "--per_device_train_batch_size", "16",
             "--disable_tqdm", "true", "--logging_steps", "2", "--use_cpu", "true", "--dataloader_pin_memory", "false"]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """A pretraining corpus of the plain ResNet-like nets and a fine-tuning corpus with Bottlenecks (new tokens)."""
    root = tmp_path_factory.mktemp("corpora")
    archs = tiny_architectures()
    plain = [a for a in archs if a.name.endswith("-0")]
    return build_tiny_corpus(root / "pre", plain), build_tiny_corpus(root / "fine", archs)


@pytest.fixture(scope="module")
def pretrained(corpora, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain")
    metrics = pretrain.main(["--data_dir", str(corpora[0]), "--output_dir", str(out), "--max_steps", "4",
                             "--save_strategy", "steps", "--save_steps", "2", "--eval_strategy", "steps",
                             "--eval_steps", "2", *TINY_ARGS])
    return out, metrics


def test_pretrain_writes_a_stock_checkpoint_with_metrics(pretrained):
    out, metrics = pretrained
    for key in ("next_layer_top1", "next_layer_top5", "perplexity", "most_frequent_baseline_top1",
                "bigram_baseline_top1"):
        assert 0 <= metrics[key] <= (float("inf") if key == "perplexity" else 1)
    assert metrics["next_layer_top5"] >= metrics["next_layer_top1"]
    assert (out / "checkpoint-4").is_dir() and (out / "model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(out)
    assert (model.config.n_layer, model.config.window, model.config.n_positions) == (2, 10, 11)
    (stage,) = load_training_record(out)
    assert stage.stage == "pretrain" and stage.command.startswith("python -m arch_gpt.training.pretrain --data_dir")
    assert stage.hyperparameters["steps_done"] == 4 and stage.hyperparameters["learning_rate"] == 1e-4
    card = (out / "README.md").read_text()
    assert f"| bigram_baseline_top1 | {metrics['bigram_baseline_top1']:.4f} |" in card


def test_pretrain_saves_results_and_state_like_the_transformers_examples(pretrained):
    out, metrics = pretrained
    for name in ("train_results.json", "eval_results.json", "all_results.json", "trainer_state.json"):
        assert (out / name).is_file(), name
    evaluated = json.loads((out / "eval_results.json").read_text())
    for key in ("next_layer_top1", "next_layer_top5", "perplexity", "bigram_baseline_top1"):
        assert evaluated[f"eval_{key}"] == metrics[key]
    assert json.loads((out / "train_results.json").read_text())["train_samples"] > 0
    assert {"train_loss", "eval_loss", "eval_next_layer_top5"} <= set(json.loads((out / "all_results.json").read_text()))
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    evals = [entry for entry in history if "eval_loss" in entry]
    assert [entry["step"] for entry in evals] == [2, 4]                  # --eval_steps 2, during training
    assert all(0 <= e["eval_next_layer_top1"] <= e["eval_next_layer_top5"] <= 1 and e["eval_perplexity"] >= 1
               for e in evals)


def test_trainer_metrics_equal_the_direct_computation(pretrained, corpora):
    """compute_metrics (through preprocess_logits_for_metrics) gives what the model gives window by window."""
    out, metrics = pretrained
    gpt = ArchGPT.from_pretrained(out, device="cpu")
    direct = next_layer_metrics(gpt.model, next_token_arrays(load_windows(corpora[0])["validation"]))
    for key in ("next_layer_top1", "next_layer_top5", "perplexity"):
        assert metrics[key] == pytest.approx(direct[key], rel=1e-5, abs=1e-9)


def test_evaluation_keeps_six_numbers_per_window_not_the_logits():
    logits = torch.randn(4, 11, 50, generator=torch.Generator().manual_seed(0))
    labels = torch.full((4, 11), -100)
    labels[:, 10] = torch.tensor([1, 2, 3, int(logits[3, 9].argmax())])
    kept = next_layer_logits_for_metrics((logits,), (labels, torch.tensor([1, 1, 1, 5])))
    assert kept.shape == (4, 6) and (kept[:, 0] == logits[:, 9].argmax(-1)).all()
    logp = torch.log_softmax(logits[:, 9], -1)[torch.arange(4), labels[:, 10]]
    assert torch.allclose(kept[:, 5], logp)
    result = next_layer_eval_metrics(transformers.EvalPrediction(
        predictions=kept.numpy(), label_ids=(labels.numpy(), np.array([1, 1, 1, 5]))))
    top1 = (np.array([1, 1, 1, 5]) * (kept[:, 0].numpy() == labels[:, 10].numpy())).sum() / 8
    assert result["next_layer_top1"] == pytest.approx(top1) and top1 >= 5 / 8
    assert result["perplexity"] == pytest.approx(float(np.exp(-(np.array([1, 1, 1, 5]) * logp.numpy()).sum() / 8)))


def test_scripts_log_like_the_transformers_examples_and_restore_logging(corpora, tmp_path, caplog):
    verbosity, level = transformers.utils.logging.get_verbosity(), logging.getLogger("arch_gpt").level
    pretrain.main(["--data_dir", str(corpora[0]), "--output_dir", str(tmp_path), "--max_steps", "1",
                   "--save_strategy", "no", "--eval_strategy", "no", *TINY_ARGS])
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("arch_gpt") and r.levelno == logging.INFO]
    assert any(m.startswith("training on ") for m in ours) and any(m.startswith("saved ArchGPT") for m in ours)
    assert transformers.utils.logging.get_verbosity() == verbosity
    assert logging.getLogger("arch_gpt").level == level


def test_module_run_shows_info_lines(corpora, tmp_path):
    """``python -m``: the scripts' info lines reach the terminal (stdout), transformers' metrics tables too."""
    proc = subprocess.run([sys.executable, "-m", pretrain.MODULE, "--data_dir", str(corpora[0]), "--output_dir",
                           str(tmp_path), "--max_steps", "1", "--save_strategy", "no", "--eval_strategy", "no",
                           *TINY_ARGS], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r" - INFO - arch_gpt\.training\.stages - saved ArchGPT checkpoint to ", proc.stdout), proc.stdout
    assert "***** eval metrics *****" in proc.stdout + proc.stderr


def test_a_late_user_error_is_still_one_line_on_stderr(pretrained, corpora, tmp_path):
    """Inputs are all checked before logging starts: resuming a checkpoint of another size fails in one line."""
    out, _ = pretrained
    proc = subprocess.run([sys.executable, "-m", pretrain.MODULE, "--data_dir", str(corpora[0]), "--output_dir",
                           str(tmp_path / "o"), "--max_steps", "5", "--resume_from_checkpoint",
                           str(out / "checkpoint-4"), *TINY_ARGS, "--n_embd", "8"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "key 'n_embd'" in lines[0], proc.stderr


def test_resume_continues_from_the_trainer_checkpoint(pretrained, corpora, tmp_path):
    out, _ = pretrained
    final = tmp_path / "final"
    pretrain.main(["--data_dir", str(corpora[0]), "--output_dir", str(out), "--max_steps", "4",
                   "--resume_from_checkpoint", "last", "--final_dir", str(final), "--save_strategy", "no",
                   "--eval_strategy", "no", "--seed", "123", *TINY_ARGS])  # another seed: a fresh run would differ
    resumed, saved = load_file(final / "model.safetensors"), load_file(out / "checkpoint-4" / "model.safetensors")
    assert resumed.keys() == saved.keys() and all((resumed[k] == saved[k]).all() for k in saved)
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4


def test_resume_from_missing_checkpoint_is_a_user_error(corpora, tmp_path):
    with pytest.raises(UserInputError, match="resume_from_checkpoint"):
        pretrain.main(["--data_dir", str(corpora[0]), "--output_dir", str(tmp_path), "--max_steps", "1",
                       "--resume_from_checkpoint", str(tmp_path / "nope"), *TINY_ARGS])


def test_finetune_grows_the_vocabulary_and_keeps_old_ids(pretrained, corpora, tmp_path):
    out, _ = pretrained
    metrics = finetune.main(["--model_name_or_path", str(out), "--data_dir", str(corpora[1]),
                             "--output_dir", str(tmp_path), "--max_steps", "2", "--save_strategy", "no",
                             "--eval_strategy", "no", *TINY_ARGS[6:]])
    old = LayerTokenizer.from_pretrained(out)
    gpt = ArchGPT.from_pretrained(tmp_path, device="cpu")
    corpus_tokens = LayerTokenizer.from_pretrained(corpora[1] / "tokenizer").layer_token_list
    assert gpt.tokenizer.vocab_size > old.vocab_size == len(old.get_vocab())
    assert all(gpt.tokenizer.get_vocab()[t] == i for t, i in old.get_vocab().items())
    assert all(gpt.tokenizer.in_vocab(t) for t in corpus_tokens)
    assert gpt.model.config.vocab_size == gpt.tokenizer.vocab_size
    assert [s.stage for s in gpt.stages] == ["pretrain", "finetune"] and "next_layer_top1" in metrics


def test_finetune_needs_a_checkpoint(corpora, tmp_path):
    with pytest.raises(UserInputError, match="model_name_or_path"):
        finetune.main(["--data_dir", str(corpora[1]), "--output_dir", str(tmp_path)])


def test_block_classifier_is_trained_and_saved_with_the_checkpoint(pretrained, corpora, tmp_path):
    out, _ = pretrained
    metrics = block_classifier.main(["--model_name_or_path", str(out), "--data_dir", str(corpora[1]),
                                     "--output_dir", str(tmp_path / "run"), "--final_dir", str(tmp_path / "final"),
                                     "--max_steps", "3", "--hidden_size", "16", "--save_strategy", "no",
                                     "--eval_strategy", "steps", "--eval_steps", "3", *TINY_ARGS[6:]])
    assert 0 <= metrics["block_accuracy"] <= 1 and "majority_block_baseline_accuracy" in metrics
    evaluated = json.loads((tmp_path / "run" / "eval_results.json").read_text())
    assert evaluated["eval_block_accuracy"] == metrics["block_accuracy"]
    assert evaluated["eval_majority_block_baseline_accuracy"] == metrics["majority_block_baseline_accuracy"]
    history = json.loads((tmp_path / "run" / "trainer_state.json").read_text())["log_history"]
    assert [e["step"] for e in history if "eval_block_accuracy" in e][:1] == [3]
    gpt = ArchGPT.from_pretrained(tmp_path / "final", device="cpu")
    names = json.loads((corpora[1] / "summary.json").read_text()).get("label_names") or \
        gpt.block_classifier.config.label_names
    assert gpt.block_classifier.config.label_names == list(names)
    assert gpt.block_classifier.config.embed_dim == gpt.model.config.n_embd
    assert "block_accuracy" in (tmp_path / "final" / "README.md").read_text()
    assert not (tmp_path / "final" / "checkpoint-3").exists()


def test_push_to_hub_without_model_id_is_a_user_error(corpora, tmp_path):
    with pytest.raises(UserInputError, match="hub_model_id"):
        pretrain.main(["--data_dir", str(corpora[0]), "--output_dir", str(tmp_path), "--max_steps", "1",
                       "--push_to_hub", "true", *TINY_ARGS])


def test_push_to_hub_uploads_the_final_checkpoint_once(corpora, tmp_path, fake_hub):
    """Hub HTTP is intercepted by the fake_hub fixture: nothing leaves the machine."""
    pretrain.main(["--data_dir", str(corpora[0]), "--output_dir", str(tmp_path), "--max_steps", "1",
                   "--save_strategy", "no", "--eval_strategy", "no", "--push_to_hub", "true",
                   "--hub_model_id", "me/tiny", "--hub_token", "hf_test_token", *TINY_ARGS])
    commits = [r for r in fake_hub.requests if r[1].endswith("/commit/main")]
    assert len(commits) == 1 and "model.safetensors" in fake_hub.committed
    assert b"# me/tiny" in fake_hub.committed["README.md"] and b"next_layer_top1" in fake_hub.committed["README.md"]
    assert not any(b"hf_test_token" in content for content in fake_hub.committed.values())  # no secret in the card


def test_data_dir_that_is_not_a_corpus_is_a_user_error(tmp_path):
    with pytest.raises(CorpusFolderError, match="not a corpus folder"):
        pretrain.main(["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "o"), *TINY_ARGS])


def test_unknown_loss_weighting_is_rejected(corpora, tmp_path):
    with pytest.raises(ValueError, match="loss_weighting"):
        pretrain.main(["--data_dir", str(corpora[0]), "--output_dir", str(tmp_path), "--max_steps", "1",
                       "--loss_weighting", "log", *TINY_ARGS])


def test_time_budget_stops_training_early(corpora, tmp_path):
    pretrain.main(["--data_dir", str(corpora[0]), "--output_dir", str(tmp_path), "--max_steps", "500",
                   "--max_train_minutes", "0.0001", "--save_strategy", "no", "--eval_strategy", "no", *TINY_ARGS])
    (stage,) = load_training_record(tmp_path)
    assert stage.hyperparameters["steps_done"] == 1 and stage.hyperparameters["max_train_minutes"] == 0.0001
    assert stage.command.endswith("--max_steps 1") and "max_train_minutes" not in stage.command  # replayable


def test_recorded_command_drops_secrets_and_replays_budgets_as_steps():
    args = ["--data_dir", "d", "--hub_token=hf_x", "--max_train_minutes", "5", "--resume_from_checkpoint", "last",
            "--max_steps", "900"]
    assert command_line("arch_gpt.training.pretrain", args, 37) == \
        "python -m arch_gpt.training.pretrain --data_dir d --max_steps 37"
    assert command_line("m", ["--max_steps", "9", "--hub_token", "hf_y"], 9) == "python -m m --max_steps 9"


def test_bare_debug_is_ours_and_a_valued_one_stays_the_trainers():
    assert take_debug_flag(["--data_dir", "d", "--debug"]) == (["--data_dir", "d"], True)
    assert take_debug_flag(["--debug", "--data_dir", "d"]) == (["--data_dir", "d"], True)
    assert take_debug_flag(["--debug", "underflow_overflow"]) == (["--debug", "underflow_overflow"], False)


def test_a_bug_is_one_line_and_exit_1_and_debug_shows_it(capsys, monkeypatch):
    monkeypatch.delenv("ARCH_GPT_DEBUG", raising=False)

    def buggy(args):
        raise KeyError("oops")

    assert run_module("m", buggy, []) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: KeyError" in err and "--debug" in err
    with pytest.raises(KeyError):
        run_module("m", buggy, ["--debug"])
