"""Accuracy versus cost: objectives, budgets, NSGA-II in the GA, Pareto outputs; real spaces, tables, runs."""
import itertools
import json

import pytest

from arch_gpt.cli import main
from arch_gpt.errors import UserInputError
from arch_gpt.search.objectives import Objectives
from arch_gpt.search.pareto import dominates
from arch_gpt.search.records import FitnessRecord
from arch_gpt.search.spaces import create_space


@pytest.fixture(scope="module")
def macro_table(tmp_path_factory):
    """A Macro-format table where accuracy grows with the 2s (bigger blocks), so accuracy and params conflict."""
    rows = {}
    for code in itertools.product("012", repeat=8):
        acc = 85 + 0.8 * code.count("2") + 0.5 * code.count("1")
        rows["".join(code)] = {"test_acc": [acc, acc], "mean_acc": acc, "std": 0.0, "params": 1, "flops": 1}
    path = tmp_path_factory.mktemp("t") / "macro.json"
    path.write_text(json.dumps(rows))
    return path


@pytest.mark.parametrize("text, needle", [("params", "first objective must be val_acc"),
                                          ("val_acc,size", "name distinct costs"),
                                          ("val_acc,params,params", "name distinct costs")])
def test_bad_objectives(text, needle):
    with pytest.raises(UserInputError, match=needle):
        Objectives.parse(text)


@pytest.mark.parametrize("budget", [{"max_params": 0}, {"max_flops": -1}, {"max_latency_ms": float("nan")}])
def test_bad_budgets(budget):
    with pytest.raises(UserInputError, match=f"^{next(iter(budget))}: "):
        Objectives(**budget)


def test_measure_and_violation():
    space = create_space("nasbench-macro")
    obj = Objectives(("val_acc", "params"), max_flops=10)
    costs = obj.measure(space, "00000000")
    assert set(costs) == {"params", "flops"} and costs["params"] > 0
    assert obj.violation(costs).startswith("infeasible: flops")
    assert obj.point(FitnessRecord("k", 90.0, extra={"costs": costs})) == (-90.0, costs["params"])
    assert Objectives(("val_acc", "latency")).measure(space, "00000000")["latency"] > 0


def test_budget_candidates_are_never_trained(macro_table, tmp_path):
    out = tmp_path / "run"
    params_of_small = Objectives(("val_acc", "params")).measure(create_space("nasbench-macro"), "11111111")["params"]
    assert main(["search", "--no-progress", "--space", "nasbench-macro", "--benchmark", str(macro_table),
                 "--strategy", "random", "--budget", "40", "--population", "10", "--max-params",
                 str(params_of_small), "--output", str(out)]) == 0
    history = [json.loads(l) for l in (out / "history.jsonl").read_text().splitlines()]
    infeasible = [h for h in history if h["error"] and h["error"].startswith("infeasible: params")]
    assert infeasible and all(h["fitness"] == 0 and h["costs"]["params"] > params_of_small for h in infeasible)
    assert all(h["costs"]["params"] <= params_of_small for h in history if not h["error"])


def test_nsga2_search_writes_a_real_front(macro_table, tmp_path):
    out = tmp_path / "run"
    assert main(["search", "--no-progress", "--space", "nasbench-macro", "--benchmark", str(macro_table),
                 "--strategy", "ga", "--budget", "60", "--population", "10", "--objectives", "val_acc,params",
                 "--output", str(out)]) == 0
    front = json.loads((out / "pareto.json").read_text())
    assert len(front) >= 3 and (out / "pareto.png").stat().st_size > 1000
    points = [(-f["val_acc"], f["params"]) for f in front]
    assert not any(dominates(a, b) for a in points for b in points)
    history = [json.loads(l) for l in (out / "history.jsonl").read_text().splitlines()]
    others = [(-h["fitness"], h["costs"]["params"]) for h in history]
    assert all(not dominates(o, p) for o in others for p in points)  # nothing evaluated beats the front
    assert json.loads((out / "result.json").read_text())["pareto"] == front


def test_objectives_are_part_of_the_resume_identity(macro_table, tmp_path, capsys):
    args = ["search", "--no-progress", "--space", "nasbench-macro", "--benchmark", str(macro_table), "--strategy",
            "ga", "--budget", "20", "--population", "5", "--output", str(tmp_path / "r")]
    assert main(args + ["--objectives", "val_acc,params"]) == 0
    assert main(args + ["--resume"]) == 2 and "config.objectives" in capsys.readouterr().err


def test_latency_is_measured_and_recorded_on_request(macro_table, tmp_path):
    out = tmp_path / "run"
    assert main(["search", "--no-progress", "--space", "nasbench-macro", "--benchmark", str(macro_table),
                 "--strategy", "random", "--budget", "3", "--population", "3", "--latency", "--latency-batch", "2",
                 "--output", str(out)]) == 0
    history = [json.loads(l) for l in (out / "history.jsonl").read_text().splitlines()]
    assert all(h["costs"]["latency"] > 0 and set(h["costs"]) == {"latency"} for h in history)
