"""The search's one plotting module: a run's convergence plot (matplotlib's object API, no global state)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from arch_gpt.io import atomic_path
from arch_gpt.search.records import HistoryEntry


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> None:
    """Write ``fig`` as a PNG atomically (an Agg canvas, whatever backend pyplot users chose)."""
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def plot_convergence(history: Sequence[HistoryEntry], path: Path, title: str = "") -> None:
    """Fitness of every evaluation and the best so far, against evaluations."""
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    x = [h.evaluation for h in history]
    ax.scatter(x, [h.fitness for h in history], s=8, alpha=0.4, label="evaluated")
    ax.step(x, [h.best_fitness for h in history], where="post", color="C3", label="best so far")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("fitness (validation accuracy)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)


def plot_pareto(history: Sequence[HistoryEntry], front: Sequence[dict], path: Path, title: str = "") -> None:
    """Every feasible evaluation and the non-dominated front: validation accuracy against the first cost."""
    cost = next((k for k in ("params", "flops", "latency") if front and k in front[0]), None)
    if cost is None:
        return
    fig = Figure(figsize=(6, 4.5), dpi=100)
    ax = fig.add_subplot()
    done = [h for h in history if h.error is None and h.costs and cost in h.costs]
    ax.scatter([h.costs[cost] for h in done], [h.fitness for h in done], s=10, alpha=0.35, label="evaluated")
    ax.step([p[cost] for p in front], [p["val_acc"] for p in front], where="post", color="C3", marker="o",
            markersize=4, label="non-dominated front")
    unit = {"params": "parameters", "flops": "multiply-adds", "latency": "latency (ms)"}[cost]
    ax.set_xscale("log" if cost != "latency" else "linear")
    ax.set_xlabel(unit)
    ax.set_ylabel("fitness (validation accuracy)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)
