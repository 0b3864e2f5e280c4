"""Search checkpoints as JSON: the state after a generation, the RNG state, and a safe genome codec.

Genomes are encoded structurally (tuples, lists, frozensets, str-keyed dicts, scalars and frozen
dataclasses); a dataclass is rebuilt only when its module is an ``arch_gpt`` module or the space's own
module, and every decoded genome must give back its recorded key. Nothing is ever unpickled.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

import numpy as np

from arch_gpt.errors import UserInputError
from arch_gpt.io import append_jsonl, atomic_write_text, read_jsonl
from arch_gpt.search.protocols import SearchSpace
from arch_gpt.search.records import Candidate, FitnessRecord, HistoryEntry, Individual, SearchState, Timings

FORMAT = "arch-gpt-search-checkpoint/1"


class CheckpointError(UserInputError):
    """A checkpoint that cannot continue this run (other settings, corrupt file)."""


def encode_genome(value):
    """A JSON-able structural form of a genome (see the module docstring)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, tuple):
        return {"tuple": [encode_genome(v) for v in value]}
    if isinstance(value, list):
        return [encode_genome(v) for v in value]
    if isinstance(value, frozenset):
        return {"frozenset": sorted((encode_genome(v) for v in value), key=json.dumps)}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: encode_genome(v) for k, v in value.items()}}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        return {"dataclass": f"{cls.__module__}:{cls.__qualname__}",
                "fields": {f.name: encode_genome(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    raise TypeError(f"cannot checkpoint a genome part of type {type(value).__name__}")


def decode_genome(data, allowed_modules: tuple[str, ...] = ()):
    """Inverse of :func:`encode_genome`; dataclasses only from ``arch_gpt.*`` or ``allowed_modules``."""
    if isinstance(data, list):
        return [decode_genome(v, allowed_modules) for v in data]
    if not isinstance(data, dict):
        return data
    if "tuple" in data:
        return tuple(decode_genome(v, allowed_modules) for v in data["tuple"])
    if "frozenset" in data:
        return frozenset(decode_genome(v, allowed_modules) for v in data["frozenset"])
    if "dict" in data:
        return {k: decode_genome(v, allowed_modules) for k, v in data["dict"].items()}
    module, _, qualname = data["dataclass"].partition(":")
    if not (module == "arch_gpt" or module.startswith("arch_gpt.") or module in allowed_modules):
        raise CheckpointError(f"checkpoint genome class {data['dataclass']!r} is not from an arch_gpt module")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not dataclasses.is_dataclass(obj):
        raise CheckpointError(f"checkpoint genome class {data['dataclass']!r} is not a dataclass")
    return obj(**{k: decode_genome(v, allowed_modules) for k, v in data["fields"].items()})


def _candidate_dict(c: Candidate) -> dict:
    return {"genome": encode_genome(c.genome), "key": c.key, "origin": c.origin, "parents": list(c.parents),
            "predicted_units": list(c.predicted_units)}


def save_checkpoint(path: Path, config: dict, state: SearchState, rng: np.random.Generator) -> None:
    """Write the state after a generation atomically; ``config`` is the strategy's ``config()``."""
    data = {
        "format": FORMAT,
        "config": config,
        "generation": state.generation,
        "evaluations": state.evaluations,
        "rng": rng.bit_generator.state,
        "population": [{"candidate": _candidate_dict(i.candidate), "record": i.record.key}
                       for i in state.population],
        "best": None if state.best is None else _candidate_dict(state.best.candidate),
        "cache": [r.to_json() for r in state.cache.values()],
        "history": [h.to_json() for h in state.history],
        "timings": state.timings.to_json(),
    }
    atomic_write_text(path, json.dumps(data, separators=(",", ":")) + "\n")


def load_checkpoint(path: Path, config: dict, space: SearchSpace) -> tuple[SearchState, np.random.Generator]:
    """Read a checkpoint written by :func:`save_checkpoint` for the same strategy settings (``config``).

    Every field is checked for its type and for consistency (evaluations within the budget and equal to the
    history's length, every population member and the best in the cache); a CheckpointError names the field."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: field 'format' is not {FORMAT!r}; not a search checkpoint")
    saved = _field(data, "config", dict, path)
    for name in sorted(set(config) | set(saved)):  # a setting only one side has differs too
        value = config.get(name)
        if saved.get(name) != value:
            raise CheckpointError(f"{path}: field 'config.{name}' is {saved.get(name)!r} but this run "
                                  f"has {value!r}; resume with the same settings or use a new --output")
    allowed = (type(space).__module__,)

    def candidate(d, where: str) -> Candidate:
        try:
            genome = decode_genome(d["genome"], allowed)
            cand = Candidate(genome, str(d["key"]), str(d["origin"]), tuple(d["parents"]),
                             tuple(int(i) for i in d["predicted_units"]))
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise CheckpointError(f"{path}: field {where!r}: not a candidate ({type(err).__name__}: {err})") from None
        if space.key(genome) != cand.key:
            raise CheckpointError(f"{path}: field {where!r}: genome of key {cand.key!r} decodes to key "
                                  f"{space.key(genome)!r}")
        return cand

    def record(key: str, where: str) -> FitnessRecord:
        if key not in cache:
            raise CheckpointError(f"{path}: field {where!r}: key {key!r} is not in the cache")
        return cache[key]

    cache = {}
    for i, r in enumerate(_field(data, "cache", list, path)):
        rec = FitnessRecord.from_json(r, f"{path}: field 'cache[{i}]'")
        cache[rec.key] = rec
    population = []
    for i, p in enumerate(_field(data, "population", list, path)):
        if not isinstance(p, dict):
            raise CheckpointError(f"{path}: field 'population[{i}]': expected an object")
        cand = candidate(p.get("candidate"), f"population[{i}].candidate")
        population.append(Individual(cand, record(str(p.get("record")), f"population[{i}].record")))
    history = [HistoryEntry.from_json(h, f"{path}: field 'history[{i}]'")
               for i, h in enumerate(_field(data, "history", list, path))]
    evaluations, generation = _field(data, "evaluations", int, path), _field(data, "generation", int, path)
    budget = config.get("budget")
    if evaluations < 0 or generation < 0 or (budget is not None and evaluations > budget):
        raise CheckpointError(f"{path}: field 'evaluations': {evaluations} is not within the budget of {budget}")
    if evaluations != len(history):
        raise CheckpointError(f"{path}: field 'evaluations': {evaluations}, but the history holds {len(history)}")
    best = None
    if data.get("best") is not None:
        cand = candidate(data["best"], "best")
        best = Individual(cand, record(cand.key, "best"))
    elif evaluations:
        raise CheckpointError(f"{path}: field 'best': missing after {evaluations} evaluations")
    state = SearchState(generation=generation, evaluations=evaluations, population=population, cache=cache,
                        timings=Timings.from_json(_field(data, "timings", dict, path), f"{path}: field 'timings'"),
                        history=history, best=best)
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = _field(data, "rng", dict, path)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: field 'rng': not a {type(rng.bit_generator).__name__} state ({err})") from None
    return state, rng


def _field(data: dict, name: str, kind: type, path: Path):
    value = data.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CheckpointError(f"{path}: field {name!r}: expected {kind.__name__}, got {type(value).__name__}")
    return value


class TrialJournal:
    """``trials.jsonl``: every evaluation of the generation in progress, appended as it finishes, so a run
    killed mid-generation resumes without redoing finished trials. Emptied after each checkpoint (which then
    holds those records); with no run folder it only keeps nothing."""

    def __init__(self, path: Path | None):
        self.path = path

    def append(self, generation: int, record: FitnessRecord) -> None:
        if self.path is not None:
            append_jsonl(self.path, [{"v": 1, "generation": generation, "record": record.to_json()}])

    def finished(self, generation: int) -> dict[str, FitnessRecord]:
        """The records already finished in ``generation`` (a line cut by the kill is dropped)."""
        if self.path is None or not self.path.is_file():
            return {}
        out = {}
        for number, line in read_jsonl(self.path, skip_partial_last=True):
            where = f"{self.path}: line {number}"
            if not isinstance(line, dict) or not isinstance(line.get("generation"), int):
                raise CheckpointError(f"{where}: field 'generation': expected an integer")
            if line["generation"] == generation:
                record = FitnessRecord.from_json(line.get("record"), f"{where}: field 'record'")
                out[record.key] = record
        return out

    def clear(self) -> None:
        if self.path is not None:
            atomic_write_text(self.path, "")
