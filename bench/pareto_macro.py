"""Accuracy versus parameters on NAS-Bench-Macro: the hypervolume of the front each strategy finds, as a fraction
of the exhaustive front's (computed from the whole table).

Run: ``python bench/pareto_macro.py --benchmark ../shared/benchmarks/nas-bench-macro_cifar10.json`` (a few minutes).
Objectives: mean accuracy up, parameters down (``--objectives val_acc,params``: NSGA-II in ga, the non-dominated
set of what was evaluated for random); linear scales; the reference point lies 1% of each range beyond the nadir
of the exhaustive front. 30 seeds per strategy and budget. Writes ``bench/results/pareto_macro.json`` and ``.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from arch_gpt.io import atomic_write_text, write_json
from arch_gpt.search.evaluators.tabular import TabularBenchmark
from arch_gpt.search.pareto import hypervolume_2d, pareto_front
from arch_gpt.search.spec import SearchConfig, build_search, load_model
from arch_gpt.studies.stats import mann_whitney_p

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--strategies", default="random,ga,ga+gpt")
    parser.add_argument("--budgets", default="100,300")
    parser.add_argument("--seeds", type=int, default=30)
    opts = parser.parse_args()
    table = TabularBenchmark.load(opts.benchmark)
    points = {k: (-e.fitness, float(e.params)) for k, e in table.entries.items()}
    keys = list(points)
    exhaustive = [points[keys[i]] for i in pareto_front([points[k] for k in keys])]
    acc_lo, acc_hi = min(p[0] for p in exhaustive), max(p[0] for p in exhaustive)
    par_lo, par_hi = min(p[1] for p in exhaustive), max(p[1] for p in exhaustive)
    reference = (acc_hi + 0.01 * (acc_hi - acc_lo), par_hi + 0.01 * (par_hi - par_lo))
    full = hypervolume_2d(exhaustive, reference)
    model = load_model("arch-gpt-nasbench101") if "gpt" in opts.strategies else None
    rows, fractions = [], {}
    for strategy in opts.strategies.split(","):
        for budget in (int(b) for b in opts.budgets.split(",")):
            values = []
            for seed in range(opts.seeds):
                config = SearchConfig(strategy=strategy, space="nasbench-macro", benchmark=opts.benchmark,
                                      objectives="val_acc,params", budget=budget, seed=seed)
                result = build_search(config, table=table, model=model).run(progress=False)
                front = [(-p["val_acc"], float(p["params"])) for p in result.pareto]
                values.append(hypervolume_2d(front, reference) / full)
            fractions[strategy, budget] = values
            rows.append({"strategy": strategy, "budget": budget, "seeds": opts.seeds,
                         "hv_fraction_mean": float(np.mean(values)), "hv_fraction_std": float(np.std(values)),
                         "hv_fraction_min": float(np.min(values))})
            print(json.dumps(rows[-1]), flush=True)
    tests = [{"budget": b, "a": s, "b": "random", "p": mann_whitney_p(fractions[s, b], fractions["random", b])}
             for (s, b) in fractions if s != "random" and ("random", b) in fractions]
    result = {"command": "python bench/pareto_macro.py " + " ".join(sys.argv[1:]),
              "table": opts.benchmark, "exhaustive_front_size": len(exhaustive), "reference": reference,
              "exhaustive_hypervolume": full, "rows": rows, "mann_whitney_vs_random": tests,
              "machine": {"cores": len(os.sched_getaffinity(0)), "load_average_1_5_15": list(os.getloadavg())}}
    write_json(RESULTS / "pareto_macro.json", result)
    lines = ["# Accuracy vs parameters on NAS-Bench-Macro: hypervolume fraction of the exhaustive front", "",
             f"Command: `{result['command']}`", "",
             f"Exhaustive front: {len(exhaustive)} architectures; reference point {reference} (-accuracy, params).",
             "", "| strategy | budget | seeds | HV fraction (mean ± std) | min |", "|---|---|---|---|---|"]
    lines += [f"| {r['strategy']} | {r['budget']} | {r['seeds']} | {r['hv_fraction_mean']:.4f} ± "
              f"{r['hv_fraction_std']:.4f} | {r['hv_fraction_min']:.4f} |" for r in rows]
    lines += ["", "Two-sided Mann-Whitney U against random search at the same budget:", ""]
    lines += [f"- {t['a']} at {t['budget']}: p = {t['p']:.3g}" for t in tests]
    atomic_write_text(RESULTS / "pareto_macro.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
