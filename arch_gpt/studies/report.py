"""Summaries of a with/without-GPT study: per strategy and budget, the Mann-Whitney tests, results.md, the plot.

Inputs are :class:`RunRecord`s, one per strategy x budget x seed. Every number in the report is computed
from them: the test accuracy of the best-by-fitness architecture, the regret against the table's
optimum (its best-by-fitness architecture's test accuracy), and the search time without evaluation.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import stats


@dataclass
class RunRecord:
    """One search on a table. ``curve[i]`` is the test accuracy of the best-by-fitness architecture after
    i + 1 evaluations (the incumbent's, so it only changes when the fitness improves)."""
    strategy: str
    budget: int
    seed: int
    best_key: str
    best_fitness: float
    best_test: float
    regret: float
    fitness_regret: float
    evaluations: int
    unique_evaluations: int
    generations: int
    search_s: float
    reconstruction_s: float
    evaluation_s: float
    predicted_units: int = 0
    finetune_s: float = 0.0  # online fine-tune seconds (already included in search_s)
    curve: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Summary:
    """Aggregate of one strategy at one budget over its seeds."""
    strategy: str
    budget: int
    runs: int
    test_mean: float
    test_std: float
    regret_mean: float
    fitness_regret_mean: float
    optimum_hits: int
    search_s_mean: float
    search_s_per_generation: float
    reconstruction_s_mean: float


@dataclass
class Comparison:
    """Two-sided Mann-Whitney U of the best test accuracies of ``base`` vs ``gpt`` at one budget."""
    base: str
    gpt: str
    budget: int
    base_mean: float
    gpt_mean: float
    u: float
    p_value: float
    search_overhead: float | None  # gpt's search time without evaluation / base's, minus 1


def summarize(records: Sequence[RunRecord], optimum_key: str) -> list[Summary]:
    """One Summary per (strategy, budget), in first-seen order."""
    groups: dict[tuple[str, int], list[RunRecord]] = {}
    for r in records:
        groups.setdefault((r.strategy, r.budget), []).append(r)
    out = []
    for (strategy, budget), runs in groups.items():
        test = np.array([r.best_test for r in runs])
        gens = sum(r.generations for r in runs)
        out.append(Summary(
            strategy=strategy, budget=budget, runs=len(runs), test_mean=float(test.mean()),
            test_std=float(test.std(ddof=1)) if len(runs) > 1 else 0.0,
            regret_mean=float(np.mean([r.regret for r in runs])),
            fitness_regret_mean=float(np.mean([r.fitness_regret for r in runs])),
            optimum_hits=sum(r.best_key == optimum_key for r in runs),
            search_s_mean=float(np.mean([r.search_s for r in runs])),
            search_s_per_generation=float(sum(r.search_s for r in runs) / max(gens, 1)),
            reconstruction_s_mean=float(np.mean([r.reconstruction_s for r in runs]))))
    return out


def pairs(labels: Sequence[str]) -> list[tuple[str, str]]:
    """The comparisons among ``labels``: X vs X+gpt, X vs X+gpt+ft and X+gpt vs X+gpt+ft, where both ran."""
    present = list(dict.fromkeys(labels))
    out = []
    for label in present:
        if "+" not in label:
            continue
        base = label.split("+")[0]
        for other in (base, base + "+gpt"):
            if other != label and other in present:
                out.append((other, label))
    return sorted(out, key=lambda p: (p[1].count("+"), present.index(p[1]), p[0].count("+")))


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value (scipy); 1.0 when every value is tied (no difference to find)."""
    p = stats.mannwhitneyu(a, b, alternative="two-sided").pvalue
    return float(p) if np.isfinite(p) else 1.0


def versus(label: str, budget: int, got: Sequence[float], other: str, ref: Sequence[float]) -> dict:
    """One comparison row of the study scripts: ``label``'s results against ``other``'s at ``budget``."""
    return {"strategy": label, "budget": budget, "mean": float(np.mean(got)), "std": float(np.std(got)),
            "vs": other, "other_mean": float(np.mean(ref)), "p": mann_whitney_p(got, ref)}


def versus_line(row: dict) -> str:
    """A :func:`versus` row as a markdown table line (strategy, budget, mean ± std, vs, other mean, p)."""
    return (f"| {row['strategy']} | {row['budget']} | {row['mean']:.3f} ± {row['std']:.3f} | {row['vs']} | "
            f"{row['other_mean']:.3f} | {row['p']:.3g} |")


def compare(records: Sequence[RunRecord], summaries: Sequence[Summary]) -> list[Comparison]:
    """Mann-Whitney U (two-sided, scipy) of each pair of :func:`pairs` for every budget where both ran on at
    least 2 seeds."""
    by = {(s.strategy, s.budget): s for s in summaries}
    out = []
    for base, gpt in pairs([r.strategy for r in records]):
        for budget in sorted({r.budget for r in records}):
            a = [r.best_test for r in records if r.strategy == base and r.budget == budget]
            b = [r.best_test for r in records if r.strategy == gpt and r.budget == budget]
            if len(a) < 2 or len(b) < 2:
                continue
            statistic = float(stats.mannwhitneyu(a, b, alternative="two-sided").statistic)
            sa, sb = by[(base, budget)], by[(gpt, budget)]
            overhead = (sb.search_s_per_generation / sa.search_s_per_generation - 1.0
                        if sa.search_s_per_generation > 0 else None)
            out.append(Comparison(base, gpt, budget, float(np.mean(a)), float(np.mean(b)), statistic,
                                  mann_whitney_p(a, b), overhead))
    return out


def verdict(c: Comparison, alpha: float = 0.05) -> str:
    """One plain sentence on whether the GPT variant did better."""
    diff = c.gpt_mean - c.base_mean
    if c.p_value < alpha:
        how = "better than" if diff > 0 else "WORSE than"
        return f"{c.gpt} is significantly {how} {c.base} (p = {c.p_value:.3g}, difference {diff:+.3f} points)."
    if diff > 0:
        return (f"{c.gpt} is NOT significantly better than {c.base} (p = {c.p_value:.3g}, difference "
                f"{diff:+.3f} points).")
    return f"{c.gpt} is NOT better than {c.base} (difference {diff:+.3f} points, p = {c.p_value:.3g})."


def markdown(summaries: Sequence[Summary], comparisons: Sequence[Comparison], header: dict) -> str:
    """results.md: settings, the main table, the tests, the GPT's cost (Table 6) and plain verdicts."""
    lines = [f"# {header['title']}", ""]
    lines += [f"- **{k}:** {v}" for k, v in header["facts"].items()]
    lines += ["", "## Best-by-fitness architecture, per strategy and budget", "",
              "Test accuracy (%) of the architecture with the best fitness found (mean ± std over seeds); "
              "regret = the optimum's test accuracy minus it; fitness regret = optimum fitness minus best fitness.",
              "", "| strategy | budget | runs | test acc | mean regret | mean fitness regret | optimum found |",
              "|---|---|---|---|---|---|---|"]
    for s in summaries:
        lines.append(f"| {s.strategy} | {s.budget} | {s.runs} | {s.test_mean:.3f} ± {s.test_std:.3f} | "
                     f"{s.regret_mean:.3f} | {s.fitness_regret_mean:.3f} | {s.optimum_hits}/{s.runs} |")
    lines += ["", "## With vs without the GPT (two-sided Mann-Whitney U, scipy)", "",
              "| comparison | budget | mean test (base) | mean test (+gpt) | U | p | search-time overhead per "
              "generation |", "|---|---|---|---|---|---|---|"]
    for c in comparisons:
        over = f"{100 * c.search_overhead:+.1f}%" if c.search_overhead is not None else "n/a"
        lines.append(f"| {c.base} vs {c.gpt} | {c.budget} | {c.base_mean:.3f} | {c.gpt_mean:.3f} | {c.u:.1f} | "
                     f"{c.p_value:.3g} | {over} |")
    if not comparisons:
        lines.append("| (no strategy ran both with and without the GPT on 2+ seeds) | | | | | | |")
    lines += ["", "## Search time excluding evaluation (Table 6)", "",
              "| strategy | budget | mean search s per run | search s per generation | of which GPT reconstruction "
              "(s per run) |", "|---|---|---|---|---|"]
    for s in summaries:
        lines.append(f"| {s.strategy} | {s.budget} | {s.search_s_mean:.4f} | {s.search_s_per_generation:.5f} | "
                     f"{s.reconstruction_s_mean:.4f} |")
    if comparisons:
        lines += ["", "## Verdict", ""] + [f"- budget {c.budget}: {verdict(c)}" for c in comparisons]
    return "\n".join(lines) + "\n"


def plot_convergence(records: Sequence[RunRecord], path: Path, title: str, optimum: float | None = None) -> None:
    """Mean incumbent test accuracy vs evaluations (log axis) with a ±1 std band, one line per strategy, a panel
    per budget; the optimum's test accuracy as a dashed line. The y range starts where the means are after
    5% of the budget, so that the differences that matter stay visible."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = sorted({r.budget for r in records})
    strategies = list(dict.fromkeys(r.strategy for r in records))
    fig, axes = plt.subplots(1, len(budgets), figsize=(5 * len(budgets), 4), squeeze=False)
    for ax, budget in zip(axes[0], budgets):
        floor = []
        for i, strategy in enumerate(strategies):
            curves = [r.curve for r in records if r.strategy == strategy and r.budget == budget and r.curve]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            data = np.array([c[:n] for c in curves])
            mean, std = data.mean(axis=0), data.std(axis=0)
            x = np.arange(1, n + 1)
            ax.plot(x, mean, color=f"C{i}", label=f"{strategy} ({len(curves)} seeds)")
            ax.fill_between(x, mean - std, mean + std, color=f"C{i}", alpha=0.15)
            floor.append(float(mean[min(n - 1, max(0, budget // 20))]))
        if optimum is not None:
            ax.axhline(optimum, color="k", linestyle="--", linewidth=0.8, label="optimum")
        if floor:
            top = max(optimum if optimum is not None else -np.inf, *floor)
            ax.set_ylim(min(floor) - 0.5, top + 0.5)
        ax.set_xscale("log")
        ax.set_title(f"budget {budget}")
        ax.set_xlabel("evaluations")
        ax.set_ylabel("test acc. of best-by-fitness (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
