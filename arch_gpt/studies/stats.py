"""The statistics every study reports: two-sided Mann-Whitney U (scipy) and one typed comparison row."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value (scipy); 1.0 when every value is tied (no difference to find)."""
    p = stats.mannwhitneyu(a, b, alternative="two-sided").pvalue
    return float(p) if np.isfinite(p) else 1.0


@dataclass(frozen=True)
class Versus:
    """One comparison row of the follow-up studies: ``strategy``'s results against ``vs``'s at ``budget``."""
    strategy: str
    budget: int
    mean: float
    std: float
    vs: str
    other_mean: float
    p: float

    @classmethod
    def of(cls, label: str, budget: int, got: Sequence[float], other: str, ref: Sequence[float]) -> "Versus":
        return cls(label, budget, float(np.mean(got)), float(np.std(got)), other, float(np.mean(ref)),
                   mann_whitney_p(got, ref))

    def markdown(self) -> str:
        """A markdown table line: strategy, budget, mean ± std, vs, other mean, p."""
        return (f"| {self.strategy} | {self.budget} | {self.mean:.3f} ± {self.std:.3f} | {self.vs} | "
                f"{self.other_mean:.3f} | {self.p:.3g} |")
