"""What every search strategy shares: the individuals, the search state, and the propose/update contract.

A strategy only proposes candidates (``propose``) and keeps its population (``update``); the loop in
:mod:`arch_gpt.search.loop` reconstructs, evaluates (with a cache), logs and checkpoints. The budget is
the number of individuals evaluated (the paper's 30 x 20 = 600): a key seen before is not re-evaluated
(its cached record is reused at no cost and logged as ``cached``) but still counts as one evaluation.
Proposals whose key was already seen are re-mutated (or re-sampled) up to ``novelty_retries`` times first.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from arch_gpt.errors import UserInputError
from arch_gpt.search.execution import Executor
from arch_gpt.search.loop import run_search
from arch_gpt.search.objectives import Objectives
from arch_gpt.search.protocols import Evaluator, GenerationHook, HasConfig, Reconstructor, SearchSpace
from arch_gpt.search.records import Candidate, Individual, SearchResult, SearchState
from arch_gpt.search.screening import Screener


class Strategy:
    """Base class: subclasses implement :meth:`propose` and :meth:`update` and set ``name``."""
    name = "strategy"

    def __init__(self, space: SearchSpace, evaluator: Evaluator, reconstructor: Reconstructor | None = None, *,
                 budget: int | None = None, seed: int = 0, novelty_retries: int = 10,
                 objectives: Objectives | None = None, screener: Screener | None = None):
        if budget is not None and budget < 1:
            raise UserInputError(f"budget: must be at least 1 evaluation, got {budget}")
        if novelty_retries < 0:
            raise UserInputError(f"novelty_retries: must be >= 0, got {novelty_retries}")
        self.space, self.evaluator, self.reconstructor = space, evaluator, reconstructor
        self.budget_arg, self.seed, self.novelty_retries = budget, int(seed), novelty_retries
        self.objectives = objectives or Objectives()
        if screener is not None and self.objectives.multi:
            raise UserInputError("objectives: +rank ranks candidates by fitness alone; use one objective or drop +rank")
        self.screener = screener

    # --- the contract ---------------------------------------------------------------------------
    @property
    def budget(self) -> int:
        """Total evaluations of the run."""
        if self.budget_arg is None:
            raise UserInputError(f"{self.name}: a budget (number of evaluations) is required")
        return self.budget_arg

    def propose(self, state: SearchState, rng: np.random.Generator) -> list[Candidate]:
        """The next batch of new candidates (before reconstruction)."""
        raise TypeError(f"{type(self).__name__} must implement propose")

    def update(self, state: SearchState, evaluated: Sequence[Individual], rng: np.random.Generator) -> None:
        """Fold the evaluated batch into ``state.population``."""
        raise TypeError(f"{type(self).__name__} must implement update")

    def config(self) -> dict:
        """The settings that must match when a run is resumed (JSON-able)."""
        space = self.space.name
        if isinstance(self.space, HasConfig):  # a spec space is "spec" whatever its file: its content decides
            digest = hashlib.sha1(json.dumps(self.space.config(), sort_keys=True, default=str).encode()).hexdigest()
            space = f"{space}#{digest[:12]}"
        return {"strategy": self.name, "space": space, "seed": self.seed, "budget": self.budget,
                "gpt": self.reconstructor is not None,
                "mask_rate": None if self.reconstructor is None else self.reconstructor.mask_rate,
                **(self.objectives.config() if self.objectives != Objectives() else {}),
                **({"rank": self.screener.config()} if self.screener is not None else {})}

    @property
    def label(self) -> str:
        """The CLI name: e.g. 'ga' or 'ga+gpt'."""
        return self.name + ("+gpt" if self.reconstructor is not None else "") + \
            ("+rank" if self.screener is not None else "")

    def run(self, output_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
            on_generation: GenerationHook | None = None, label: str | None = None,
            executor: Executor | None = None) -> SearchResult:
        """Run the search to its budget; see :func:`arch_gpt.search.loop.run_search`."""
        return run_search(self, output_dir=output_dir, resume=resume, progress=progress,
                          on_generation=on_generation, label=label, executor=executor)

    # --- helpers for subclasses -----------------------------------------------------------------
    def candidate(self, genome, origin: str, parents: tuple[str, ...] = ()) -> Candidate:
        return Candidate(genome, self.space.key(genome), origin, parents)

    def novel(self, genome, taken: set[str], state: SearchState,
              retry: Callable[[object], object]) -> tuple[object, bool]:
        """``genome``, or ``retry(genome)`` applied up to ``novelty_retries`` times until its key is unseen.

        Returns the genome and whether ``retry`` changed it.
        """
        changed = False
        for _ in range(self.novelty_retries):
            key = self.space.key(genome)
            if key not in taken and not state.seen(key):
                break
            genome, changed = retry(genome), True
        taken.add(self.space.key(genome))
        return genome, changed

    def sample_batch(self, count: int, state: SearchState, rng: np.random.Generator) -> list[Candidate]:
        """``count`` sampled candidates, new keys preferred."""
        taken: set[str] = set()
        out = []
        for _ in range(count):
            genome, _ = self.novel(self.space.sample(rng), taken, state, lambda g: self.space.sample(rng))
            out.append(self.candidate(genome, "sample"))
        return out


def binary_tournament(pool: Sequence[Individual], rng: np.random.Generator) -> int:
    """Index of the fitter of two individuals drawn at random (the first drawn wins ties)."""
    i, j = (int(x) for x in rng.integers(len(pool), size=2))
    return j if pool[j].fitness > pool[i].fitness else i
