"""``arch-gpt ablation mask-rate|epoch-correlation``: the paper's ablations (GPT-NAS §5.2).

mask-rate: ga+gpt at initial mask rates 0..0.8 on the same initial individuals. epoch-correlation: Pearson r
between the accuracies of random networks after few and after more epochs. The defaults are small runs on
digits (16 px) with batch 32 (batch 128 leaves deep block networks near chance in a few epochs) and the
block space's own widths: the settings the committed results in bench/results/ablations were made with.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from arch_gpt.cli.search import int_list, number_list
from arch_gpt.cli.help import HelpFormatter, add_command

# Options that only matter when candidates are trained (left out of a tabular run's recorded command).
TRAINING_OPTIONS = frozenset({"dataset", "data_dir", "download", "subset", "input_size", "min_blocks", "max_blocks",
                              "widths", "max_steps_per_epoch", "batch_size", "epochs", "lr"})
BLOCK_WIDTHS = (16, 24, 32, 48, 64, 96, 128)  # the block space's default widths


float_list = number_list(float, "numbers")


def _common(p: argparse.ArgumentParser, output: str) -> None:
    p.add_argument("--dataset", default="digits", help="digits (offline), cifar10, cifar100, imagenet")
    p.add_argument("--data-dir", default=None, help="folder of cifar10/cifar100/imagenet data")
    p.add_argument("--download", action="store_true", help="download CIFAR into --data-dir if missing")
    p.add_argument("--subset", type=float, default=None, help="fraction of each class kept")
    p.add_argument("--input-size", type=int, default=None,
                   help="image side in pixels (default: the dataset's native size, 16 for digits)")
    p.add_argument("--min-blocks", type=int, default=10, help="block space: fewest blocks (default: 10)")
    p.add_argument("--max-blocks", type=int, default=20, help="block space: most blocks (default: 20)")
    p.add_argument("--widths", type=int_list, default=BLOCK_WIDTHS,
                   help="block space: comma-separated channel widths (default: 16,24,32,48,64,96,128)")
    p.add_argument("--max-steps", dest="max_steps_per_epoch", type=int, default=None,
                   help="cap on training steps per epoch")
    p.add_argument("--batch-size", type=int, default=32, help="training batch (default: 32)")
    p.add_argument("--lr", type=float, default=0.01, help="SGD peak lr (default: 0.01)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default: 0)")
    p.add_argument("--output", default=output, help=f"output folder (default: {output})")
    p.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in --output")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``arch-gpt ablation mask-rate`` and ``arch-gpt ablation epoch-correlation``."""
    p = add_command(subparsers, "ablation", __doc__, "the paper's ablations (mask-rate sweep, epoch correlation)")
    sub = p.add_subparsers(dest="ablation", metavar="ABLATION", required=True)
    m = sub.add_parser("mask-rate", formatter_class=HelpFormatter, help="GA + GPT at mask rates 0..0.8 on the same initial individuals")
    _common(m, "ablations/mask-rate")
    m.add_argument("--rates", type=float_list, default=(0.0, 0.2, 0.4, 0.6, 0.8),
                   help="comma-separated initial mask rates (default: 0,0.2,0.4,0.6,0.8)")
    m.add_argument("--population", type=int, default=6, help="population (default: 6)")
    m.add_argument("--generations", type=int, default=3, help="generations (default: 3)")
    m.add_argument("--epochs", type=int, default=1, help="training epochs per candidate (default: 1)")
    m.add_argument("--model", default="arch-gpt-nasbench101", help="ArchGPT name or path")
    m.add_argument("--keep-runs", action="store_true", help="keep every run's search folder under --output")
    m.add_argument("--seeds", type=int, default=1, help="runs per rate: seeds --seed, --seed+1, ... (default: 1)")
    m.add_argument("--space", default="blocks", help="blocks, or nasbench201 / nasbench-macro with --benchmark")
    m.add_argument("--benchmark", metavar="FILE", default=None, help="tabular benchmark JSON: lookup, no training")
    m.set_defaults(func=run_mask_rate)
    e = sub.add_parser("epoch-correlation", formatter_class=HelpFormatter, help="Pearson r between accuracies after few and more epochs")
    _common(e, "ablations/epoch-correlation")
    e.add_argument("--samples", type=int, default=10, help="random networks (default: 10)")
    e.add_argument("--few-epochs", type=int, default=1, help="short training (default: 1)")
    e.add_argument("--more-epochs", type=int, default=5, help="long training (default: 5)")
    e.set_defaults(func=run_epoch_correlation)


