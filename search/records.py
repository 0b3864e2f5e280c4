"""The search's typed records: candidates, fitness, individuals, history lines, timings and the result.

Every record that reaches a file has one ``to_json``/``from_json`` pair here, so a field is named in one place.
History lines carry a format version ``v`` (:data:`HISTORY_VERSION`); lines written before it existed (no
``v``) read as version 1.
"""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from arch_gpt.errors import UserInputError
from arch_gpt.search import run_info as files

if TYPE_CHECKING:  # pragma: no cover
    from arch_gpt.encoding import Architecture
    from arch_gpt.standalone import SearchedNetwork

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
    screening_s: float = 0.0  # +rank: featurizing the pool, fitting the predictor, ranking (part of search_s)

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
    costs: dict | None = None  # params / flops / latency of the candidate, when the search measures them

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["parents"], data["predicted_units"] = list(self.parents), list(self.predicted_units)
        if self.costs is None:
            del data["costs"]
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
    pareto: list[dict] | None = None  # with several objectives: the non-dominated evaluated candidates

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
            **({"pareto": self.pareto} if self.pareto is not None else {}),
        }

    @classmethod
    def load(cls, run_dir: str | Path, space: Any = None) -> "SearchResult":
        """The result of a finished run folder (``result.json``, ``history.jsonl``, ``best_genome.json``) as
        ``Search.run`` returned it; UserInputError naming the file, line and key of what does not read.

        ``best.candidate.genome`` is the space's genome when ``space`` (the run's SearchSpace) is given, else the
        JSON form best_genome.json records (the key, for spaces without one): records never import the spaces."""
        from arch_gpt.encoding import Architecture
        from arch_gpt.io import read_jsonl

        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            what = "a file" if run_dir.exists() else "no such directory"
            raise UserInputError(f"{run_dir}: not a run folder ({what})")
        path, history_path = run_dir / files.RESULT_FILE, run_dir / files.HISTORY_FILE
        for needed in (path, history_path):
            if not needed.is_file():
                raise UserInputError(f"{needed}: not found; is {run_dir} the folder of a finished search?")
        result = files.read_object(path)
        scalars = {k: files.field(result, k, kind, path, required=True) for k, kind in (
            ("strategy", str), ("space", str), ("seed", int), ("evaluations", int), ("unique_evaluations", int),
            ("generations", int))}
        best = files.field(result, "best", dict, path, required=True)
        where = f"{path}: key 'best'"
        key = files.field(best, "key", str, where, required=True)
        arch = Architecture.from_text(files.field(best, "arch", str, where, required=True), source=f"{where}.arch")
        history = [HistoryEntry.from_json(value, f"{history_path}: line {n}") for n, value in read_jsonl(history_path)]
        first = next((h for h in history if h.key == key and not h.cached), None)
        candidate = Candidate(_loaded_genome(run_dir, key, space), key, *(
            (first.origin, first.parents, first.predicted_units) if first else ()))
        record = FitnessRecord(key, float(files.field(best, "fitness", numbers.Real, where, required=True)),
                               files.field(best, "test_acc", numbers.Real, where),
                               files.field(best, "params", int, where), first.cost_s if first else 0.0)
        timings = Timings.from_json(files.field(result, "timings", dict, path, required=True), f"{path}: key 'timings'")
        extra = {name: result[name] for name in {f.name for f in dataclasses.fields(cls)} - set(scalars)
                 if name in result and name not in ("best", "best_architecture", "history", "timings", "output_dir")}
        return cls(**scalars, best=Individual(candidate, record), best_architecture=arch, history=history,
                   timings=timings, output_dir=run_dir, **extra)

    def to_module(self, retrained: bool = False) -> "SearchedNetwork":
        """The best network with its trained weights, in eval mode, as :class:`arch_gpt.standalone.SearchedNetwork`:
        the class ``arch-gpt export`` writes as model.py (``save_pretrained``/``push_to_hub`` work on it). Weights:
        the search's (``best.safetensors``) or, ``retrained``, those of ``arch-gpt retrain``. The network is the
        one best_genome.json records, so no space is needed; UserInputError naming the file when it is missing."""
        from arch_gpt.standalone import SearchedNetwork, load_weights

        if self.output_dir is None:
            raise UserInputError("output_dir: this result has no run folder (the search ran without output_dir), so "
                                 "no weights were kept; run the search with an output_dir")
        run_dir = Path(self.output_dir)
        weights = run_dir / (files.RETRAIN_WEIGHTS if retrained else files.SEARCH_WEIGHTS)
        if not weights.is_file():
            why = "run `arch-gpt retrain RUN_DIR` first" if retrained else \
                "the evaluator kept no trained weights (a search scored by table lookup trains nothing)"
            raise UserInputError(f"{weights}: not found; {why}")
        path = run_dir / files.GENOME_FILE
        data = files.read_object(path)
        if not isinstance(data.get("network"), dict):
            raise UserInputError(f"{path}: key 'network': missing (an older arch-gpt wrote it, or the space's network "
                                 f"could not be traced); `arch-gpt export {run_dir}` rebuilds it through the space")
        try:
            model = SearchedNetwork({**data, "search": files.search_info(run_dir, weights)})
        except ValueError as err:
            if isinstance(err, UserInputError):
                raise
            raise UserInputError(f"{path}: key 'network': {err}") from None
        try:
            load_weights(model, weights)
        except ValueError as err:  # its message names the weights file
            raise UserInputError(str(err)) from None
        return model.eval()


def _loaded_genome(run_dir: Path, key: str, space: Any) -> Any:
    """The best genome of a run folder: decoded by ``space`` when given, else best_genome.json's JSON form or key."""
    path = run_dir / files.GENOME_FILE
    data = files.read_object(path) if path.is_file() else {}
    if data and data.get("key") != key:
        raise UserInputError(f"{path}: key 'key': {data.get('key')!r} is not result.json's best {key!r}")
    recorded = data.get("genome")
    if space is None:
        return recorded if recorded is not None else key
    if recorded is not None and hasattr(space, "genome_from_json"):
        genome = space.genome_from_json(recorded)
    elif hasattr(space, "parse"):
        genome = space.parse(key)
    else:
        raise UserInputError(f"space: {type(space).__name__} can neither read a genome nor parse a key")
    if space.key(genome) != key:
        raise UserInputError(f"space: rebuilds the best genome as {space.key(genome)!r}, not {key!r}; pass the run's "
                             f"space")
    return genome


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
