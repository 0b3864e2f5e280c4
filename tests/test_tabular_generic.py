"""Any benchmark table: JSON or CSV with named fitness/test/cost fields, lists of runs averaged, values checked."""
import itertools
import json

import pytest

from arch_gpt.cli import main
from arch_gpt.search.evaluators.tabular import TableError, TabularBenchmark, TabularEvaluator, generic_format
from arch_gpt.search.records import Candidate
from arch_gpt.search.spaces import create_space

FMT = generic_format("acc", "test", ("params",))


def macro_rows():
    """Every NAS-Bench-Macro code: accuracy rises with the digits, params with 2s."""
    return {"".join(code): {"acc": [80 + sum(map(int, code)) / 2, 81 + sum(map(int, code)) / 2],
                            "test": 70.0, "params": 1000 + code.count("2")}
            for code in itertools.product("012", repeat=8)}


def test_json_table_with_runs_and_costs(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(macro_rows()))
    table = TabularBenchmark.load(path, FMT)
    entry = table.lookup("22222222")
    assert entry.fitness == pytest.approx(88.5) and entry.spread["acc"] == pytest.approx(0.5)
    assert entry.costs == {"params": 1008} and entry.test_acc == 70.0
    table.check_space(create_space("nasbench-macro"))
    (rec,) = TabularEvaluator(table).evaluate([Candidate("22222222", "22222222")])
    assert rec.params == 1008 and rec.extra["costs"] == {"params": 1008}


def test_csv_table(tmp_path):
    path = tmp_path / "t.csv"
    rows = macro_rows()
    path.write_text("key,acc,test,params\n" + "".join(
        f"{k},{';'.join(map(str, r['acc']))},{r['test']},{r['params']}\n" for k, r in rows.items()))
    table = TabularBenchmark.load(path, FMT)
    assert len(table) == 6561 and table.lookup("00000000").fitness == pytest.approx(80.5)


def test_search_on_a_generic_table(tmp_path, capsys):
    path = tmp_path / "macro.json"
    path.write_text(json.dumps(macro_rows()))
    assert main(["search", "--no-progress", "--space", "nasbench-macro", "--benchmark", str(path), "--strategy",
                 "ga", "--budget", "30", "--population", "6", "--fitness-field", "acc", "--test-field", "test",
                 "--cost-fields", "params", "--output", str(tmp_path / "run")]) == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["best"]["test_acc"] == 70.0 and result["best"]["params"] >= 1000


@pytest.mark.parametrize("rows, needle", [
    ({"00000000": {"acc": -1, "test": 1, "params": 1}}, "field 'acc' is an accuracy in percent"),
    ({"00000000": {"acc": 101, "test": 1, "params": 1}}, "must be in [0, 100]"),
    ({"00000000": {"acc": float("nan"), "test": 1, "params": 1}}, "finite number"),
    ({"00000000": {"acc": [], "test": 1, "params": 1}}, "empty list of runs"),
    ({"00000000": {"acc": 5, "test": 1, "params": -3}}, "field 'params' must be >= 0"),
    ({"00000000": {"acc": 5, "test": 1}}, "missing field 'params'"),
    ({"00000000": {"acc": "high", "test": 1, "params": 1}}, "finite number"),
    ({"00000000": 5}, "expected an object"),
    ({}, "non-empty table"),
])
def test_bad_json_rows_name_file_key_and_field(tmp_path, rows, needle):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(TableError, match="bad.json") as err:
        TabularBenchmark.load(path, FMT)
    assert needle in str(err.value)


@pytest.mark.parametrize("text, needle", [
    ("key,acc,test,params\n00000000,x,1,1\n", "line 2: field 'acc': not a number"),
    ("key,acc,test,params\n00000000,1,1\n", "line 2: 3 columns"),
    ("key,acc,test,params\n00000000,1,1,1\n00000000,1,1,1\n", "line 3: key '00000000' appears twice"),
    ("key,acc\n", "header line and at least one row"),
])
def test_bad_csv_names_the_line(tmp_path, text, needle):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(TableError, match="bad.csv") as err:
        TabularBenchmark.load(path, FMT)
    assert needle in str(err.value)


def test_a_csv_without_fields_named(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("key,acc\n0,1\n")
    with pytest.raises(TableError, match="--fitness-field"):
        TabularBenchmark.load(path)


@pytest.mark.parametrize("argv, needle", [
    (["--fitness-field", "acc"], "--fitness-field: name fields of a --benchmark table"),
    (["--space", "nasbench-macro", "--benchmark", "{t}", "--test-field", "t"], "--fitness-field"),
])
def test_table_fields_without_a_table_or_fitness(tmp_path, capsys, argv, needle):
    (tmp_path / "t.json").write_text("{}")
    code = main(["search", "--strategy", "ga", *[a.format(t=tmp_path / "t.json") for a in argv]])
    assert code == 2 and needle in capsys.readouterr().err