def command_line(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (every option that matters spelled out)."""
    parts = ["arch-gpt", "ablation", args.ablation]
    tabular = getattr(args, "benchmark", None) is not None
    for key, value in vars(args).items():
        if key in ("func", "command", "ablation", "overwrite", "debug") or value is None or value is False:
            continue
        if tabular and key in TRAINING_OPTIONS:
            continue
        flag = "--max-steps" if key == "max_steps_per_epoch" else f"--{key.replace('_', '-')}"
        if isinstance(value, tuple):
            value = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        parts += [flag] + ([] if value is True else [str(value)])
    return " ".join(parts)


def _search_config(args: argparse.Namespace, space: str = "blocks"):
    """The search settings the ablation's runs share (training options only when candidates are trained)."""
    from dataclasses import fields

    from arch_gpt.search.spec import SearchConfig
    tabular = getattr(args, "benchmark", None) is not None
    values = {f.name: getattr(args, f.name) for f in fields(SearchConfig) if hasattr(args, f.name)
              and not (tabular and f.name in TRAINING_OPTIONS)}
    return SearchConfig(**{**values, "space": space, "strategy": "ga+gpt" if hasattr(args, "model") else "ga"})


def _parts(config):
    from arch_gpt.search.data import load_image_data
    from arch_gpt.search.evaluators.tabular import TabularBenchmark
    from arch_gpt.search.spec import build_space

    if config.tabular:
        table = TabularBenchmark.load(config.benchmark)
        return build_space(config, table=table), None, table
    data = load_image_data(config.dataset, data_dir=config.data_dir, download=config.download, subset=config.subset,
                        input_size=config.input_size, seed=config.seed)
    return build_space(config, data=data), data, None


def run_mask_rate(args: argparse.Namespace) -> int:
    from arch_gpt.search.spec import load_model
    from arch_gpt.studies.ablations import MaskRateConfig, mask_rate_sweep

    config = _search_config(args, args.space)
    space, data, table = _parts(config)
    sweep = MaskRateConfig(rates=args.rates, population=args.population, generations=args.generations,
                           seed=args.seed, seeds=args.seeds)
    summary = mask_rate_sweep(config, sweep, space=space, model=load_model(config.gpt("model")), data=data, table=table,
                              output_dir=args.output, command=command_line(args), keep_runs=args.keep_runs,
                              overwrite=args.overwrite)
    for row in summary.rows:
        std = "" if row.fitness_std is None else f" ± {row.fitness_std:.4f}"
        print(f"mask rate {row.mask_rate:g}: best fitness {row.fitness_mean:.4f}{std}")
    print(f"wrote {Path(args.output) / 'mask-rate.md'}")
    return 0


def run_epoch_correlation(args: argparse.Namespace) -> int:
    from arch_gpt.studies.ablations import EpochCorrelationConfig, epoch_correlation

    config = _search_config(args)
    space, data, _ = _parts(config)
    summary = epoch_correlation(config, EpochCorrelationConfig(samples=args.samples, few_epochs=args.few_epochs,
                                                               more_epochs=args.more_epochs, seed=args.seed),
                                space=space, data=data, output_dir=args.output, command=command_line(args),
                                overwrite=args.overwrite)
    print(f"Pearson r = {summary.pearson_r:.4f} (p = {summary.p_value:.4g}); "
          f"wrote {Path(args.output) / 'epoch-correlation.md'}")
    return 0
