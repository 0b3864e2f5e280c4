"""The genetic algorithm of GPT-NAS (§3.4), after AE-CNN (the paper's reference 35).

Defaults are the paper's: population 30, 20 generations (600 evaluations, the initial population
counting as generation 1), crossover rate 0.7, mutation rate 0.5. One generation:

1. *Mating selection*: each parent is the fitter of two individuals drawn at random from the
   population (binary tournament, with replacement between draws).
2. *Variation*: with probability ``crossover_rate`` the two parents are crossed by ``space.crossover``
   (one-point on the block lists in the block space), else copied; each child is then mutated by
   ``space.mutate`` (add/remove/replace a block) with probability ``mutation_rate``. A child whose key
   was already evaluated is mutated again (up to ``novelty_retries`` times).
3. *Environmental selection* from parents plus offspring: the ``elitism`` fittest survive
   unconditionally, the other places go to binary-tournament winners drawn without replacement.

With a reconstructor every new individual (initial or offspring) is rewritten by the GPT before it is
evaluated. ``budget`` (evaluations) overrides ``population x generations``; the last generation is cut
to fit it exactly.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from arch_gpt.errors import UserInputError
from arch_gpt.search.objectives import Objectives
from arch_gpt.search.pareto import crowding_distance, non_dominated_sort
from arch_gpt.search.protocols import Evaluator, Reconstructor, SearchSpace
from arch_gpt.search.records import Candidate, Individual, SearchState
from arch_gpt.search.registry import register_strategy
from arch_gpt.search.screening import Screener
from arch_gpt.search.strategies.base import Strategy, binary_tournament


@register_strategy("ga")
class GeneticSearch(Strategy):
    """AE-CNN-style GA: binary-tournament mating, crossover + mutation, elitist tournament survival."""
    name = "ga"

    def __init__(self, space: SearchSpace, evaluator: Evaluator, reconstructor: Reconstructor | None = None, *,
                 population: int = 30, generations: int = 20, crossover_rate: float = 0.7,
                 mutation_rate: float = 0.5, elitism: int = 1, budget: int | None = None, seed: int = 0,
                 novelty_retries: int = 10, objectives: Objectives | None = None, screener: Screener | None = None):
        super().__init__(space, evaluator, reconstructor, budget=budget, seed=seed, novelty_retries=novelty_retries,
                         objectives=objectives, screener=screener)
        if population < 2:
            raise UserInputError(f"population: must be at least 2, got {population}")
        if generations < 1:
            raise UserInputError(f"generations: must be at least 1, got {generations}")
        for flag, rate in (("crossover_rate", crossover_rate), ("mutation_rate", mutation_rate)):
            if not 0.0 <= rate <= 1.0:
                raise UserInputError(f"{flag}: must be in [0, 1], got {rate}")
        if not 0 <= elitism <= population:
            raise UserInputError(f"elitism: must be in [0, population], got {elitism}")
        self.population, self.generations = population, generations
        self.crossover_rate, self.mutation_rate, self.elitism = crossover_rate, mutation_rate, elitism

    @property
    def budget(self) -> int:
        return self.budget_arg if self.budget_arg is not None else self.population * self.generations

    def config(self) -> dict:
        return {**super().config(), "population": self.population, "crossover_rate": self.crossover_rate,
                "mutation_rate": self.mutation_rate, "elitism": self.elitism}

    def propose(self, state: SearchState, rng: np.random.Generator) -> list[Candidate]:
        if not state.population:
            return self.sample_batch(self.population, state, rng)
        pop = state.population
        taken: set[str] = set()
        children: list[Candidate] = []
        pick = (lambda: crowded_tournament(pop, rng, self.objectives)) if self.objectives.multi else \
            (lambda: binary_tournament(pop, rng))
        while len(children) < self.population:
            a, b = pop[pick()], pop[pick()]
            parents = (a.candidate.key, b.candidate.key)
            crossed = bool(rng.random() < self.crossover_rate)
            genomes = (self.space.crossover(a.candidate.genome, b.candidate.genome, rng) if crossed
                       else (a.candidate.genome, b.candidate.genome))
            for genome, own in zip(genomes, (a, b)):
                mutated = bool(rng.random() < self.mutation_rate)
                if mutated:
                    genome = self.space.mutate(genome, rng)
                genome, again = self.novel(genome, taken, state, lambda g: self.space.mutate(g, rng))
                origin = "+".join(op for op, used in (("crossover", crossed), ("mutation", mutated or again)) if used)
                children.append(self.candidate(genome, origin or "copy",
                                               parents if crossed else (own.candidate.key,)))
        return children[:self.population]

    def update(self, state: SearchState, evaluated: Sequence[Individual], rng: np.random.Generator) -> None:
        if not state.population:
            state.population = list(evaluated)
            return
        pool = list(state.population) + list(evaluated)
        if self.objectives.multi:
            state.population = nsga2_survivors(pool, self.population, self.objectives)
            return
        order = sorted(range(len(pool)), key=lambda i: -pool[i].fitness)  # stable: earlier wins ties
        survivors = [pool[i] for i in order[:self.elitism]]
        rest = [pool[i] for i in sorted(order[self.elitism:])]
        while len(survivors) < self.population and rest:
            survivors.append(rest.pop(binary_tournament(rest, rng)))
        state.population = survivors


def nsga2_survivors(pool: Sequence[Individual], size: int, objectives: Objectives) -> list[Individual]:
    """NSGA-II environmental selection: whole fronts in order, the last one cut by crowding distance."""
    points = [objectives.point(i.record) for i in pool]
    survivors: list[int] = []
    for front in non_dominated_sort(points):
        if len(survivors) + len(front) <= size:
            survivors += front
            continue
        distance = crowding_distance([points[i] for i in front])
        by_crowding = sorted(range(len(front)), key=lambda k: -distance[k])  # stable: earlier wins ties
        survivors += [front[k] for k in by_crowding[:size - len(survivors)]]
        break
    return [pool[i] for i in survivors]


def crowded_tournament(pool: Sequence[Individual], rng: np.random.Generator, objectives: Objectives) -> int:
    """Index of the better of two drawn individuals by (front, then crowding distance): NSGA-II's mating."""
    points = [objectives.point(i.record) for i in pool]
    rank, crowd = [0] * len(pool), [0.0] * len(pool)
    for r, front in enumerate(non_dominated_sort(points)):
        for i, d in zip(front, crowding_distance([points[i] for i in front])):
            rank[i], crowd[i] = r, d
    i, j = (int(x) for x in rng.integers(len(pool), size=2))
    return j if (rank[j], -crowd[j]) < (rank[i], -crowd[i]) else i
