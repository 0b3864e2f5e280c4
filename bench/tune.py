"""Tune the new strategies' settings on NAS-Bench-201 CIFAR-10 only, selecting on fitness (validation accuracy).

Each variant is a strategy label plus SearchConfig overrides; every variant runs on tuning seeds 1000.. (disjoint
from the study's seeds 0..29) at one budget, and the table reports the mean best fitness (what we select on), the
mean test accuracy of that architecture (reported, never selected on) and the search seconds per generation
(everything but evaluation, the online fine-tune included). Run by hand on an idle machine, e.g.::

    OMP_NUM_THREADS=1 python bench/tune.py --benchmark ../shared/benchmarks/nasbench201_cifar10.json \
        --name rank --variants 'ga+rank' 'ga+rank population=10' 'ga+gpt+rank rank_predictor=gp'

Appends to ``bench/results/tuning/<name>.jsonl`` (one line per variant) and rewrites ``<name>.md``.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from time import perf_counter

import numpy as np
import torch

from arch_gpt.errors import UserInputError
from arch_gpt.io import append_jsonl, atomic_write_text, read_jsonl
from arch_gpt.search.evaluators.tabular import TabularBenchmark
from arch_gpt.search.spec import DEFAULT_MODEL, SearchConfig, build_search, load_model

OUT = Path(__file__).parent / "results" / "tuning"


def parse_variant(text: str) -> tuple[str, dict]:
    """``'ga+gpt+rank population=10 rank_predictor=gp'`` → (label, overrides), values parsed as JSON if they can be."""
    label, *pairs = text.split()
    overrides = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            overrides[name] = json.loads(value)
        except json.JSONDecodeError:
            overrides[name] = value
    return label, overrides


def run_variant(text: str, table: TabularBenchmark, space: str, budget: int, seeds: range, model) -> dict:
    label, overrides = parse_variant(text)
    fitness, test, per_gen = [], [], []
    for seed in seeds:
        search = build_search(SearchConfig(strategy=label, space=space, benchmark=table.path, budget=budget,
                                           seed=seed, **overrides), table=table,
                              model=model if "+gpt" in label else None)
        result = search.run(progress=False)
        fitness.append(result.best.fitness)
        test.append(result.best.record.test_acc)
        per_gen.append((result.timings.search_s + search.finetune_s) / max(1, result.generations))
    return {"variant": text, "budget": budget, "seeds": [seeds.start, seeds.stop - 1],
            "fitness_mean": float(np.mean(fitness)), "fitness_std": float(np.std(fitness)),
            "test_mean": float(np.mean(test)), "test_std": float(np.std(test)),
            "search_s_per_generation": float(np.mean(per_gen))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", required=True)
    p.add_argument("--space", default="nasbench201")
    p.add_argument("--name", required=True, help="results file name under bench/results/tuning/")
    p.add_argument("--variants", nargs="+", required=True)
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--model", default=None, help="the GPT of +gpt variants (default: the search's default)")
    args = p.parse_args()
    if "cifar10" not in Path(args.benchmark).name or "cifar100" in Path(args.benchmark).name:
        print("warning: the study's settings are tuned on NAS-Bench-201 CIFAR-10 only", file=sys.stderr)
    table = TabularBenchmark.load(args.benchmark)
    model = load_model(args.model) if args.model else None
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / f"{args.name}.jsonl"
    for text in args.variants:
        start = perf_counter()
        row = run_variant(text, table, args.space, args.budget, range(1000, 1000 + args.seeds), model)
        row.update(model=(args.model or DEFAULT_MODEL) if "+gpt" in text.split()[0] else "none", table=Path(args.benchmark).name, wall_s=round(perf_counter() - start, 1),
                   machine=f"{platform.platform()}, {torch.get_num_threads()} torch threads")
        append_jsonl(log, [row])
        print(json.dumps(row))
    rows = [r for _, r in read_jsonl(log)]
    lines = [f"# Tuning `{args.name}` (selected on fitness; test accuracy only reported)", "",
             f"Command: `OMP_NUM_THREADS=1 python bench/tune.py --benchmark {args.benchmark} --name {args.name} "
             f"--variants ...` (one line per variant; seeds 1000.., disjoint from the study's 0..29).", "",
             "| variant | model | table | budget | seeds | best fitness | its test acc | search s / generation |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| `{r['variant']}` | {r['model']} | {r['table']} | {r['budget']} | {r['seeds'][1] - r['seeds'][0] + 1} | "
              f"{r['fitness_mean']:.3f} ± {r['fitness_std']:.3f} | {r['test_mean']:.3f} ± {r['test_std']:.3f} | "
              f"{r['search_s_per_generation']:.3f} |" for r in rows]
    atomic_write_text(OUT / f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    try:
        main()
    except UserInputError as err:
        sys.exit(f"error: {err}")
