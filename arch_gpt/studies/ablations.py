"""The paper's ablations as commands (GPT-NAS §5.2): ``arch-gpt ablation mask-rate`` and ``epoch-correlation``.

mask-rate (§5.2.1): the genetic search with GPT reconstruction at initial mask rates 0, 0.2, 0.4, 0.6, 0.8;
every run has the same seed, so the GA proposes the same initial individuals before reconstruction.
epoch-correlation (§5.2.2): random individuals trained for few and for more epochs; Pearson r and its
p-value (``scipy.stats.pearsonr``) between the two accuracies, and Spearman's rho. Both write
``DIR/<name>.json``, ``DIR/<name>.md`` and ``DIR/<name>.png``; the defaults are small runs on digits.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from arch_gpt.encoding import atomic_write_text
from arch_gpt.errors import UserInputError


@dataclass(frozen=True)
class MaskRateConfig:
    """The sweep: rates, the genetic search's size, and ``seeds`` runs per rate (seeds seed..seed+seeds-1;
    a seed gives the same initial individuals at every rate)."""
    rates: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8)
    population: int = 6
    generations: int = 3
    seed: int = 0
    seeds: int = 1


@dataclass(frozen=True)
class EpochCorrelationConfig:
    """How many random individuals, and the two training lengths compared."""
    samples: int = 10
    few_epochs: int = 1
    more_epochs: int = 5
    seed: int = 0


def best_so_far(history: Sequence[dict]) -> list[float]:
    """The running maximum of ``fitness`` over a run's history lines."""
    return np.maximum.accumulate([float(h.get("fitness") or 0.0) for h in history]).tolist() if history else []


def _mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    if not values or any(v is None for v in values):
        return None, None
    return float(np.mean(values)), float(np.std(values))


def mask_rate_sweep(space, make_evaluator: Callable[[], object], model, config: MaskRateConfig,
                    output_dir: str | Path | None = None, progress: bool = True, command: str | None = None,
                    keep_runs: bool = False) -> dict:
    """GA + GPT runs per mask rate and seed, each with a fresh evaluator from ``make_evaluator`` (so no run
    inherits another's trained weights); returns the summary (also written when ``output_dir`` is given).
    ``keep_runs`` also keeps every run's search folder (``mask-rate-<r>/[seed-<s>/]``, trained weights included)."""
    from arch_gpt.search.reconstruction import GPTReconstructor
    from arch_gpt.search.strategies.genetic import GeneticSearch

    if not config.rates or any(not 0.0 <= r <= 1.0 for r in config.rates):
        raise UserInputError(f"--rates: need mask rates in [0, 1], got {config.rates}")
    if config.seeds < 1:
        raise UserInputError(f"--seeds: need at least 1 run per rate, got {config.seeds}")
    out = Path(output_dir) if output_dir is not None else None
    rows = []
    for rate in config.rates:
        runs = []
        for seed in range(config.seed, config.seed + config.seeds):
            strategy = GeneticSearch(space, make_evaluator(), GPTReconstructor(model, mask_rate=rate),
                                     population=config.population, generations=config.generations, seed=seed)
            run_dir = None
            if out is not None and keep_runs:
                run_dir = out / f"mask-rate-{rate:g}" / (f"seed-{seed}" if config.seeds > 1 else "")
            result = strategy.run(output_dir=run_dir, progress=progress)
            rec = result.best.record
            runs.append({"seed": seed, "best_fitness": rec.fitness, "best_test_acc": rec.test_acc,
                         "best_params": rec.params, "best_key": result.best.candidate.key,
                         "evaluations": result.evaluations, "timings": asdict(result.timings),
                         "predicted_blocks": sum(len(h.get("predicted_units") or ()) for h in result.history),
                         "best_so_far": best_so_far(result.history)})
        fitness = _mean_std([r["best_fitness"] for r in runs])
        test_acc = _mean_std([r["best_test_acc"] for r in runs])
        length = min(len(r["best_so_far"]) for r in runs)
        rows.append({"mask_rate": rate, "runs": runs, "fitness_mean": fitness[0], "fitness_std": fitness[1],
                     "test_acc_mean": test_acc[0], "test_acc_std": test_acc[1],
                     "predicted_blocks_mean": float(np.mean([r["predicted_blocks"] for r in runs])),
                     "reconstruction_s_mean": float(np.mean([r["timings"]["reconstruction_s"] for r in runs])),
                     "best_so_far_mean": np.mean([r["best_so_far"][:length] for r in runs], axis=0).tolist()})
    summary = {"ablation": "mask-rate", "space": space.name, "config": asdict(config), "rows": rows,
               "command": command}
    if out is not None:
        write_outputs(out, "mask-rate", summary, _mask_rate_markdown(summary), lambda p: _mask_rate_plot(rows, p))
    return summary


