"""`arch-gpt search` end to end: tabular NAS-Bench-201 (a synthetic full table written here), a tiny GPT
built here for +gpt, digits training on a tiny budget, resume, and one test per bad input."""
import itertools
import json

import numpy as np
import pytest

from arch_gpt import modeling
from arch_gpt.cli import main
from arch_gpt.search import loop
from arch_gpt.search.spaces import create_space
from arch_gpt.tokenizer.tokenization import LayerTokenizer

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def _arch_str(ops):
    return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A synthetic table over all 15625 cells: more 3x3 convs score higher (optimum: all nor_conv_3x3)."""
    rng = np.random.default_rng(0)
    data = {}
    for ops in itertools.product(OPS, repeat=6):
        score = 80 + 2 * ops.count("nor_conv_3x3") + float(rng.random())
        data[_arch_str(ops)] = {"val_acc_200": score, "test_acc_200": score + 1, "rank": 1}
    path = tmp_path_factory.mktemp("bench") / "nb201.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    space = create_space("nasbench201")
    tokenizer = LayerTokenizer.build([space.to_architecture(space.parse(_arch_str((op,) * 6))) for op in OPS])
    folder = tmp_path_factory.mktemp("gpt") / "tiny"
    modeling.ArchGPT.create(tokenizer, **modeling.TINY).save_pretrained(folder)
    return folder


def _search(*args):
    return main(["search", "--no-progress", *map(str, args)])


def test_tabular_ga_writes_the_run_folder(table, tmp_path, capsys):
    out = tmp_path / "run"
    assert _search("--space", "nasbench201", "--benchmark", table, "--strategy", "ga", "--budget", 40,
                   "--population", 10, "--output", out) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["strategy"] == "ga" and result["space"] == "nasbench201" and result["evaluations"] == 40
    assert result["best"]["test_acc"] == pytest.approx(result["best"]["fitness"] + 1)
    assert len((out / "history.jsonl").read_text().splitlines()) == 40
    printed = capsys.readouterr().out
    assert f"best:        {result['best']['key']}" in printed and "test acc:" in printed


def test_tabular_ga_gpt_killed_between_generations_resumes_to_the_same_result(table, tiny_model, tmp_path,
                                                                            monkeypatch):
    args = ["--space", "nasbench201", "--benchmark", table, "--strategy", "ga+gpt", "--model", tiny_model,
            "--budget", 20, "--population", 5, "--seed", 3]
    assert _search(*args, "--output", tmp_path / "a") == 0
    real, saved = loop.save_checkpoint, []

    def save_then_die(*a, **kw):  # Ctrl-C right after the 2nd generation's checkpoint
        real(*a, **kw)
        saved.append(1)
        if len(saved) == 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    assert _search(*args, "--output", tmp_path / "b") == 130
    assert not (tmp_path / "b" / "result.json").exists()
    monkeypatch.setattr(loop, "save_checkpoint", real)
    assert _search(*args, "--output", tmp_path / "b", "--resume") == 0
    a, b = (json.loads((tmp_path / x / "result.json").read_text()) for x in "ab")
    a.pop("timings"), b.pop("timings")
    assert a == b and a["strategy"] == "ga+gpt"
    ha, hb = ([json.loads(l)["key"] for l in (tmp_path / x / "history.jsonl").read_text().splitlines()] for x in "ab")
    assert ha == hb and len(ha) == 20


@pytest.mark.parametrize("strategy", ["random", "re"])
def test_other_strategies_run(table, tmp_path, strategy):
    assert _search("--space", "nasbench201", "--benchmark", table, "--strategy", strategy, "--budget", 12,
                   "--population", 4, "--output", tmp_path / strategy) == 0
    assert json.loads((tmp_path / strategy / "result.json").read_text())["evaluations"] == 12


def test_digits_training_on_a_tiny_budget(tmp_path, capsys):
    out = tmp_path / "digits"
    assert _search("--strategy", "random", "--population", 2, "--generations", 1, "--epochs", 1,
                   "--subset", 0.3, "--output", out) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["space"] == "blocks" and result["evaluations"] == 2
    assert 0.0 <= result["best"]["test_acc"] <= 1.0 and result["best"]["params"] > 0
    assert (out / "best.arch").exists() and (out / "best.safetensors").exists()
    printed = capsys.readouterr().out
    assert "id:1;" not in printed and "best.arch" in printed  # the layers stay in the file unless asked for


def _error(capsys, *args):
    code = _search(*args)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_missing_model_is_named(table, tmp_path, capsys):
    err = _error(capsys, "--space", "nasbench201", "--benchmark", table, "--model", tmp_path / "no-gpt",
                 "--output", tmp_path / "x")
    assert "--model" in err and "no-gpt" in err


def test_resume_needs_output(capsys):
    assert "--resume" in _error(capsys, "--resume")


def test_resume_needs_a_checkpoint(table, tmp_path, capsys):
    err = _error(capsys, "--space", "nasbench201", "--benchmark", table, "--strategy", "ga", "--output", tmp_path,
                 "--resume")
    assert "nothing to resume" in err


@pytest.mark.parametrize("flag, value", [("--population", 0), ("--budget", 0), ("--generations", -1),
                                         ("--epochs", -2)])
def test_bad_sizes(capsys, flag, value):
    assert flag in _error(capsys, "--strategy", "ga", flag, value)


def test_budget_and_generations_together(capsys):
    assert "--budget, --generations: give one of them" in _error(capsys, "--strategy", "ga", "--budget", 5, "--generations", 2)


def test_unknown_space(capsys):
    assert "unknown search space 'cells'" in _error(capsys, "--space", "cells", "--strategy", "ga")


def test_missing_benchmark_file(tmp_path, capsys):
    assert "nope.json" in _error(capsys, "--space", "nasbench201", "--benchmark", tmp_path / "nope.json",
                                 "--strategy", "ga")


def test_table_of_another_space(table, capsys):
    assert "nasbench-macro" in _error(capsys, "--space", "nasbench-macro", "--benchmark", table, "--strategy", "ga")


def test_bad_mask_rate(table, tiny_model, capsys):
    assert "--mask-rate" in _error(capsys, "--space", "nasbench201", "--benchmark", table, "--model", tiny_model,
                                   "--mask-rate", 1.5)


def test_tabular_ga_gpt_ft_runs_from_search(table, tiny_model, tmp_path):
    out = tmp_path / "ft"
    assert _search("--space", "nasbench201", "--benchmark", table, "--strategy", "ga+gpt+ft", "--model", tiny_model,
                   "--budget", 15, "--population", 5, "--finetune-steps", 2, "--output", out) == 0
    assert json.loads((out / "result.json").read_text())["strategy"] == "ga+gpt+ft"


def test_search_and_bench_write_the_identical_history(table, tiny_model, tmp_path):
    """One builder: the same strategy, space, seed and budget give the same history.jsonl from both commands."""
    for strategy in ("re", "ga+gpt+ft"):
        model = ("--model", tiny_model) if "gpt" in strategy else ()
        assert _search("--space", "nasbench201", "--benchmark", table, "--strategy", strategy, *model,
                       "--budget", 40, "--seed", 1, "--output", tmp_path / f"search-{strategy}") == 0
    assert main(["bench", "--no-progress", "--space", "nasbench201", "--benchmark", str(table), "--strategies",
                 "re,ga+gpt+ft", "--budgets", "40", "--seeds", "2", "--model", str(tiny_model), "--keep-runs",
                 "--output", str(tmp_path / "bench")]) == 0
    for strategy in ("re", "ga+gpt+ft"):
        searched = (tmp_path / f"search-{strategy}" / "history.jsonl").read_text()
        benched = (tmp_path / "bench" / "runs" / f"{strategy.replace('+', '-')}-b40-s1" / "history.jsonl").read_text()
        assert [json.loads(l) | {"cost_s": 0} for l in searched.splitlines()] == \
            [json.loads(l) | {"cost_s": 0} for l in benched.splitlines()]
        assert len(searched.splitlines()) == 40


def test_num_classes_reaches_the_best_network(table, tmp_path):
    out = tmp_path / "c100"
    assert _search("--space", "nasbench201", "--benchmark", table, "--strategy", "ga", "--budget", 10,
                   "--population", 5, "--num-classes", 100, "--output", out) == 0
    assert json.loads((out / "best_genome.json").read_text())["num_classes"] == 100
    assert "out_size:100" in (out / "best.arch").read_text().splitlines()[-1]


def test_num_classes_comes_from_the_table_name(table, tmp_path):
    c100 = tmp_path / "nasbench201_cifar100.json"
    c100.write_bytes(table.read_bytes())
    out = tmp_path / "run"
    assert _search("--space", "nasbench201", "--benchmark", c100, "--strategy", "ga", "--budget", 10,
                   "--population", 5, "--output", out) == 0
    assert json.loads((out / "best_genome.json").read_text())["num_classes"] == 100


@pytest.mark.parametrize("label", ["ga+ft", "gpt", "ga+gpt+gpt", "evolution+gpt", "+gpt"])
def test_bad_strategy_label(capsys, label):
    err = _error(capsys, "--strategy", label)
    assert "--strategy" in err and "ga+gpt+ft" in err
