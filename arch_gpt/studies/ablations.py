"""The paper's ablations (GPT-NAS §5.2), behind ``arch-gpt ablation mask-rate`` and ``epoch-correlation``.

mask-rate (§5.2.1): ga+gpt at initial mask rates 0, 0.2, 0.4, 0.6, 0.8, each run built by
:func:`arch_gpt.search.spec.build_search`; every rate uses the same seeds, so the GA proposes the same
initial individuals before reconstruction. epoch-correlation (§5.2.2): random individuals trained for few
and for more epochs; Pearson r and its p-value (``scipy.stats.pearsonr``) and Spearman's rho between the two
accuracies. Both write ``DIR/<name>.json``, ``DIR/<name>.md`` and ``DIR/<name>.png``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import stats

from arch_gpt.errors import UserInputError
from arch_gpt.io import atomic_write_text, write_json
from arch_gpt.modeling import ArchGPT
from arch_gpt.search.datasets import ImageData
from arch_gpt.search.evaluators.tabular import TabularBenchmark
from arch_gpt.search.protocols import SearchSpace
from arch_gpt.search.records import Candidate, HistoryEntry
from arch_gpt.search.spec import SearchConfig, build_evaluator, build_search
from arch_gpt.studies.plots import plot_correlation, plot_mask_rates


@dataclass(frozen=True)
class MaskRateConfig:
    """The sweep: rates, and ``seeds`` runs per rate (seeds seed..seed+seeds-1; a seed gives the same initial
    individuals at every rate). Population, generations and everything else come from the search config."""
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


@dataclass
class MaskRateRun:
    """One ga+gpt run at one mask rate."""
    seed: int
    best_fitness: float
    best_test_acc: float | None
    best_params: int | None
    best_key: str
    evaluations: int
    timings: dict
    predicted_blocks: int
    best_so_far: list[float]


@dataclass
class MaskRateRow:
    """All runs at one mask rate, with their means and standard deviations."""
    mask_rate: float
    runs: list[MaskRateRun]
    fitness_mean: float | None = None
    fitness_std: float | None = None
    test_acc_mean: float | None = None
    test_acc_std: float | None = None
    predicted_blocks_mean: float = 0.0
    reconstruction_s_mean: float = 0.0
    best_so_far_mean: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, rate: float, runs: list[MaskRateRun]) -> "MaskRateRow":
        fitness = _mean_std([r.best_fitness for r in runs])
        test_acc = _mean_std([r.best_test_acc for r in runs])
        length = min(len(r.best_so_far) for r in runs)
        return cls(rate, runs, *fitness, *test_acc,
                   predicted_blocks_mean=float(np.mean([r.predicted_blocks for r in runs])),
                   reconstruction_s_mean=float(np.mean([r.timings["reconstruction_s"] for r in runs])),
                   best_so_far_mean=np.mean([r.best_so_far[:length] for r in runs], axis=0).tolist())


@dataclass
class MaskRateSummary:
    """The mask-rate ablation's result (``mask-rate.json``)."""
    space: str
    config: MaskRateConfig
    rows: list[MaskRateRow]
    command: str | None = None
    ablation: str = "mask-rate"


@dataclass
class CorrelationSummary:
    """The epoch-correlation ablation's result (``epoch-correlation.json``)."""
    space: str
    config: EpochCorrelationConfig
    pearson_r: float
    p_value: float
    spearman_rho: float
    spearman_p: float
    individuals: list[dict]
    command: str | None = None
    ablation: str = "epoch-correlation"


def best_so_far(history: Sequence[HistoryEntry]) -> list[float]:
    """The running maximum of ``fitness`` over a run's history."""
    return np.maximum.accumulate([float(h.fitness or 0.0) for h in history]).tolist() if history else []


def _mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    if not values or any(v is None for v in values):
        return None, None
    return float(np.mean(values)), float(np.std(values))