def epoch_correlation(space, make_evaluator: Callable[[int], object], config: EpochCorrelationConfig,
                      output_dir: str | Path | None = None, command: str | None = None) -> dict:
    """Train the same random individuals for ``few_epochs`` and ``more_epochs``; correlate the accuracies."""
    from scipy import stats

    from arch_gpt.search.protocols import Candidate

    if config.samples < 3:
        raise UserInputError(f"--samples: a correlation needs at least 3 individuals, got {config.samples}")
    if not 0 < config.few_epochs < config.more_epochs:
        raise UserInputError(f"--few-epochs/--more-epochs: need 0 < few < more, got {config.few_epochs}, "
                             f"{config.more_epochs}")
    rng = np.random.default_rng(config.seed)
    genomes: dict[str, object] = {}
    for _ in range(config.samples * 20):
        if len(genomes) == config.samples:
            break
        genome = space.sample(rng)
        genomes.setdefault(space.key(genome), genome)
    candidates = [Candidate(g, k) for k, g in genomes.items()]
    few = make_evaluator(config.few_epochs).evaluate(candidates)
    more = make_evaluator(config.more_epochs).evaluate(candidates)
    x = np.array([r.fitness for r in few])
    y = np.array([r.fitness for r in more])
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        r = p = rho = rho_p = float("nan")  # a constant input has no correlation
    else:
        r, p = (float(v) for v in stats.pearsonr(x, y))
        rho, rho_p = (float(v) for v in stats.spearmanr(x, y))
    summary = {"ablation": "epoch-correlation", "space": space.name, "config": asdict(config),
               "pearson_r": r, "p_value": p, "spearman_rho": rho, "spearman_p": rho_p,
               "individuals": [{"key": c.key, "few": a.fitness, "more": b.fitness, "error_few": a.error,
                                "error_more": b.error} for c, a, b in zip(candidates, few, more)],
               "command": command}
    if output_dir is not None:
        write_outputs(Path(output_dir), "epoch-correlation", summary, _correlation_markdown(summary),
                      lambda path: _correlation_plot(x, y, summary, path))
    return summary


# ----------------------------------------------------------------------------- outputs

