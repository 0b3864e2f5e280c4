"""The with/without-GPT study on synthetic complete tables (written by the tests) with a tiny untrained ArchGPT.

Real strategies, reconstructor, spaces and evaluator; nothing is mocked. Budgets and seeds are tiny.
"""
from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from arch_gpt.cli import main
from arch_gpt.errors import UserInputError
from arch_gpt.modeling import TINY, ArchGPT
from arch_gpt.studies.bench import BenchConfig, load_study, run_study, unnamed_choices
from arch_gpt.studies.report import RunRecord, compare, summarize
from arch_gpt.studies.stats import Versus, mann_whitney_p
from arch_gpt.search.evaluators.tabular import TabularBenchmark
from arch_gpt.search.protocols import Candidate
from arch_gpt.search.reconstruction import GPTReconstructor
from arch_gpt.search.spaces import create_space
from arch_gpt.tokenizer import LayerTokenizer
from arch_gpt.zoo import macro, nasbench201

STRATEGIES = ("random", "random+gpt", "ga", "ga+gpt", "re")


def nb201_table() -> dict:
    """Every cell; val rewards convs, test = val + noise (so test and val disagree a little)."""
    rng = np.random.default_rng(0)
    score = {"none": 0.0, "skip_connect": 1.0, "avg_pool_3x3": 0.5, "nor_conv_1x1": 2.0, "nor_conv_3x3": 3.0}
    table = {}
    for ops in itertools.product(nasbench201.OPS, repeat=6):
        val = 70.0 + sum(score[o] for o in ops) + float(rng.normal(0, 0.5))
        table[nasbench201.arch_str(ops)] = {"val_acc_200": val, "test_acc_200": val + 2 + float(rng.normal(0, 0.5)),
                                            "rank": 0}
    return table


