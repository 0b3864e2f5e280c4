"""The small protocols the search is built from (NASLib-style separation), and its optional capabilities.

A strategy only calls ``space.sample/mutate/crossover`` and ``evaluator.evaluate``; it never looks inside a
genome. A reconstructor only uses ``space.units/to_architecture/fill_unit``. Optional capabilities are small
protocols of their own (:class:`HasContextArchitecture`, :class:`HasBlockClasses`, :class:`ParsesKeys`,
:class:`HasConfig`, :class:`SerializesGenomes`, :class:`KeepsRunFolder`, :class:`KeepsWeights`, :class:`BlockLabeller`): the
built-in classes subclass the ones they implement, so a type checker sees a misspelt method, and the loop
tests them with ``isinstance``. Genomes are immutable and every random choice takes a ``numpy.random.Generator``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterable, Protocol, Sequence, runtime_checkable

import numpy as np

from arch_gpt.search.records import Candidate, FitnessRecord, SearchState

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn

    from arch_gpt.encoding import Architecture, Layer

Genome = Hashable  # space-specific and immutable

__all__ = ["Genome", "Unit", "Candidate", "FitnessRecord", "SearchSpace", "Evaluator", "Reconstructor",
           "NextTokenPredictor", "BlockLabeller", "HasContextArchitecture", "HasBlockClasses", "HasConfig", "HasUnitModules", "ParsesKeys",
           "SerializesGenomes", "KeepsRunFolder", "KeepsWeights", "RunsTrials", "ProposesOne", "GenerationHook",
           "ConfiguredHook", "PersistsState"]


@dataclass(frozen=True)
class Unit:
    """A maskable part of a genome (a block, an edge, a searchable layer).

    ``layer_start`` indexes ``space.to_architecture(genome).layers``: the unit's signature layer, whose token is the
    prediction's target. The GPT sees the layers before ``context_end`` (default: ``layer_start``); a space sets it
    lower where the unit's own first layers would give the answer away (NAS-Bench-201's ReLU before a conv).
    ``allowed_tokens`` are the layer tokens that a valid replacement may start with here.
    """
    index: int
    layer_start: int
    allowed_tokens: frozenset[str]
    context_end: int | None = None

    @property
    def context_stop(self) -> int:
        """Where the GPT's context of this unit ends (exclusive)."""
        return self.layer_start if self.context_end is None else self.context_end


@runtime_checkable
class SearchSpace(Protocol):
    """Where candidates live. Implementations: the block space, NAS-Bench-201, NAS-Bench-Macro."""
    name: str
    num_classes: int

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
class HasContextArchitecture(Protocol):
    """A space whose GPT context can be a prefix of the network holding every unit (cheaper than the whole)."""

    def context_architecture(self, genome: Genome) -> "Architecture": ...


@runtime_checkable
class HasBlockClasses(Protocol):
    """A space whose units are blocks of named classes, so the block classifier may pick the class."""
    block_classes: Sequence[str]


@runtime_checkable
class ParsesKeys(Protocol):
    """A space that rebuilds a genome from its key alone (tabular spaces, the block space)."""

    def parse(self, key: str) -> Genome: ...


@runtime_checkable
class HasConfig(Protocol):
    """A space rebuilt by ``create_space(name, **space.config())`` (recorded for export and retrain)."""

    def config(self) -> dict: ...


@runtime_checkable
class SerializesGenomes(Protocol):
    """A space with a JSON form of its genomes richer than the key (for export and retrain)."""

    def genome_to_json(self, genome: Genome) -> dict: ...

    def genome_from_json(self, data: dict) -> Genome: ...


@runtime_checkable
class HasUnitModules(Protocol):
    """A built network whose ``units[i]`` is the submodule of genome unit ``i`` (so training can be limited to
    the units the GPT rewrote, paper §4.3 (i)); the block space's networks have it."""

    @property
    def units(self) -> Sequence["nn.Module"]: ...


@runtime_checkable
class Evaluator(Protocol):
    """Scores a batch of candidates; a failing candidate gets fitness 0 and an ``error``, never an exception."""

    def evaluate(self, candidates: Sequence[Candidate]) -> list[FitnessRecord]: ...