def write_outputs(out: Path, name: str, summary: dict, markdown: str, plot: Callable[[Path], None]) -> None:
    """``out/<name>.json``, ``.md`` (with the command line when there is one) and ``.png``."""
    out.mkdir(parents=True, exist_ok=True)
    if summary.get("command"):
        markdown += f"\nCommand: `{summary['command']}`\n"
    atomic_write_text(out / f"{name}.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / f"{name}.md", markdown)
    plot(out / f"{name}.png")


def _fmt(v) -> str:
    return "–" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def _pm(mean: float | None, std: float | None) -> str:
    return "–" if mean is None else f"{mean:.4f} ± {std:.4f}"


def _mask_rate_markdown(summary: dict) -> str:
    cfg = summary["config"]
    lines = [f"# Mask-rate ablation (GPT-NAS §5.2.1) on space `{summary['space']}`", "",
             f"GA + GPT, population {cfg['population']}, {cfg['generations']} generations, {cfg['seeds']} run(s) "
             f"per rate from seed {cfg['seed']} (a seed gives the same initial individuals at every rate). "
             "Mean ± std over the runs.", "",
             "| mask rate | runs | best fitness (val acc) | test acc of the best | GPT-predicted blocks per run "
             "| reconstruction s per run |", "|---|---|---|---|---|---|"]
    for row in summary["rows"]:
        lines.append(f"| {row['mask_rate']:g} | {len(row['runs'])} | {_pm(row['fitness_mean'], row['fitness_std'])} "
                     f"| {_pm(row['test_acc_mean'], row['test_acc_std'])} | {row['predicted_blocks_mean']:.1f} | "
                     f"{row['reconstruction_s_mean']:.3f} |")
    return "\n".join(lines) + "\n"


def _correlation_markdown(summary: dict) -> str:
    cfg = summary["config"]
    return "\n".join([
        f"# Epoch-correlation ablation (GPT-NAS §5.2.2) on space `{summary['space']}`", "",
        f"{len(summary['individuals'])} random individuals (seed {cfg['seed']}), validation accuracy after "
        f"{cfg['few_epochs']} and after {cfg['more_epochs']} epochs.", "",
        "| Pearson r | p-value | Spearman rho | p-value |", "|---|---|---|---|",
        f"| {_fmt(summary['pearson_r'])} | {_fmt(summary['p_value'])} | {_fmt(summary['spearman_rho'])} | "
        f"{_fmt(summary['spearman_p'])} |", ""])


def _mask_rate_plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for row in rows:
        curve = row["best_so_far_mean"]
        ax.plot(range(1, len(curve) + 1), curve, label=f"mask rate {row['mask_rate']:g}")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best fitness so far (mean over runs)")
    ax.set_title("GA + GPT by initial mask rate")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _correlation_plot(x: np.ndarray, y: np.ndarray, summary: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = summary["config"]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(x, y)
    ax.set_xlabel(f"accuracy after {cfg['few_epochs']} epochs")
    ax.set_ylabel(f"accuracy after {cfg['more_epochs']} epochs")
    ax.set_title(f"Pearson r = {_fmt(summary['pearson_r'])}, p = {_fmt(summary['p_value'])}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- CLI

def _space_and_data(args: argparse.Namespace, space_name: str = "blocks"):
    """The space sized for ``--dataset`` (block options only for the block space) and the data."""
    from arch_gpt.search.datasets import load_dataset
    from arch_gpt.search.registry import create_space

    data = load_dataset(args.dataset, data_dir=args.data_dir, download=args.download, subset=args.subset,
                        input_size=args.input_size, seed=args.seed)
    c, h, w = data.input_size
    extra = {}
    if space_name == "blocks":
        try:
            widths = tuple(int(v) for v in args.widths.split(",")) if args.widths else None
        except ValueError:
            raise UserInputError(f"--widths: expected comma-separated integers, got {args.widths!r}") from None
        extra = {"min_blocks": args.min_blocks, "max_blocks": args.max_blocks, **({"widths": widths} if widths else {})}
    return create_space(space_name, num_classes=data.num_classes, input_size=(h, w, c), **extra), data


def training_evaluator(space, data, epochs: int, max_steps: int | None, seed: int, accelerate: bool = True,
                       batch_size: int | None = None):
    """The search's training evaluator for ``epochs`` epochs (accelerations off when ``accelerate`` is False)."""
    from arch_gpt.search.evaluators.training import TrainingConfig, TrainingEvaluator

    config = TrainingConfig(epochs=epochs, max_steps_per_epoch=max_steps, seed=seed, batch_size=batch_size,
                            **({} if accelerate else {"train_predicted_only": False, "bn_only": False,
                                                      "inherit_weights": False}))
    return TrainingEvaluator(space, data, config)


# Options that only matter when candidates are trained (left out of a tabular run's command line).
TRAINING_OPTIONS = frozenset({"dataset", "data_dir", "download", "subset", "input_size", "min_blocks", "max_blocks",
                              "widths", "max_steps", "batch_size", "epochs"})


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (every option that matters spelled out)."""
    parts = ["arch-gpt", "ablation", args.ablation]
    tabular = getattr(args, "benchmark", None) is not None
    for key, value in vars(args).items():
        if key in ("func", "command", "ablation") or value is None or value is False:
            continue
        if tabular and key in TRAINING_OPTIONS:
            continue
        parts += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return " ".join(parts)


def _run_mask_rate(args: argparse.Namespace) -> int:
    from arch_gpt.modeling import ArchGPT

    try:
        rates = tuple(float(r) for r in args.rates.split(","))
    except ValueError:
        raise UserInputError(f"--rates: expected comma-separated numbers, got {args.rates!r}") from None
    config = MaskRateConfig(rates=rates, population=args.population, generations=args.generations, seed=args.seed,
                            seeds=args.seeds)
    if args.benchmark is not None:
        from arch_gpt.search.evaluators.tabular import TabularBenchmark, TabularEvaluator
        from arch_gpt.search.registry import create_space

        table = TabularBenchmark.load(args.benchmark)
        space = create_space(args.space)
        table.check_space(space)

        def make_evaluator():
            return TabularEvaluator(table)
    else:
        space, data = _space_and_data(args, args.space)

        def make_evaluator():
            return training_evaluator(space, data, args.epochs, args.max_steps, args.seed, batch_size=args.batch_size)
    try:
        model = ArchGPT.from_pretrained(args.model)
    except (OSError, UserInputError) as err:
        raise UserInputError(f"--model: cannot load the GPT {args.model!r} ({err})") from None
    summary = mask_rate_sweep(space, make_evaluator, model, config, args.output, command=_command(args),
                              keep_runs=args.keep_runs)
    for row in summary["rows"]:
        print(f"mask rate {row['mask_rate']:g}: best fitness {_pm(row['fitness_mean'], row['fitness_std'])}")
    print(f"wrote {Path(args.output) / 'mask-rate.md'}")
    return 0


def _run_epoch_correlation(args: argparse.Namespace) -> int:
    space, data = _space_and_data(args)
    config = EpochCorrelationConfig(samples=args.samples, few_epochs=args.few_epochs, more_epochs=args.more_epochs,
                                    seed=args.seed)
    summary = epoch_correlation(
        space, lambda epochs: training_evaluator(space, data, epochs, args.max_steps, args.seed, accelerate=False,
                                                 batch_size=args.batch_size),
        config, args.output, command=_command(args))
    print(f"Pearson r = {summary['pearson_r']:.4f} (p = {summary['p_value']:.4g}); "
          f"wrote {Path(args.output) / 'epoch-correlation.md'}")
    return 0


def _common(p: argparse.ArgumentParser, output: str) -> None:
    p.add_argument("--dataset", default="digits", help="digits (default, offline), cifar10, cifar100, imagenet")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--download", action="store_true")
    p.add_argument("--subset", type=float, default=None)
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument("--min-blocks", type=int, default=10)
    p.add_argument("--max-blocks", type=int, default=20)
    p.add_argument("--widths", default=None, help="comma-separated channel widths (multiples of 8)")
    p.add_argument("--max-steps", type=int, default=None, help="cap on training steps per epoch")
    p.add_argument("--batch-size", type=int, default=32,
                   help="training batch (32: on digits, batch 128 leaves deep block nets near chance in few epochs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=output)


def register(subparsers) -> None:
    """Add ``arch-gpt ablation mask-rate`` and ``arch-gpt ablation epoch-correlation``."""
    p = subparsers.add_parser("ablation", help="the paper's ablations (mask-rate sweep, epoch correlation)",
                              description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="ablation", metavar="ABLATION", required=True)
    m = sub.add_parser("mask-rate", help="GA + GPT at mask rates 0..0.8 on the same initial individuals")
    _common(m, "ablations/mask-rate")
    m.add_argument("--rates", default="0,0.2,0.4,0.6,0.8")
    m.add_argument("--population", type=int, default=6)
    m.add_argument("--generations", type=int, default=3)
    m.add_argument("--epochs", type=int, default=1, help="training epochs per candidate")
    m.add_argument("--model", default="arch-gpt-nasbench101", help="ArchGPT name or path")
    m.add_argument("--keep-runs", action="store_true", help="keep every run's search folder under --output")
    m.add_argument("--seeds", type=int, default=1, help="runs per rate (seeds --seed, --seed+1, ...)")
    m.add_argument("--space", default="blocks", help="blocks (default), or nasbench201 / nasbench-macro with --benchmark")
    m.add_argument("--benchmark", metavar="FILE", default=None, help="tabular benchmark JSON: lookup, no training")
    m.set_defaults(func=_run_mask_rate)
    e = sub.add_parser("epoch-correlation", help="Pearson r between accuracies after few and more epochs")
    _common(e, "ablations/epoch-correlation")
    e.add_argument("--samples", type=int, default=10)
    e.add_argument("--few-epochs", type=int, default=1)
    e.add_argument("--more-epochs", type=int, default=5)
    e.set_defaults(func=_run_epoch_correlation)
