"""The studies' plots, drawn with matplotlib's object API (``Figure``) and written atomically as PNG."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from arch_gpt.search.plotting import save_figure
from arch_gpt.studies.report import RunRecord


def plot_study_convergence(records: Sequence[RunRecord], path: Path, title: str, optimum: float | None = None) -> None:
    """Mean incumbent test accuracy vs evaluations (log axis) with a ±1 std band, one line per strategy, a panel
    per budget; the optimum's test accuracy as a dashed line. The y range starts where the means are after
    5% of the budget, so that the differences that matter stay visible."""
    budgets = sorted({r.budget for r in records})
    strategies = list(dict.fromkeys(r.strategy for r in records))
    fig = Figure(figsize=(5 * len(budgets), 4))
    axes = fig.subplots(1, len(budgets), squeeze=False)
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
    save_figure(fig, path, dpi=120)


def plot_mask_rates(curves: Sequence[tuple[float, Sequence[float]]], path: Path) -> None:
    """Mean best-so-far fitness against evaluations, one line per initial mask rate."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for rate, curve in curves:
        ax.plot(range(1, len(curve) + 1), curve, label=f"mask rate {rate:g}")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best fitness so far (mean over runs)")
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
