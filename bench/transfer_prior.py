"""A fairer test of the paper's claim: does a GPT that has *learned good architectures of the space* help more?

The bundled GPT knows NB-101, not the target space, and on NB-201 its gain equals a "masked edges become
convolutions" rule (``reconstruction_controls.py``). The paper fine-tunes its GPT on well-known good
architectures; the honest analogue here is a *related* table. The bundled GPT is fine-tuned once, offline, on the
unit choices of the ``--top_k`` best architectures of a source table ranked by its *validation* accuracy (e.g.
NB-201 CIFAR-100 for a CIFAR-10 search; the target table is never looked at), then ga+gpt and random+gpt run on
the target over the same seeds as an existing ``arch-gpt bench`` folder. Run by hand (a few minutes per table)::

    python bench/transfer_prior.py --bench bench/results/tabular/nasbench201_cifar10 \
        --benchmark ../shared/benchmarks/nasbench201_cifar10.json \
        --source ../shared/benchmarks/nasbench201_cifar100.json

Writes ``<bench>/transfer.json`` and ``<bench>/transfer.md`` (two-sided Mann-Whitney U against ga, ga+gpt, ...).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from arch_gpt.io import atomic_write_text
from arch_gpt.errors import UserInputError
from arch_gpt.modeling import ArchGPT
from arch_gpt.search.evaluators.tabular import TabularBenchmark, TabularEvaluator
from arch_gpt.search.online import OnlineFinetuner
from arch_gpt.search.spaces import create_space
from arch_gpt.search.spec import SearchConfig, build_search
from arch_gpt.studies.bench import load_study
from arch_gpt.studies.report import RunRecord
from arch_gpt.studies.stats import Versus


def greedy_agreement(model, tuner: OnlineFinetuner, keys: list[str]) -> float:
    """Fraction of the keys' unit choices that the model's greedy, allowed-token-masked pick reproduces."""
    contexts, allowed, targets = tuner.examples(keys)
    with torch.no_grad():
        logits = model.next_token_logits(contexts)
    picks = [int(np.argmax(logits[i, a].detach().cpu().numpy())) for i, a in enumerate(allowed)]
    return float(np.mean([p == t for p, t in zip(picks, targets)]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", type=Path, required=True, help="a finished `arch-gpt bench` folder on the target table")
    p.add_argument("--benchmark", type=Path, required=True, help="the target table (for evaluation only)")
    p.add_argument("--source", type=Path, required=True, help="the table whose best-by-validation archs are learned")
    p.add_argument("--top_k", type=int, default=50)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--budgets", default="100,600")
    args = p.parse_args()
    if args.top_k < 1 or args.steps < 1 or args.lr <= 0:
        p.error(f"need --top_k >= 1, --steps >= 1 and --lr > 0, got {args.top_k}, {args.steps}, {args.lr}")
    config, runs = load_study(args.bench)
    budgets = [int(b) for b in args.budgets.split(",")]
    space = create_space(config["space"], num_classes=config["num_classes"])
    space.choice_tokens()
    source, target = TabularBenchmark.load(args.source), TabularBenchmark.load(args.benchmark)
    source.check_space(space)
    target.check_space(space)
    keys = sorted(source.entries, key=lambda k: (-source.entries[k].fitness, k))[:args.top_k]

    model = ArchGPT.from_pretrained(config["model"])
    tuner = OnlineFinetuner(model, space, steps=args.steps, lr=args.lr)
    agreement_before = greedy_agreement(model, tuner, keys)
    tuner.fit(keys)
    agreement_after = greedy_agreement(model, tuner, keys)

    seeds = 1 + max(r.seed for r in runs)
    by = defaultdict(list)
    for r in runs:
        by[r.strategy, r.budget].append(r.best_test)
    evaluator, (_, optimum) = TabularEvaluator(target), target.optimum()
    records = []
    for strategy in ("ga", "random"):
        for budget in budgets:
            for seed in range(seeds):
                space.clear_cache()
                search = build_search(SearchConfig(strategy=f"{strategy}+gpt", space=space.name, budget=budget,
                                                   seed=seed, mask_rate=config["mask_rate"], benchmark=target.path),
                                      table=target, space=space, evaluator=evaluator, model=model)
                result = search.run(progress=False)
                records.append(RunRecord.from_result(f"{strategy}+transfer", budget, seed, result, optimum.fitness,
                                                     optimum.test_acc))
                by[f"{strategy}+transfer", budget].append(records[-1].best_test)

    source_top_on_target = [target.lookup(k).test_acc for k in keys]
    command = (f"python bench/transfer_prior.py --bench {args.bench} --benchmark {args.benchmark} --source "
               f"{args.source} --top_k {args.top_k} --steps {args.steps} --lr {args.lr} --budgets {args.budgets}")
    lines = [f"# Transfer prior on {config['space']}: GPT fine-tuned on {args.source.name}, searched on "
             f"{args.benchmark.name}", "", f"Command: `{command}`; seeds 0..{seeds - 1}, mask rate "
             f"{config['mask_rate']}. Fine-tune: {args.steps} AdamW steps on the unit choices of the {args.top_k} "
             f"best-by-validation architectures of the source ({tuner.seconds:.1f} s); the model's greedy pick "
             f"reproduces {agreement_before:.1%} of those choices before and {agreement_after:.1%} after.", "",
             f"For scale: those {args.top_k} source architectures score {np.mean(source_top_on_target):.3f} on "
             f"average on the target (best {max(source_top_on_target):.3f}, first {source_top_on_target[0]:.3f}); "
             f"the target's optimum-by-validation scores {optimum.test_acc:.3f}.", "",
             "Test accuracy (%) of the best-by-fitness architecture; p: two-sided Mann-Whitney U.", "",
             "| strategy | budget | mean ± std | vs | other mean | p |", "|---|---|---|---|---|---|"]
    rows = [Versus.of(f"{base}+transfer", budget, by[f"{base}+transfer", budget], other, by[other, budget])
            for base in ("ga", "random") for budget in budgets for other in (base, f"{base}+gpt", "re")
            if by[other, budget]]
    lines += [row.markdown() for row in rows]
    summary = {"command": command, "source_keys": keys, "finetune_s": tuner.seconds,
               "agreement_before": agreement_before, "agreement_after": agreement_after,
               "source_top_mean_test_on_target": float(np.mean(source_top_on_target)),
               "rows": [asdict(r) for r in rows], "runs": [r.to_json() for r in records]}
    atomic_write_text(args.bench / "transfer.json", json.dumps(summary, indent=1) + "\n")
    atomic_write_text(args.bench / "transfer.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    try:
        main()
    except UserInputError as err:  # bad input: one clear line, no traceback
        sys.exit(f"error: {err}")
