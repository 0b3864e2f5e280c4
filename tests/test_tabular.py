"""Tabular benchmarks: loading both formats, every malformed-table case, lookups, and the evaluator.

All tables are tiny and written by the tests into tmp_path (the shared benchmark files are only read by
the slow test at the end, when they exist).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from arch_gpt.errors import UserInputError
from arch_gpt.search.protocols import Candidate, Evaluator
from arch_gpt.search.evaluators.tabular import TableError, TabularBenchmark, TabularEvaluator
from arch_gpt.search.spaces.macro import MacroSpace
from arch_gpt.search.spaces.nasbench201 import NASBench201Space

A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
B = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
NB201 = {A: {"val_acc_200": 91.0, "test_acc_200": 93.5, "rank": 1},
         B: {"val_acc_200": 10.0, "test_acc_200": 99.0, "rank": 2}}  # B: best test, worst val
MACRO = {"22212220": {"test_acc": [93.0, 93.2, 93.1], "mean_acc": 93.1, "std": 0.08, "params": 1985514,
                      "flops": 85164544},
         "00000000": {"test_acc": [85.0, 85.5, 85.1], "mean_acc": 85.2, "std": 0.2, "params": 387882,
                      "flops": 1}}


def write(tmp_path: Path, data, name: str = "table.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_loads_nasbench201_format(tmp_path):
    table = TabularBenchmark.load(write(tmp_path, NB201))
    assert table.space == "nasbench201" and len(table) == 2 and A in table
    assert table.lookup(A).fitness == 91.0 and table.lookup(A).test_acc == 93.5 and table.lookup(A).rank == 1


def test_loads_macro_format(tmp_path):
    table = TabularBenchmark.load(write(tmp_path, MACRO))
    assert table.space == "nasbench-macro"
    entry = table.lookup("22212220")
    assert entry.fitness == entry.test_acc == 93.1 and entry.params == 1985514


def test_optimum_is_best_by_fitness_not_by_test(tmp_path):
    key, entry = TabularBenchmark.load(write(tmp_path, NB201)).optimum()
    assert key == A and entry.test_acc == 93.5


def test_evaluator_reports_test_acc_but_scores_fitness(tmp_path):
    evaluator = TabularEvaluator(TabularBenchmark.load(write(tmp_path, NB201)))
    assert isinstance(evaluator, Evaluator)
    records = evaluator.evaluate([Candidate(B, B), Candidate(A, A)])
    assert [r.key for r in records] == [B, A]
    assert [r.fitness for r in records] == [10.0, 91.0]
    assert [r.test_acc for r in records] == [99.0, 93.5]
    assert records[1].extra == {"rank": 1} and records[1].error is None


def test_missing_architecture_names_file_and_key(tmp_path):
    path = write(tmp_path, NB201)
    evaluator = TabularEvaluator(TabularBenchmark.load(path))
    missing = A.replace("skip_connect", "none")
    with pytest.raises(TableError, match=r"table\.json: key .*none~0\|nor_conv_3x3~1.*not in the table"):
        evaluator.evaluate([Candidate(missing, missing)])


def test_missing_file(tmp_path):
    with pytest.raises(TableError, match="nope.json: benchmark table not found"):
        TabularBenchmark.load(tmp_path / "nope.json")


def test_invalid_json_names_file_and_line(tmp_path):
    with pytest.raises(TableError, match=r"bad\.json: line 2: not valid JSON"):
        TabularBenchmark.load(write(tmp_path, '{"a":\n  nope}', "bad.json"))


def test_table_that_is_not_an_object(tmp_path):
    with pytest.raises(TableError, match="non-empty JSON object"):
        TabularBenchmark.load(write(tmp_path, [1, 2]))


def test_empty_table(tmp_path):
    with pytest.raises(TableError, match="non-empty JSON object"):
        TabularBenchmark.load(write(tmp_path, {}))


def test_unknown_format_names_first_key(tmp_path):
    with pytest.raises(TableError, match=r"key 'x': unknown table format"):
        TabularBenchmark.load(write(tmp_path, {"x": {"accuracy": 1.0}}))


def test_entry_missing_a_field_names_key_and_field(tmp_path):
    data = {**NB201, "|bad|": {"val_acc_200": 1.0}}
    with pytest.raises(TableError, match=r"key '\|bad\|': missing field 'test_acc_200'"):
        TabularBenchmark.load(write(tmp_path, data))


def test_non_numeric_field_names_key_and_field(tmp_path):
    data = {A: {"val_acc_200": "high", "test_acc_200": 1.0}}
    with pytest.raises(TableError, match=r"key .*: field 'val_acc_200' must be a finite number"):
        TabularBenchmark.load(write(tmp_path, data))


def test_entry_not_an_object(tmp_path):
    data = {**NB201, B: [1, 2]}
    with pytest.raises(TableError, match=r"key .*none~2\|': expected an object"):
        TabularBenchmark.load(write(tmp_path, data))


def test_macro_runs_must_be_a_list(tmp_path):
    data = {"00000000": {**MACRO["00000000"], "test_acc": 85.0}}
    with pytest.raises(TableError, match=r"key '00000000': field 'test_acc' must be a non-empty list"):
        TabularBenchmark.load(write(tmp_path, data))


def test_integer_field_must_be_integer(tmp_path):
    data = {"00000000": {**MACRO["00000000"], "params": 1.5}}
    with pytest.raises(TableError, match=r"key '00000000': field 'params' must be an integer"):
        TabularBenchmark.load(write(tmp_path, data))


def test_table_error_is_a_user_input_error():
    assert issubclass(TableError, UserInputError)


def test_check_space_accepts_its_own_space(tmp_path):
    TabularBenchmark.load(write(tmp_path, NB201)).check_space(NASBench201Space())
    TabularBenchmark.load(write(tmp_path, MACRO, "m.json")).check_space(MacroSpace())


def test_check_space_rejects_other_space(tmp_path):
    with pytest.raises(TableError, match="use --space nasbench201"):
        TabularBenchmark.load(write(tmp_path, NB201)).check_space(MacroSpace())


def test_check_space_rejects_key_outside_space(tmp_path):
    data = {**MACRO, "0000000": MACRO["00000000"]}
    with pytest.raises(TableError, match=r"table\.json: key '0000000'"):
        TabularBenchmark.load(write(tmp_path, data)).check_space(MacroSpace())


SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "nasbench201_cifar10.json").exists(), reason="shared tables not present")
def test_shared_tables_load_with_published_optima():
    """The published optima: NB201 C10 test 94.37 of the best-val cell, C100 73.51, Macro mean 93.13."""
    for name, space, test in (("nasbench201_cifar10.json", NASBench201Space(), 94.37),
                              ("nasbench201_cifar100.json", NASBench201Space(num_classes=100), 73.51),
                              ("nas-bench-macro_cifar10.json", MacroSpace(), 93.13)):
        table = TabularBenchmark.load(SHARED / name)
        table.check_space(space)
        assert round(table.optimum()[1].test_acc, 2) == test
