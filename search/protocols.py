"""The small protocols the search is built from (NASLib-style separation).

A strategy only calls ``space.sample/mutate/crossover`` and ``evaluator.evaluate``; it never looks
inside a genome. A reconstructor only uses ``space.units/to_architecture/fill_unit`` (and ``context_architecture``, an optional
prefix of ``to_architecture`` that holds every unit, where building the whole network would be wasted). Genomes are
immutable (tuples, frozen dataclasses) and every random choice takes a ``numpy.random.Generator``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Hashable, Protocol, Sequence, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn

    from arch_gpt.encoding import Architecture, Layer

Genome = Hashable  # space-specific and immutable


@dataclass(frozen=True)
class Unit:
    """A maskable part of a genome (a block, an edge, a searchable layer).

    ``layer_start`` indexes ``space.to_architecture(genome).layers``: the GPT sees the layers before it.
    ``allowed_tokens`` are the layer tokens that a valid replacement may start with here.
    """
    index: int
    layer_start: int
    allowed_tokens: frozenset[str]


@dataclass(frozen=True)
class Candidate:
    """One individual: its genome, a stable key, and where it came from."""
    genome: Any
    key: str
    origin: str = "sample"  # sample | crossover | mutation | reconstruction
    parents: tuple[str, ...] = ()
    predicted_units: tuple[int, ...] = ()  # unit indices the GPT rewrote


@dataclass(frozen=True)
class FitnessRecord:
    """What an evaluator says about one candidate. ``fitness`` drives selection; ``test_acc`` never does."""
    key: str
    fitness: float
    test_acc: float | None = None
    params: int | None = None
    cost_s: float = 0.0
    error: str | None = None  # why a candidate failed (fitness is then 0)
    extra: dict = field(default_factory=dict)


@runtime_checkable
class SearchSpace(Protocol):
    """Where candidates live. Implementations: the block space, NAS-Bench-201, NAS-Bench-Macro."""
    name: str

    def sample(self, rng: np.random.Generator) -> Genome: ...

    def mutate(self, genome: Genome, rng: np.random.Generator) -> Genome: ...

    def crossover(self, a: Genome, b: Genome, rng: np.random.Generator) -> tuple[Genome, Genome]: ...

    def key(self, genome: Genome) -> str: ...

    def to_architecture(self, genome: Genome) -> "Architecture": ...

    def build_module(self, genome: Genome, num_classes: int) -> "nn.Module": ...

    def units(self, genome: Genome) -> list[Unit]: ...

    def fill_unit(self, genome: Genome, unit: Unit, predicted: "Layer | str | None", block_label: str | None,
                  rng: np.random.Generator) -> Genome:
        """Replace ``unit`` by the choice that matches the GPT's predicted first layer (and the
        classifier's block label where the space has block classes), with its shapes fitted.
        ``predicted`` is a layer token (what the reconstructor passes) or a Layer; None keeps the unit."""
        ...


@runtime_checkable
class Evaluator(Protocol):
    """Scores a batch of candidates; a failing candidate gets fitness 0 and an ``error``, never an exception."""

    def evaluate(self, candidates: Sequence[Candidate]) -> list[FitnessRecord]: ...


@runtime_checkable
class Reconstructor(Protocol):
    """Rewrites new candidates before evaluation (GPT-NAS Algorithm 1). ``progress`` is t/T in [0, 1]."""

    def reconstruct(self, space: SearchSpace, candidates: Sequence[Candidate], progress: float,
                    rng: np.random.Generator) -> list[Candidate]: ...