def macro_table() -> dict:
    rng = np.random.default_rng(1)
    table = {}
    for digits in itertools.product(macro.CHOICES, repeat=macro.LENGTH):
        runs = [80.0 + sum(int(d) for d in digits) + float(rng.normal(0, 0.3)) for _ in range(3)]
        table["".join(digits)] = {"test_acc": runs, "mean_acc": float(np.mean(runs)), "std": float(np.std(runs)),
                                  "params": 1, "flops": 1}
    return table


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tables")
    out = {}
    for name, data in (("nasbench201", nb201_table()), ("nasbench-macro", macro_table())):
        out[name] = root / f"{name}.json"
        out[name].write_text(json.dumps(data), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    archs = []
    for name in ("nasbench201", "nasbench-macro"):
        space = create_space(name)
        archs += [space.to_architecture(space.sample(rng)) for _ in range(10)]
    path = tmp_path_factory.mktemp("gpt") / "tiny"
    ArchGPT.create(LayerTokenizer.build(archs), **TINY).save_pretrained(path)
    return path


def config(files, tmp_path, space="nasbench201", **kw) -> BenchConfig:
    base = dict(space=space, benchmark=str(files[space]), strategies=STRATEGIES, budgets=(10, 40), seeds=3,
                output=str(tmp_path / "out"))
    return BenchConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def nb201_study(files, model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    cfg = config(files, out, model=str(model_dir))
    return cfg, run_study(cfg, progress=False)


def test_study_runs_every_strategy_budget_and_seed(nb201_study):
    cfg, records = nb201_study
    assert sorted((r.strategy, r.budget, r.seed) for r in records) == sorted(
        itertools.product(STRATEGIES, (10, 40), range(3)))
    for r in records:
        assert r.evaluations == r.budget and len(r.curve) == r.budget
        assert r.curve[-1] == pytest.approx(r.best_test, abs=1e-3)
        assert r.fitness_regret >= 0
    assert any(r.predicted_units > 0 for r in records if r.strategy.endswith("+gpt"))
    assert all(r.predicted_units == 0 and r.reconstruction_s == 0 for r in records if "+" not in r.strategy)


def test_study_writes_reports(nb201_study):
    cfg, records = nb201_study
    out = Path(cfg.output)
    data = json.loads((out / "results.json").read_text())
    assert len(data["runs"]) == len(records) and data["table"]["space"] == "nasbench201"
    assert {(c["base"], c["gpt"], c["budget"]) for c in data["comparisons"]} == {
        ("ga", "ga+gpt", 10), ("ga", "ga+gpt", 40), ("random", "random+gpt", 10), ("random", "random+gpt", 40)}
    assert all(0.0 <= c["p_value"] <= 1.0 for c in data["comparisons"])
    md = (out / "results.md").read_text()
    for column in ("test acc", "mean regret", "Mann-Whitney", "search-time overhead", "Table 6", "Verdict"):
        assert column in md
    assert (out / "convergence.png").stat().st_size > 1000


def test_study_is_reproducible_and_resumes(nb201_study, files, model_dir, tmp_path):
    cfg, records = nb201_study
    again = config(files, tmp_path, model=str(model_dir), strategies=("ga", "ga+gpt"), budgets=(40,))
    fresh = run_study(again, progress=False)
    key = lambda r: (r.strategy, r.budget, r.seed)  # noqa: E731
    earlier = {key(r): (r.best_key, r.curve) for r in records}
    assert all(earlier[key(r)] == (r.best_key, r.curve) for r in fresh)
    lines = (Path(again.output) / "runs.jsonl").read_text().splitlines()
    resumed = run_study(again, progress=False)  # every run is already in runs.jsonl: nothing is redone
    assert (Path(again.output) / "runs.jsonl").read_text().splitlines() == lines
    assert [r.to_json() for r in resumed] == [r.to_json() for r in fresh]
    grown = run_study(BenchConfig(**{**again.__dict__, "seeds": 4}), progress=False)  # one more seed: 2 new runs
    assert len((Path(again.output) / "runs.jsonl").read_text().splitlines()) == len(lines) + 2
    assert [r.to_json() for r in grown if r.seed < 3] == [r.to_json() for r in fresh]


def test_other_settings_in_same_folder_are_refused(nb201_study, files):
    cfg, _ = nb201_study
    with pytest.raises(UserInputError, match="other settings"):
        run_study(BenchConfig(**{**cfg.__dict__, "mask_rate": 0.3}), progress=False)


def test_macro_study_without_gpt(files, tmp_path):
    records = run_study(config(files, tmp_path, space="nasbench-macro", strategies=("random", "re"), seeds=2),
                        progress=False)
    assert len(records) == 8 and all(r.best_test == r.best_fitness for r in records)


def test_report_covers_every_finished_run_of_the_folder(files, tmp_path):
    """A later invocation that adds a strategy reports the earlier one's runs too, and records both commands."""
    first = config(files, tmp_path, space="nasbench-macro", strategies=("random",), seeds=2)
    run_study(first, progress=False)
    run_study(BenchConfig(**{**first.__dict__, "strategies": ("re",), "seeds": 3}), progress=False)
    out = Path(first.output)
    data = json.loads((out / "results.json").read_text())
    assert sorted((r["strategy"], r["seed"]) for r in data["runs"]) == sorted(
        [("random", s) for b in first.budgets for s in range(2)] + [("re", s) for b in first.budgets for s in range(3)])
    assert data["config"]["strategies"] == ["re", "random"]
    md = (out / "results.md").read_text()
    assert "| random |" in md and "| re |" in md and "**seeds:** 0..2" in md
    assert len((out / "commands.jsonl").read_text().splitlines()) == 2


def test_cli_runs_macro_with_gpt(files, model_dir, tmp_path, capsys):
    code = main(["bench", "--space", "nasbench-macro", "--benchmark", str(files["nasbench-macro"]),
                 "--strategies", "ga,ga+gpt,ga+gpt+ft", "--budgets", "40", "--seeds", "2", "--model", str(model_dir),
                 "--finetune-steps", "2", "--output", str(tmp_path / "cli"), "--no-progress"])
    assert code == 0
    md = (tmp_path / "cli" / "results.md").read_text()
    assert "ga vs ga+gpt " in md and "ga+gpt vs ga+gpt+ft" in md and "online fine-tune" in md
    runs = json.loads((tmp_path / "cli" / "results.json").read_text())["runs"]
    assert all((r["finetune_s"] > 0) == r["strategy"].endswith("+ft") for r in runs)


def test_cli_malformed_table_exits_2_naming_file(tmp_path, capsys):
    bad = tmp_path / "broken.json"
    bad.write_text('{"x": {"val_acc_200": 1}}')
    code = main(["bench", "--space", "nasbench201", "--benchmark", str(bad), "--strategies", "random",
                 "--budgets", "5", "--seeds", "1", "--output", str(tmp_path / "o"), "--no-progress"])
    assert code == 2
    assert "broken.json: key 'x'" in capsys.readouterr().err


def test_table_of_other_space_is_refused(files, tmp_path):
    with pytest.raises(UserInputError, match="use --space nasbench-macro"):
        run_study(config(files, tmp_path, benchmark=str(files["nasbench-macro"]), strategies=("random",)),
                  progress=False)


def test_unknown_strategy_is_refused(files, tmp_path):
    with pytest.raises(UserInputError, match="strategies: unknown 'sa'"):
        run_study(config(files, tmp_path, strategies=("sa",)), progress=False)


def test_bad_budgets_and_seeds(files, tmp_path):
    with pytest.raises(UserInputError, match="budgets"):
        run_study(config(files, tmp_path, strategies=("random",), budgets=(0,)), progress=False)
    with pytest.raises(UserInputError, match="seeds"):
        run_study(config(files, tmp_path, strategies=("random",), seeds=0), progress=False)


def test_mann_whitney_detects_a_clear_difference():
    def rec(strategy, test):
        return RunRecord(strategy, 10, 0, "k", test, test, 0.0, 0.0, 10, 10, 1, 1.0, 0.0, 0.0)
    records = [rec("ga", 90.0 + i * 0.01) for i in range(8)] + [rec("ga+gpt", 95.0 + i * 0.01) for i in range(8)]
    (c,) = compare(records, summarize(records, "k"))
    assert c.p_value < 0.01 and c.gpt_mean > c.base_mean


def test_mann_whitney_p_of_fully_tied_samples_is_one():
    assert mann_whitney_p([73.5] * 5, [73.5] * 5) == 1.0
    assert mann_whitney_p([1.0, 2.0, 3.0], [10.0, 11.0, 12.0]) < 0.2


def test_versus_row_and_its_markdown_line():
    row = Versus.of("ga+transfer", 100, [94.0, 94.2], "ga", [93.0, 93.2])
    assert row.mean == pytest.approx(94.1) and row.other_mean == pytest.approx(93.1)
    assert row.std == pytest.approx(0.1) and row.vs == "ga" and 0 < row.p <= 1
    assert row.markdown().startswith("| ga+transfer | 100 | 94.100 ± 0.100 | ga | 93.100 |")


def test_load_study_reads_back_a_finished_study(nb201_study):
    cfg, records = nb201_study
    config, loaded = load_study(cfg.output)
    assert config["space"] == "nasbench201"
    assert sorted((r.strategy, r.budget, r.seed, r.best_test) for r in loaded) == sorted(
        (r.strategy, r.budget, r.seed, r.best_test) for r in records)


def test_load_study_of_a_folder_without_a_study(tmp_path):
    with pytest.raises(UserInputError, match="bench_config.json: not found"):
        load_study(tmp_path)


def study_copy(nb201_study, tmp_path) -> Path:
    return Path(shutil.copytree(nb201_study[0].output, tmp_path / "copy"))


def test_load_study_with_a_corrupt_config_names_the_line(nb201_study, tmp_path):
    folder = study_copy(nb201_study, tmp_path)
    (folder / "bench_config.json").write_text('{"space":\n', encoding="utf-8")
    with pytest.raises(UserInputError, match=r"bench_config.json: line 2: not valid JSON"):
        load_study(folder)


def test_load_study_with_a_bad_run_line_names_the_line(nb201_study, tmp_path):
    folder = study_copy(nb201_study, tmp_path)
    with open(folder / "runs.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"strategy": "ga"}\n')
    count = len((folder / "runs.jsonl").read_text().splitlines())
    with pytest.raises(UserInputError, match=rf"runs.jsonl: line {count}: not a run record"):
        load_study(folder)


def test_load_study_without_finished_runs(nb201_study, tmp_path):
    folder = study_copy(nb201_study, tmp_path)
    (folder / "runs.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(UserInputError, match="no finished runs"):
        load_study(folder)


def test_reconstructor_keeps_candidates_inside_both_spaces(model_dir, files):
    reconstructor = GPTReconstructor(ArchGPT.from_pretrained(model_dir), mask_rate=1.0)
    rng = np.random.default_rng(0)
    for name in ("nasbench201", "nasbench-macro"):
        space = create_space(name)
        table = TabularBenchmark.load(files[name])
        cands = [Candidate(g, space.key(g)) for g in (space.sample(rng) for _ in range(8))]
        out = reconstructor.reconstruct(space, cands, 0.0, rng)
        assert all(c.key in table and space.key(c.genome) == c.key for c in out)
        assert any(c.predicted_units for c in out)


def test_unnamed_choices_lists_tokens_outside_the_vocabulary():
    macro_space, nb201 = create_space("nasbench-macro"), create_space("nasbench201")
    model = ArchGPT.create(LayerTokenizer.build([macro_space.to_architecture("12121212")]), **TINY)
    missing = unnamed_choices(nb201, model)
    assert "other:Zero" in missing and "pool:Avg:k3x3:s1x1:p1-1-1-1:d1:b0" in missing
    assert "conv:k1x1:s1x1:p0-0-0-0:d1:g1:b0:r3" not in unnamed_choices(macro_space, model)


def test_corrupt_study_config_is_reported(files, tmp_path):
    cfg = config(files, tmp_path, strategies=("random",), seeds=1)
    Path(cfg.output).mkdir()
    (Path(cfg.output) / "bench_config.json").write_text("{broken")
    with pytest.raises(UserInputError, match="bench_config.json: line 1: not valid JSON"):
        run_study(cfg, progress=False)


def test_load_study_with_a_null_test_accuracy_names_the_field(nb201_study, tmp_path):
    folder = study_copy(nb201_study, tmp_path)
    first = json.loads((folder / "runs.jsonl").read_text().splitlines()[0])
    with open(folder / "runs.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({**first, "best_test": None}) + "\n")
    with pytest.raises(UserInputError, match="field 'best_test': expected a number"):
        load_study(folder)


def test_committed_study_results_still_load():
    """The runs.jsonl files in bench/results/ (written before the typed records) read back as RunRecords."""
    root = Path(__file__).resolve().parents[1] / "bench" / "results"
    folders = sorted({p.parent for p in root.rglob("runs.jsonl") if (p.parent / "bench_config.json").is_file()})
    assert folders
    for folder in folders:
        _, records = load_study(folder)
        assert records and all(isinstance(r, RunRecord) for r in records)


def test_pairs_compare_each_label_with_its_base_and_one_modifier_less():
    from arch_gpt.studies.report import pairs
    got = pairs(["re", "ga", "ga+gpt", "ga+gpt+ft", "ga+rank", "ga+gpt+rank", "ga+gpt+cond+rank"])
    assert set(got) == {("ga", "ga+gpt"), ("ga", "ga+gpt+ft"), ("ga+gpt", "ga+gpt+ft"), ("ga", "ga+rank"),
                        ("ga", "ga+gpt+rank"), ("ga+rank", "ga+gpt+rank"), ("ga+gpt", "ga+gpt+rank"),
                        ("ga", "ga+gpt+cond+rank"), ("ga+gpt+rank", "ga+gpt+cond+rank")}
