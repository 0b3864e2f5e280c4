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