@runtime_checkable
class KeepsRunFolder(Protocol):
    """An evaluator that keeps files in the run folder (trained weights, for inheritance after a resume)."""

    def set_output_dir(self, out: Path) -> None: ...


@runtime_checkable
class KeepsWeights(Protocol):
    """An evaluator that keeps trained weights: ``retain`` is called after each checkpoint with the keys any
    future child may inherit from; ``export_weights`` writes one key's weights (False if not kept)."""

    def retain(self, keys: set[str]) -> None: ...

    def export_weights(self, key: str, path: Path) -> bool: ...

    def missing_weights(self, keys: set[str]) -> list[str]:
        """The keys among ``keys`` whose weights a child would inherit but that are no longer kept."""
        ...


@runtime_checkable
class RunsTrials(Protocol):
    """An evaluator split for parallel execution (search/execution.py): ``prepare`` in the search's process (e.g.
    the parent's weights), ``run_trial`` anywhere (a Ray worker; it must not change the evaluator), ``finish``
    back in the search's process (e.g. keep the trained weights). ``evaluate`` is the three in a row."""

    def prepare(self, candidate: Candidate) -> Any: ...

    def run_trial(self, candidate: Candidate, payload: Any) -> tuple[FitnessRecord, Any]: ...

    def finish(self, candidate: Candidate, record: FitnessRecord, artifact: Any) -> FitnessRecord: ...


@runtime_checkable
class Reconstructor(Protocol):
    """Rewrites new candidates before evaluation (GPT-NAS Algorithm 1). ``progress`` is t/T in [0, 1]."""
    mask_rate: float

    def reconstruct(self, space: SearchSpace, candidates: Sequence[Candidate], progress: float,
                    rng: np.random.Generator) -> list[Candidate]: ...


@runtime_checkable
class NextTokenPredictor(Protocol):
    """What the reconstructor needs of a model (``ArchGPT`` is one): the context window, a ``version`` bumped
    whenever the weights change in place (prediction caches drop on a change), and batched prediction."""
    window: int
    version: int

    def predict_next_tokens(self, contexts: Sequence[Sequence[str]], allowed_tokens: Sequence[Iterable[str]] | None
                            = None, top_k: int = 1, temperature: float = 1.0,
                            rng: np.random.Generator | None = None) -> list[str | None]: ...


@runtime_checkable
class BlockLabeller(Protocol):
    """A model that can also name the block class of a predicted unit (the paper's block classifier)."""

    @property
    def can_classify_blocks(self) -> bool: ...

    def classify_blocks(self, contexts: Sequence[Sequence[str]], tokens: Sequence[str],
                        allowed_labels: Sequence[str] | None = None) -> list[str]: ...


@runtime_checkable
class ProposesOne(Protocol):
    """A strategy that can run asynchronously (steady state): one new candidate whenever a trial finishes,
    given the candidates still ``pending`` (in flight). ``asynchronous`` switches it on."""
    asynchronous: bool

    def propose_one(self, state: SearchState, rng: np.random.Generator, pending: Sequence[Candidate]) -> Candidate:
        ...


GenerationHook = Callable[[SearchState], None]
"""Called after each generation with the search state (the online fine-tune is one)."""


@runtime_checkable
class ConfiguredHook(Protocol):
    """A generation hook whose settings shape the run (the online fine-tunes): its ``config()`` is checkpointed
    beside the strategy's, so a resume with other settings is refused instead of silently diverging."""

    def __call__(self, state: SearchState) -> None: ...

    def config(self) -> dict: ...


@runtime_checkable
class PersistsState(Protocol):
    """A generation hook whose state builds up over the run (the ``+ft`` fine-tune's weights): the loop saves it
    in the run folder after each generation's hook and loads it on resume, so the resumed run continues exactly.
    A hook without it is called once on resume instead (``+cond`` rebuilds its model from the history)."""

    def __call__(self, state: SearchState) -> None: ...

    def save_state(self, folder: Path, generation: int) -> None: ...

    def load_state(self, folder: Path) -> int | None: ...
