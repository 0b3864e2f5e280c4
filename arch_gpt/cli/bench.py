"""``arch-gpt bench``: the with/without-GPT study on a tabular benchmark (NAS-Bench-201 / NAS-Bench-Macro).

Every strategy x budget x seed is one search, built exactly as ``arch-gpt search`` builds it. Finished runs are
appended to DIR/runs.jsonl, so an interrupted study continues when rerun with the same settings; at the end
DIR/results.json, DIR/results.md and DIR/convergence.png are written. --keep-runs also keeps every run's
search folder (history.jsonl, result.json, ...) under DIR/runs/.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from arch_gpt.cli.search import int_list
from arch_gpt.cli.help import add_command
from arch_gpt.search.defaults import GPT_DEFAULTS as G


def str_list(text: str) -> tuple[str, ...]:
    """``"ga,ga+gpt"`` → ("ga", "ga+gpt") for argparse."""
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    if not values:
        raise argparse.ArgumentTypeError("expected at least one name")
    return values


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``arch-gpt bench``."""
    p = add_command(subparsers, "bench", __doc__, "with/without-GPT study on a tabular benchmark (NAS-Bench-201/Macro)")
    p.add_argument("--space", required=True, choices=("nasbench201", "nasbench-macro"), help="the table's space")
    p.add_argument("--benchmark", required=True, metavar="FILE", help="JSON table (NAS-Bench-201 or -Macro format)")
    p.add_argument("--strategies", type=str_list, default=("random", "random+gpt", "ga", "ga+gpt", "re"),
                   help="comma-separated, e.g. random,random+gpt,ga,ga+gpt,re; X+gpt+ft adds the online fine-tune "
                        "(default: random,random+gpt,ga,ga+gpt,re)")
    p.add_argument("--budgets", type=int_list, default=(10, 100, 600),
                   help="evaluations per run (default: 10,100,600)")
    p.add_argument("--seeds", type=int, default=30, help="runs per strategy and budget, seeds 0..N-1 (default: 30)")
    p.add_argument("--num-classes", type=int, default=None,
                   help="classes of the table's dataset (default: from the file name, e.g. 100 for *cifar100*)")
    p.add_argument("--model", default="arch-gpt-nasbench101", help="ArchGPT for the +gpt strategies")
    p.add_argument("--mask-rate", type=float, default=0.4, help="initial GPT mask rate (default: 0.4)")
    p.add_argument("--finetune-steps", type=int, default=5, help="+ft: steps after each generation (default: 5)")
    p.add_argument("--finetune-top", type=int, default=10, help="+ft: fittest architectures used (default: 10)")
    p.add_argument("--finetune-lr", type=float, default=1e-3, help="+ft: learning rate (default: 0.001)")
    p.add_argument("--cond-steps", type=int, default=G["cond_steps"],
                   help=f"+cond: fine-tune steps after each generation (default: {G['cond_steps']})")
    p.add_argument("--cond-lr", type=float, default=G["cond_lr"], help=f"+cond: learning rate (default: {G['cond_lr']})")
    p.add_argument("--rank-pool", type=int, default=G["rank_pool"],
                   help=f"+rank: proposals per evaluated candidate (default: {G['rank_pool']})")
    p.add_argument("--rank-predictor", choices=("trees", "gp"), default=G["rank_predictor"],
                   help=f"+rank: the predictor (default: {G['rank_predictor']})")
    p.add_argument("--rank-explore", type=float, default=G["rank_explore"],
                   help=f"+rank: rank by predicted mean + this many standard deviations (default: {G['rank_explore']})")
    p.add_argument("--rank-features", choices=("gpt", "onehot"), default=None,
                   help="+rank: the GPT's hidden states or a one-hot (default: gpt with +gpt, else onehot)")
    p.add_argument("--top-k", type=int, default=G["top_k"], help=f"+gpt: sample among the k likeliest (default: {G['top_k']}, greedy)")
    p.add_argument("--temperature", type=float, default=G["temperature"], help=f"+gpt: sampling temperature (default: {G['temperature']})")
    p.add_argument("--top-p", type=float, default=G["top_p"], help=f"+gpt: nucleus of that sampling (default: {G['top_p']})")
    p.add_argument("--population", type=int, default=None,
                   help="population (ga, re) or batch (random) of every strategy (default: 30, the paper's)")
    p.add_argument("--output", required=True, metavar="DIR",
                   help="study folder: new, empty, or an earlier study with the same settings (continued)")
    p.add_argument("--keep-runs", action="store_true", help="keep every run's search folder under DIR/runs/")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from arch_gpt.studies.bench import RESULTS_MD, BenchConfig, run_study

    config = BenchConfig(space=args.space, benchmark=args.benchmark, strategies=args.strategies, budgets=args.budgets,
                         seeds=args.seeds, num_classes=args.num_classes, model=args.model, mask_rate=args.mask_rate,
                         finetune_steps=args.finetune_steps, finetune_top=args.finetune_top,
                         finetune_lr=args.finetune_lr, cond_steps=args.cond_steps, cond_lr=args.cond_lr,
                         rank_pool=args.rank_pool, rank_predictor=args.rank_predictor, rank_explore=args.rank_explore, rank_features=args.rank_features, population=args.population,
                         top_k=args.top_k, temperature=args.temperature, top_p=args.top_p,
                         output=args.output, keep_runs=args.keep_runs)
    run_study(config, progress=not args.no_progress)
    print(f"wrote {Path(args.output) / RESULTS_MD}")
    return 0
