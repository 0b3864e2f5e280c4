"""The search's typed records: candidates, fitness, individuals, history lines, timings and the result.

Every record that reaches a file has one ``to_json``/``from_json`` pair here, so a field is named in one place.
History lines carry a format version ``v`` (:data:`HISTORY_VERSION`); lines written before it existed (no
``v``) read as version 1.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from arch_gpt.errors import UserInputError

if TYPE_CHECKING:  # pragma: no cover
    from arch_gpt.encoding import Architecture

HISTORY_VERSION = 1


class JsonRecord:
    """``to_json``/``from_json`` for a flat dataclass whose fields are JSON values."""

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping, where: str = "record"):
        """The record of a JSON object; UserInputError naming ``where`` and an unknown or missing field."""
        return _build(cls, data, where)


@dataclass(frozen=True)
class Candidate:
    """One individual: its genome, a stable key, and where it came from."""
    genome: Any
    key: str
    origin: str = "sample"  # sample | crossover | mutation | reconstruction
    parents: tuple[str, ...] = ()
    predicted_units: tuple[int, ...] = ()  # unit indices the GPT rewrote


@dataclass(frozen=True)
class FitnessRecord(JsonRecord):
    """What an evaluator says about one candidate. ``fitness`` drives selection; ``test_acc`` never does."""
    key: str
    fitness: float
    test_acc: float | None = None
    params: int | None = None
    cost_s: float = 0.0
    error: str | None = None  # why a candidate failed (fitness is then 0)
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Individual:
    """An evaluated candidate."""
    candidate: Candidate
    record: FitnessRecord

    @property
    def fitness(self) -> float:
        return self.record.fitness


@dataclass
class Timings(JsonRecord):
    """Seconds spent, summed over resumed runs. ``search_s`` is everything but evaluation."""
    search_s: float = 0.0
    reconstruction_s: float = 0.0
    evaluation_s: float = 0.0
    total_s: float = 0.0

    def rounded(self, digits: int = 6) -> dict:
        return {k: round(v, digits) for k, v in self.to_json().items()}


@dataclass(frozen=True)
class HistoryEntry:
    """One line of ``history.jsonl``: one evaluation (a cached repeat of a seen key counts, at no cost)."""
    evaluation: int
    generation: int
    key: str
    fitness: float
    test_acc: float | None
    params: int | None
    cost_s: float
    error: str | None
    cached: bool
    origin: str
    parents: tuple[str, ...]
    predicted_units: tuple[int, ...]
    best_fitness: float

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["parents"], data["predicted_units"] = list(self.parents), list(self.predicted_units)
        return {"v": HISTORY_VERSION, **data}

    @classmethod
    def from_json(cls, data: Mapping, where: str = "history line") -> "HistoryEntry":
        if not isinstance(data, Mapping):
            raise UserInputError(f"{where}: expected a JSON object, got {type(data).__name__}")
        version = data.get("v", 1)
        if version != HISTORY_VERSION:
            raise UserInputError(f"{where}: field 'v': history format {version!r} is not supported "
                                 f"(this arch-gpt reads {HISTORY_VERSION})")
        fields = {k: v for k, v in data.items() if k != "v"}
        entry = _build(cls, fields, where)
        return dataclasses.replace(entry, parents=tuple(entry.parents), predicted_units=tuple(entry.predicted_units))


@dataclass
class SearchResult:
    """What a search returns (and writes to ``result.json``)."""
    strategy: str
    space: str
    seed: int
    evaluations: int
    unique_evaluations: int
    generations: int
    best: Individual
    best_architecture: "Architecture"
    history: list[HistoryEntry]
    timings: Timings
    output_dir: Path | None = None

    @property
    def all_failed(self) -> bool:
        """Whether every evaluation failed (fitness 0 with an error): the best is then meaningless."""
        return bool(self.history) and all(h.error is not None for h in self.history)

    def to_json(self) -> dict:
        rec = self.best.record
        return {
            "strategy": self.strategy, "space": self.space, "seed": self.seed, "evaluations": self.evaluations,
            "unique_evaluations": self.unique_evaluations, "generations": self.generations,
            "best": {"key": self.best.candidate.key, "arch": self.best_architecture.to_text(),
                     "fitness": rec.fitness, "params": rec.params, "test_acc": rec.test_acc},
            "timings": self.timings.rounded(6),
        }


def _build(cls, data: Mapping, where: str):
    """``cls(**data)`` with a UserInputError naming the unknown or missing field."""
    if not isinstance(data, Mapping):
        raise UserInputError(f"{where}: expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserInputError(f"{where}: unknown field {unknown[0]!r}")
    required = {f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    missing = sorted(required - set(data))
    if missing:
        raise UserInputError(f"{where}: missing field {missing[0]!r}")
    return cls(**data)


@dataclass
class SearchState:
    """Everything a checkpoint holds: enough to continue a run exactly where it stopped."""
    generation: int = 0
    evaluations: int = 0
    population: list[Individual] = field(default_factory=list)
    cache: dict[str, FitnessRecord] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    best: Individual | None = None

    def seen(self, key: str) -> bool:
        return key in self.cache
