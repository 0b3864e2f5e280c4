"""Random search: independent samples from the space, in batches (so a GPT reconstructor batches too)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from arch_gpt.errors import UserInputError
from arch_gpt.search.objectives import Objectives
from arch_gpt.search.protocols import Evaluator, Reconstructor, SearchSpace
from arch_gpt.search.records import Candidate, Individual, SearchState
from arch_gpt.search.registry import register_strategy
from arch_gpt.search.screening import Screener
from arch_gpt.search.strategies.base import Strategy


@register_strategy("random")
class RandomSearch(Strategy):
    """Sample ``batch_size`` new individuals per generation until ``budget`` evaluations are done."""
    name = "random"

    def __init__(self, space: SearchSpace, evaluator: Evaluator, reconstructor: Reconstructor | None = None, *,
                 budget: int = 600, batch_size: int = 30, seed: int = 0, novelty_retries: int = 10,
                 objectives: Objectives | None = None, screener: Screener | None = None):
        super().__init__(space, evaluator, reconstructor, budget=budget, seed=seed, novelty_retries=novelty_retries,
                         objectives=objectives, screener=screener)
        if batch_size < 1:
            raise UserInputError(f"batch_size: must be at least 1, got {batch_size}")
        self.batch_size = batch_size

    def config(self) -> dict:
        return {**super().config(), "batch_size": self.batch_size}

    def propose(self, state: SearchState, rng: np.random.Generator) -> list[Candidate]:
        return self.sample_batch(self.batch_size, state, rng)

    def update(self, state: SearchState, evaluated: Sequence[Individual], rng: np.random.Generator) -> None:
        """Random search keeps no population; the runner tracks the best."""