def mask_rate_sweep(search: SearchConfig, config: MaskRateConfig, *, space: SearchSpace, model: ArchGPT,
                    data: ImageData | None = None, table: TabularBenchmark | None = None,
                    output_dir: str | Path | None = None, progress: bool = True, command: str | None = None,
                    keep_runs: bool = False, overwrite: bool = False) -> MaskRateSummary:
    """ga+gpt runs per mask rate and seed, each with a fresh evaluator (so no run inherits another's trained
    weights); ``keep_runs`` keeps every run's folder (``mask-rate-<r>/[seed-<s>/]``) under ``output_dir``."""
    if not config.rates or any(not 0.0 <= r <= 1.0 for r in config.rates):
        raise UserInputError(f"rates: need mask rates in [0, 1], got {config.rates}")
    if config.seeds < 1:
        raise UserInputError(f"seeds: need at least 1 run per rate, got {config.seeds}")
    out = Path(output_dir) if output_dir is not None else None
    if out is not None:
        check_output(out, "mask-rate", overwrite)
    rows = []
    for rate in config.rates:
        runs = []
        for seed in range(config.seed, config.seed + config.seeds):
            run_config = replace(search, strategy="ga+gpt", mask_rate=rate, population=config.population,
                                 generations=config.generations, budget=None, seed=seed)
            built = build_search(run_config, data=data, table=table, space=space, model=model)
            run_dir = None
            if out is not None and keep_runs:
                run_dir = out / f"mask-rate-{rate:g}" / (f"seed-{seed}" if config.seeds > 1 else "")
            result = built.run(run_dir, progress=progress)
            rec = result.best.record
            runs.append(MaskRateRun(seed, rec.fitness, rec.test_acc, rec.params, result.best.candidate.key,
                                    result.evaluations, result.timings.to_json(),
                                    sum(len(h.predicted_units) for h in result.history), best_so_far(result.history)))
        rows.append(MaskRateRow.of(rate, runs))
    summary = MaskRateSummary(space.name, config, rows, command)
    if out is not None:
        write_outputs(out, "mask-rate", asdict(summary), mask_rate_markdown(summary),
                      lambda p: plot_mask_rates([(r.mask_rate, [run.best_so_far for run in r.runs]) for r in rows], p,
                                                unit="validation accuracy, %" if table is not None else
                                                "validation accuracy, fraction"))
    return summary


def epoch_correlation(search: SearchConfig, config: EpochCorrelationConfig, *, space: SearchSpace,
                      data: ImageData, output_dir: str | Path | None = None,
                      command: str | None = None, overwrite: bool = False) -> CorrelationSummary:
    """Train the same random individuals for ``few_epochs`` and ``more_epochs`` (fully, no acceleration);
    correlate the validation accuracies."""
    if config.samples < 3:
        raise UserInputError(f"samples: a correlation needs at least 3 individuals, got {config.samples}")
    if not 0 < config.few_epochs < config.more_epochs:
        raise UserInputError(f"few_epochs, more_epochs: need 0 < few < more, got {config.few_epochs}, "
                             f"{config.more_epochs}")
    if output_dir is not None:
        check_output(Path(output_dir), "epoch-correlation", overwrite)
    rng = np.random.default_rng(config.seed)
    genomes: dict[str, object] = {}
    for _ in range(config.samples * 20):
        if len(genomes) == config.samples:
            break
        genome = space.sample(rng)
        genomes.setdefault(space.key(genome), genome)
    candidates = [Candidate(g, k) for k, g in genomes.items()]
    few, more = (build_evaluator(replace(search, epochs=epochs, accelerate=False), space, data).evaluate(candidates)
                 for epochs in (config.few_epochs, config.more_epochs))
    x = np.array([r.fitness for r in few])
    y = np.array([r.fitness for r in more])
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        r = p = rho = rho_p = float("nan")  # a constant input has no correlation
    else:
        r, p = (float(v) for v in stats.pearsonr(x, y))
        rho, rho_p = (float(v) for v in stats.spearmanr(x, y))
    summary = CorrelationSummary(space.name, config, r, p, rho, rho_p,
                                 [{"key": c.key, "few": a.fitness, "more": b.fitness, "error_few": a.error,
                                   "error_more": b.error} for c, a, b in zip(candidates, few, more)], command)
    if output_dir is not None:
        write_outputs(Path(output_dir), "epoch-correlation", asdict(summary), correlation_markdown(summary),
                      lambda path: plot_correlation(x, y, config.few_epochs, config.more_epochs,
                                                    f"Pearson r = {_fmt(r)}, p = {_fmt(p)}", path))
    return summary


