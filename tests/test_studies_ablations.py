"""The ablation commands on tiny runs: a 3-4 block space on digits, one capped epoch, an untrained tiny ArchGPT."""
from __future__ import annotations

import json

import numpy as np
import pytest

from arch_gpt.cli import main
from arch_gpt.errors import UserInputError
from arch_gpt.search.data import load_image_data
from arch_gpt.search.spaces.blocks import BlockSpace
from arch_gpt.search.spec import SearchConfig
from arch_gpt.studies.ablations import EpochCorrelationConfig, MaskRateConfig, epoch_correlation, mask_rate_sweep

TINY_ARGS = ["--min-blocks", "3", "--max-blocks", "4", "--widths", "8,16", "--max-steps", "2"]


@pytest.fixture(scope="module")
def setup():
    data = load_image_data("digits", seed=0)
    space = BlockSpace(num_classes=data.num_classes, input_size=data.image_size, min_blocks=3, max_blocks=4,
                       widths=(8, 16))
    return space, data


TINY_SEARCH = SearchConfig(max_steps_per_epoch=2, epochs=1, lr=0.01, batch_size=32)


def test_epoch_correlation_writes_json_markdown_and_plot(setup, tmp_path):
    space, data = setup
    summary = epoch_correlation(TINY_SEARCH, EpochCorrelationConfig(samples=4, few_epochs=1, more_epochs=2),
                                space=space, data=data, output_dir=tmp_path)
    assert len(summary.individuals) == 4
    assert all(ind["error_few"] is None and ind["error_more"] is None for ind in summary.individuals)
    saved = json.loads((tmp_path / "epoch-correlation.json").read_text())
    assert saved["pearson_r"] == pytest.approx(summary.pearson_r, nan_ok=True)
    assert np.isnan(saved["pearson_r"]) or -1.0 <= saved["pearson_r"] <= 1.0
    assert "Pearson r" in (tmp_path / "epoch-correlation.md").read_text()
    assert (tmp_path / "epoch-correlation.png").stat().st_size > 1000


def test_mask_rate_sweep_runs_each_rate_from_the_same_seed(setup, tmp_path):
    from arch_gpt import modeling
    from arch_gpt.tokenizer import LayerTokenizer

    space, data = setup
    rng = np.random.default_rng(0)
    tokenizer = LayerTokenizer.build([space.to_architecture(space.sample(rng)) for _ in range(6)])
    model = modeling.ArchGPT.create(tokenizer, device="cpu", **modeling.TINY)
    summary = mask_rate_sweep(TINY_SEARCH, MaskRateConfig(rates=(0.0, 0.8), population=2, generations=1, seeds=2),
                              space=space, model=model, data=data, output_dir=tmp_path, progress=False,
                              keep_runs=True)
    rows = json.loads((tmp_path / "mask-rate.json").read_text())["rows"]
    assert [row.mask_rate for row in summary.rows] == [0.0, 0.8]
    assert [row["mask_rate"] for row in rows] == [0.0, 0.8]
    assert [[run["seed"] for run in row["runs"]] for row in rows] == [[0, 1], [0, 1]]
    assert all(run["evaluations"] == 2 and len(run["best_so_far"]) == 2 for row in rows for run in row["runs"])
    assert rows[0]["predicted_blocks_mean"] == 0 < rows[1]["predicted_blocks_mean"]
    assert rows[0]["fitness_mean"] == pytest.approx(np.mean([run["best_fitness"] for run in rows[0]["runs"]]))
    for name in ("mask-rate.json", "mask-rate.md", "mask-rate.png", "mask-rate-0/seed-1/result.json",
                 "mask-rate-0.8/seed-0/result.json"):
        assert (tmp_path / name).exists(), name
    assert "| 0.8 |" in (tmp_path / "mask-rate.md").read_text()


def test_epoch_correlation_cli(tmp_path, capsys):
    out = tmp_path / "corr"
    assert main(["ablation", "epoch-correlation", "--samples", "3", "--more-epochs", "2", *TINY_ARGS,
                 "--output", str(out)]) == 0
    assert "Pearson r" in capsys.readouterr().out
    summary = json.loads((out / "epoch-correlation.json").read_text())
    assert summary["command"].startswith("arch-gpt ablation epoch-correlation") and "--samples 3" in summary["command"]


@pytest.mark.parametrize("config, match", [
    (EpochCorrelationConfig(samples=2), "samples"),
    (EpochCorrelationConfig(few_epochs=3, more_epochs=3), "few"),
])
def test_epoch_correlation_rejects_bad_configs(setup, config, match):
    space, data = setup
    with pytest.raises(UserInputError, match=match):
        epoch_correlation(TINY_SEARCH, config, space=space, data=data)


def test_mask_rate_rejects_bad_rates(setup):
    space, data = setup
    with pytest.raises(UserInputError, match="rates"):
        mask_rate_sweep(TINY_SEARCH, MaskRateConfig(rates=(0.2, 1.5)), space=space, model=None, data=data)
    with pytest.raises(UserInputError, match="seeds"):
        mask_rate_sweep(TINY_SEARCH, MaskRateConfig(seeds=0), space=space, model=None, data=data)


def test_mask_rate_cli_rejects_bad_rate_list(capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse's own usage error
        main(["ablation", "mask-rate", "--rates", "0,x"])
    assert exit_.value.code == 2 and "--rates" in capsys.readouterr().err


def test_mask_rate_cli_on_a_tabular_space(tmp_path, capsys):
    """`--space nasbench201 --benchmark FILE`: a synthetic table of all 15,625 cells and a saved tiny ArchGPT."""
    import itertools

    from arch_gpt import modeling
    from arch_gpt.search.spaces import create_space
    from arch_gpt.tokenizer import LayerTokenizer

    space = create_space("nasbench201")
    rng = np.random.default_rng(0)
    ops = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    table = {"|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*o): {"val_acc_200": v, "test_acc_200": v + 1.0, "rank": 1}
             for o, v in zip(itertools.product(ops, repeat=6), rng.uniform(10, 90, 5 ** 6).tolist())}
    (tmp_path / "table.json").write_text(json.dumps(table))
    tokenizer = LayerTokenizer.build([space.to_architecture(space.sample(rng)) for _ in range(4)])
    modeling.ArchGPT.create(tokenizer, device="cpu", **modeling.TINY).save_pretrained(tmp_path / "gpt")
    out = tmp_path / "sweep"
    assert main(["ablation", "mask-rate", "--space", "nasbench201", "--benchmark", str(tmp_path / "table.json"),
                 "--model", str(tmp_path / "gpt"), "--rates", "0,0.5", "--population", "4", "--generations", "2",
                 "--output", str(out)]) == 0
    rows = json.loads((out / "mask-rate.json").read_text())["rows"]
    assert sorted(p.name for p in out.iterdir()) == ["mask-rate.json", "mask-rate.md", "mask-rate.png"]
    best = max(table.values(), key=lambda e: e["val_acc_200"])["val_acc_200"]
    assert [r["mask_rate"] for r in rows] == [0.0, 0.5] and all(10 <= r["fitness_mean"] <= best for r in rows)
    assert all(r["test_acc_mean"] == pytest.approx(r["fitness_mean"] + 1.0) for r in rows)
    assert "mask rate 0.5" in capsys.readouterr().out
    command = json.loads((out / "mask-rate.json").read_text())["command"]
    assert "--benchmark" in command and "--population 4" in command
    assert "--dataset" not in command and "--epochs" not in command  # training options do not apply to a table
