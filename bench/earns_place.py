"""Does the GPT earn its place? The issue-13 verdict from finished ``arch-gpt bench`` folders, per table.

Reads the study folders of each table (e.g. the paper's strategies at population 30 and the new ones at their
tuned population), tags a label with ``@pN`` when its folder set a population and a GPT label with ``/MODEL`` (the
GPT's bundled name less ``arch-gpt-``), and writes per table: mean ± std
of the test accuracy of the best-by-fitness architecture (the goal's measure) and of the best fitness, per
strategy and budget; then the verdict rows: two-sided Mann-Whitney U (scipy) on best fitness at each budget for
the new method against regularized evolution and against its no-GPT twin. Run by hand::

    python bench/earns_place.py --out bench/results/earns_place \
        --table nb201-c10 bench/results/gpt13/nb201_c10_paper bench/results/gpt13/nb201_c10_new \
        --table nb201-c100 ... --method ga+gpt+rank@p10 --twin ga+rank@p10 --re re

Writes ``OUT.json``, ``OUT.md`` and ``OUT.png`` (test accuracy against budget, a panel per table).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from arch_gpt.errors import UserInputError
from arch_gpt.io import atomic_write_text
from arch_gpt.studies.bench import load_study
from arch_gpt.studies.plots import plot_budget_panels
from arch_gpt.studies.stats import mann_whitney_p

GOALS = {"nb201-c10": 94.30, "nb201-c100": 73.30, "macro": 93.10}


def gather(folders: list[str]) -> tuple[dict, dict]:
    """(label, budget) → list of (seed, best fitness, best test, search s per generation); and the folders' configs."""
    runs: dict = defaultdict(list)
    configs = {}
    for folder in folders:
        config, records = load_study(folder)
        tag = f"@p{config['population']}" if config.get("population") else ""
        configs[folder] = config
        model = str(config.get("model", "")).removeprefix("arch-gpt-")
        for r in records:
            gpt = f"/{model}" if "+gpt" in r.strategy or (config.get("rank_features") == "gpt") else ""
            per_gen = (r.search_s + r.finetune_s) / max(1, r.generations)
            runs[r.strategy + tag + gpt, r.budget].append((r.seed, r.best_fitness, r.best_test, per_gen))
    return runs, configs


def beats(comparisons: list[dict], a: str, b: str, budget: int = 100) -> bool:
    """Whether ``a`` has the higher mean best fitness than ``b`` at ``budget`` with p < 0.05."""
    return any(c["a"] == a and c["b"] == b and c["budget"] == budget and c["fitness_a"] > c["fitness_b"]
               and c["p_fitness"] < 0.05 for c in comparisons)


def criterion(tables: dict, method: str, re: str, twin: str) -> list[str]:
    """The issue's verdict in plain words: the method beats both ``re`` and its twin on two of the tables, and
    which goals at 100 evaluations any strategy met."""
    wins = [name for name, t in tables.items()
            if beats(t["comparisons"], method, re) and beats(t["comparisons"], method, twin)]
    met = "met" if len(wins) >= 2 else "NOT met"
    lines = [f"**Verdict: the criterion \"`{method}` beats both `{re}` and `{twin}` on best fitness at 100 "
             f"evaluations (p < 0.05) on at least two tables\" is {met}** (tables where it does: "
             f"{', '.join(wins) or 'none'})."]
    for name, t in tables.items():
        goal = GOALS.get(name)
        rows = [r for r in t["rows"] if r["budget"] == 100]
        if goal is None or not rows:
            continue
        best = max(rows, key=lambda r: r["test_mean"])
        lines.append(f"- {name}: goal {goal:.2f} {'met' if best['test_mean'] >= goal else 'missed'}; best at 100 "
                     f"evaluations `{best['strategy']}` {best['test_mean']:.3f}.")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--table", nargs="+", action="append", required=True, metavar=("NAME", "FOLDER"),
                   help="a table's name then its bench folders (repeat per table)")
    p.add_argument("--method", default="ga+gpt+rank")
    p.add_argument("--twin", default="ga+rank")
    p.add_argument("--re", default="re")
    p.add_argument("--extra", nargs="*", default=[], help="more pairs A:B to test, e.g. ga+gpt+cond:ga+gpt")
    args = p.parse_args()
    lines = ["# Does the GPT earn its place? (issue 13)", "",
             "Command: `python " + " ".join(sys.argv) + "`", "",
             "Test accuracy (%) of the best-by-fitness architecture, and best fitness (validation accuracy), "
             "mean ± std over seeds 0..29; s/gen: search seconds per generation except evaluation (the online "
             "fine-tune included). p: two-sided Mann-Whitney U on best fitness.", ""]
    payload = {"command": sys.argv, "tables": {}}
    pairs = [(args.method, args.re), (args.method, args.twin)] + [tuple(x.split(":")) for x in args.extra]
    panels = []
    for name, *folders in args.table:
        runs, configs = gather(folders)
        goal = GOALS.get(name)
        lines += [f"## {name}" + (f" (goal at 100 evaluations: test ≥ {goal:.2f})" if goal else ""), "",
                  "| strategy | budget | runs | test acc | best fitness | s/gen |", "|---|---|---|---|---|---|"]
        rows = []
        for (label, budget), got in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            fit, test, gen = (np.array([g[i] for g in got]) for i in (1, 2, 3))
            rows.append({"strategy": label, "budget": budget, "runs": len(got), "test_mean": test.mean(),
                         "test_std": test.std(), "fitness_mean": fit.mean(), "fitness_std": fit.std(),
                         "s_per_generation": gen.mean()})
            lines.append(f"| {label} | {budget} | {len(got)} | {test.mean():.3f} ± {test.std():.3f} | "
                         f"{fit.mean():.3f} ± {fit.std():.3f} | {gen.mean():.3f} |")
        lines += ["", "| comparison | budget | mean fitness A | mean fitness B | p (fitness) | mean test A | "
                      "mean test B | p (test) |", "|---|---|---|---|---|---|---|---|"]
        verdict = []
        for a, b in pairs:
            for budget in sorted({bud for _, bud in runs}):
                if (a, budget) not in runs or (b, budget) not in runs:
                    continue
                fa, fb = [g[1] for g in runs[a, budget]], [g[1] for g in runs[b, budget]]
                ta, tb = [g[2] for g in runs[a, budget]], [g[2] for g in runs[b, budget]]
                row = {"a": a, "b": b, "budget": budget, "fitness_a": float(np.mean(fa)), "fitness_b": float(np.mean(fb)),
                       "p_fitness": mann_whitney_p(fa, fb), "test_a": float(np.mean(ta)), "test_b": float(np.mean(tb)),
                       "p_test": mann_whitney_p(ta, tb)}
                verdict.append(row)
                lines.append(f"| {a} vs {b} | {budget} | {row['fitness_a']:.3f} | {row['fitness_b']:.3f} | "
                             f"{row['p_fitness']:.3g} | {row['test_a']:.3f} | {row['test_b']:.3f} | {row['p_test']:.3g} |")
        lines.append("")
        panels.append((name, rows, goal))
        payload["tables"][name] = {"folders": folders, "configs": configs, "rows": rows, "comparisons": verdict}
    lines[6:6] = criterion(payload["tables"], args.method, args.re, args.twin) + [""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(payload, indent=1, default=float) + "\n")
    plot_budget_panels(panels, args.out.with_suffix(".png"))
    lines.append(f"![test accuracy against budget]({args.out.with_suffix('.png').name})")
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    try:
        main()
    except UserInputError as err:
        sys.exit(f"error: {err}")
