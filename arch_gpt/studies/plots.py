"""The studies' plots, drawn with matplotlib's object API (``Figure``) and written atomically as PNG."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from arch_gpt.search.plotting import save_figure
from arch_gpt.studies.report import RunRecord


STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def style(i: int) -> dict:
    """Colour, line style and marker of the i-th strategy: distinct for at least 32 strategies."""
    return {"color": f"C{i % 10}", "linestyle": STYLES[(i // 10 + i) % len(STYLES)], "marker": MARKERS[i % len(MARKERS)]}


def plot_study_convergence(records: Sequence[RunRecord], path: Path, title: str, optimum: float | None = None) -> None:
    """Mean incumbent test accuracy vs evaluations (log axis), one styled line per strategy (markers at a few
    points so overlapping lines stay apart), its ±1 std band labelled in the legend, a panel per budget, the
    optimum as a dashed line. The y range starts where the means are after 5% of the budget and bands are
    clipped to it, so the differences that matter stay visible."""
    budgets = sorted({r.budget for r in records})
    strategies = list(dict.fromkeys(r.strategy for r in records))
    fig = Figure(figsize=(5.5 * len(budgets), 4.5))
    axes = fig.subplots(1, len(budgets), squeeze=False)
    for ax, budget in zip(axes[0], budgets):
        floor, tops = [], []
        for i, strategy in enumerate(strategies):
            curves = [r.curve for r in records if r.strategy == strategy and r.budget == budget and r.curve]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            data = np.array([c[:n] for c in curves])
            mean, std = data.mean(axis=0), data.std(axis=0)
            x = np.arange(1, n + 1)
            st = style(i)
            marks = np.unique(np.geomspace(1, n, num=min(n, 6)).astype(int) - 1)
            ax.plot(x, mean, color=st["color"], linestyle=st["linestyle"], marker=st["marker"], markevery=list(marks),
                    markersize=4, linewidth=1.4, label=f"{strategy} (mean of {len(curves)} seeds)")
            ax.fill_between(x, mean - std, mean + std, color=st["color"], alpha=0.10, linewidth=0,
                            label=f"{strategy} ±1 std")
            floor.append(float(mean[min(n - 1, max(0, budget // 20))]))
            tops.append(float(mean.max()))
        if optimum is not None:
            ax.axhline(optimum, color="k", linestyle="--", linewidth=0.8, label="optimum (best-by-fitness test acc.)")
        if floor:
            top = max(optimum if optimum is not None else -np.inf, *tops)
            ax.set_ylim(min(floor) - 0.5, top + 0.5)  # bands beyond the range are clipped by the axes
        ax.set_xscale("log")
        ax.set_xlim(1, budget)
        ax.set_title(f"budget {budget} evaluations")
        ax.set_xlabel("evaluations (log scale)")
        ax.set_ylabel("test accuracy of the best-by-fitness architecture (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, ncol=2, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def plot_mask_rates(curves: Sequence[tuple[float, Sequence[Sequence[float]]]], path: Path, unit: str = "") -> None:
    """Best-so-far fitness against evaluations, one styled line per initial mask rate (the mean over its runs)
    with a ±1 std band when there are several runs."""
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.add_subplot()
    for i, (rate, runs) in enumerate(curves):
        n = min(len(r) for r in runs)
        data = np.array([r[:n] for r in runs])
        mean, std = data.mean(axis=0), data.std(axis=0)
        x = np.arange(1, n + 1)
        st = style(i)
        ax.plot(x, mean, color=st["color"], linestyle=st["linestyle"], marker=st["marker"], markersize=3,
                label=f"mask rate {rate:g} (mean of {len(runs)} run{'s' if len(runs) > 1 else ''})")
        if len(runs) > 1:
            ax.fill_between(x, mean - std, mean + std, color=st["color"], alpha=0.12, linewidth=0,
                            label=f"mask rate {rate:g} ±1 std")
    ax.set_xlabel("evaluations")
    ax.set_ylabel(f"best fitness so far{f' ({unit})' if unit else ''}")
    ax.set_title("GA + GPT by initial mask rate")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def plot_correlation(x: Sequence[float], y: Sequence[float], few_epochs: int, more_epochs: int, title: str,
                     path: Path) -> None:
    """Accuracy after few epochs against accuracy after more epochs, one point per network."""
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    ax.scatter(x, y)
    ax.set_xlabel(f"accuracy after {few_epochs} epochs")
    ax.set_ylabel(f"accuracy after {more_epochs} epochs")
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def plot_budget_panels(panels: Sequence[tuple[str, Sequence[dict], float | None]], path: Path) -> None:
    """One panel per table: mean test accuracy of the best-by-fitness architecture against the budget, one styled
    line per strategy with ±1 std error bars, the goal as a dashed line. ``panels``: (title, rows, goal) with rows
    holding ``strategy``, ``budget``, ``test_mean``, ``test_std``."""
    fig = Figure(figsize=(5.2 * len(panels), 4.6))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (title, rows, goal) in zip(axes[0], panels):
        strategies = list(dict.fromkeys(r["strategy"] for r in rows))
        for i, strategy in enumerate(strategies):
            mine = sorted((r for r in rows if r["strategy"] == strategy), key=lambda r: r["budget"])
            st = style(i)
            ax.errorbar([r["budget"] for r in mine], [r["test_mean"] for r in mine], [r["test_std"] for r in mine],
                        color=st["color"], linestyle=st["linestyle"], marker=st["marker"], markersize=4, capsize=2,
                        linewidth=1.2, label=strategy)
        if goal is not None:
            ax.axhline(goal, color="k", linestyle="--", linewidth=0.8, label=f"goal at 100 ({goal:.2f})")
        ax.set_xscale("log")
        budgets = sorted({r["budget"] for r in rows})
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.minorticks_off()
        ax.set_title(title)
        ax.set_xlabel("budget (evaluations, log scale)")
        ax.set_ylabel("test accuracy of the best-by-fitness architecture (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, ncol=2, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