def check_output(out: Path, name: str, overwrite: bool) -> None:
    """Before any work: ``out`` is a folder (or new), and its earlier ``<name>.*`` results are replaced only when
    ``overwrite``."""
    for parent in (out, *out.parents):
        if parent.exists() and not parent.is_dir():
            raise UserInputError(f"output: {parent} is a file, not a folder")
    earlier = [f"{name}{ext}" for ext in (".json", ".md", ".png") if (out / f"{name}{ext}").exists()]
    if earlier and not overwrite:
        raise UserInputError(f"output: {out} already holds {', '.join(earlier)}; pass overwrite (--overwrite) to "
                             f"replace them or choose another folder")


def write_outputs(out: Path, name: str, summary: dict, markdown: str, plot) -> None:
    """``out/<name>.json``, ``.md`` (with the command line when there is one) and ``.png``."""
    out.mkdir(parents=True, exist_ok=True)
    if summary.get("command"):
        markdown += f"\nCommand: `{summary['command']}`\n"
    write_json(out / f"{name}.json", summary)
    atomic_write_text(out / f"{name}.md", markdown)
    plot(out / f"{name}.png")


def _fmt(v) -> str:
    return "–" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def _pm(mean: float | None, std: float | None) -> str:
    return "–" if mean is None else f"{mean:.4f} ± {std:.4f}"


def mask_rate_markdown(summary: MaskRateSummary) -> str:
    """The mask-rate table: fitness, test accuracy, predicted blocks and reconstruction time per rate."""
    cfg = summary.config
    lines = [f"# Mask-rate ablation (GPT-NAS §5.2.1) on space `{summary.space}`", "",
             f"GA + GPT, population {cfg.population}, {cfg.generations} generations, {cfg.seeds} run(s) "
             f"per rate from seed {cfg.seed} (a seed gives the same initial individuals at every rate). "
             "Mean ± std over the runs.", "",
             "| mask rate | runs | best fitness (val acc) | test acc of the best | GPT-predicted blocks per run "
             "| reconstruction s per run |", "|---|---|---|---|---|---|"]
    for row in summary.rows:
        lines.append(f"| {row.mask_rate:g} | {len(row.runs)} | {_pm(row.fitness_mean, row.fitness_std)} "
                     f"| {_pm(row.test_acc_mean, row.test_acc_std)} | {row.predicted_blocks_mean:.1f} | "
                     f"{row.reconstruction_s_mean:.3f} |")
    return "\n".join(lines) + "\n"


def correlation_markdown(summary: CorrelationSummary) -> str:
    """The epoch-correlation table."""
    cfg = summary.config
    return "\n".join([
        f"# Epoch-correlation ablation (GPT-NAS §5.2.2) on space `{summary.space}`", "",
        f"{len(summary.individuals)} random individuals (seed {cfg.seed}), validation accuracy after "
        f"{cfg.few_epochs} and after {cfg.more_epochs} epochs.", "",
        "| Pearson r | p-value | Spearman rho | p-value |", "|---|---|---|---|",
        f"| {_fmt(summary.pearson_r)} | {_fmt(summary.p_value)} | {_fmt(summary.spearman_rho)} | "
        f"{_fmt(summary.spearman_p)} |", ""])
