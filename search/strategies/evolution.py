"""Regularized (aging) evolution, Real et al. 2019: the standard NAS baseline.

The population is a queue ordered by age. Each child is a mutation of the fittest of ``sample_size``
individuals drawn without replacement; each child evaluated pushes the oldest individual out. Children
are made ``children_per_generation`` at a time from the same population (so a GPT reconstructor can
batch them); with 1 this is the sequential algorithm. With ``asynchronous`` (steady state, see
:class:`arch_gpt.search.loop.SteadyStateRun`) a child is proposed whenever a trial finishes, so parallel workers
never wait for a generation's slowest trial; the result then depends on the order in which trials finish.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from arch_gpt.errors import UserInputError
from arch_gpt.search.objectives import Objectives
from arch_gpt.search.protocols import Evaluator, ProposesOne, Reconstructor, SearchSpace
from arch_gpt.search.records import Candidate, Individual, SearchState
from arch_gpt.search.registry import register_strategy
from arch_gpt.search.screening import Screener
from arch_gpt.search.strategies.base import Strategy


@register_strategy("re")
class RegularizedEvolution(Strategy, ProposesOne):
    """Aging evolution with tournament sampling; population and sample size as in the RE paper."""
    name = "re"

    def __init__(self, space: SearchSpace, evaluator: Evaluator, reconstructor: Reconstructor | None = None, *,
                 population: int = 30, sample_size: int = 10, children_per_generation: int = 10,
                 budget: int = 600, seed: int = 0, novelty_retries: int = 10, asynchronous: bool = False,
                 objectives: Objectives | None = None, screener: Screener | None = None):
        super().__init__(space, evaluator, reconstructor, budget=budget, seed=seed, novelty_retries=novelty_retries,
                         objectives=objectives, screener=screener)
        if population < 2:
            raise UserInputError(f"population: must be at least 2, got {population}")
        if not 1 <= sample_size <= population:
            raise UserInputError(f"sample_size: must be in [1, population={population}], got {sample_size}")
        if children_per_generation < 1:
            raise UserInputError(f"children_per_generation: must be at least 1, got {children_per_generation}")
        self.population, self.sample_size, self.children = population, sample_size, children_per_generation
        self.asynchronous = bool(asynchronous)

    def config(self) -> dict:
        return {**super().config(), "population": self.population, "sample_size": self.sample_size,
                "children_per_generation": self.children, **({"asynchronous": True} if self.asynchronous else {})}

    def propose(self, state: SearchState, rng: np.random.Generator) -> list[Candidate]:
        if len(state.population) < self.population:
            return self.sample_batch(self.population - len(state.population), state, rng)
        taken: set[str] = set()
        return [self._child(state, rng, taken) for _ in range(self.children)]

    def propose_one(self, state: SearchState, rng: np.random.Generator, pending: Sequence[Candidate]) -> Candidate:
        """Steady state: a sample while the population (with the trials in flight) is not full, else a child."""
        taken = {c.key for c in pending}
        if len(state.population) + len(pending) < self.population:
            genome, _ = self.novel(self.space.sample(rng), taken, state, lambda g: self.space.sample(rng))
            return self.candidate(genome, "sample")
        return self._child(state, rng, taken)

    def _child(self, state: SearchState, rng: np.random.Generator, taken: set[str]) -> Candidate:
        """A mutation of the fittest of ``sample_size`` individuals drawn without replacement."""
        pop = state.population
        drawn = rng.choice(len(pop), size=min(self.sample_size, len(pop)), replace=False)
        parent = pop[max(drawn.tolist(), key=lambda i: (pop[i].fitness, -i))]
        genome = self.space.mutate(parent.candidate.genome, rng)
        genome, _ = self.novel(genome, taken, state, lambda g: self.space.mutate(g, rng))
        return self.candidate(genome, "mutation", (parent.candidate.key,))

    def update(self, state: SearchState, evaluated: Sequence[Individual], rng: np.random.Generator) -> None:
        state.population = (list(state.population) + list(evaluated))[-self.population:]
