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
from arch_gpt.io import atomic_write_text
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
    """Read a checkpoint written by :func:`save_checkpoint` for the same strategy settings (``config``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: field 'format' is not {FORMAT!r}; not a search checkpoint")
    for name, value in config.items():
        if data["config"].get(name) != value:
            raise CheckpointError(f"{path}: field 'config.{name}' is {data['config'].get(name)!r} but this run "
                                  f"has {value!r}; resume with the same settings or use a new --output")
    allowed = (type(space).__module__,)

    def candidate(d: dict) -> Candidate:
        genome = decode_genome(d["genome"], allowed)
        if space.key(genome) != d["key"]:
            raise CheckpointError(f"{path}: genome of key {d['key']!r} decodes to key {space.key(genome)!r}")
        return Candidate(genome, d["key"], d["origin"], tuple(d["parents"]), tuple(d["predicted_units"]))

    cache = {r["key"]: FitnessRecord.from_json(r, f"{path}: cache entry") for r in data["cache"]}
    population = [Individual(candidate(p["candidate"]), cache[p["record"]]) for p in data["population"]]
    best = None if data["best"] is None else candidate(data["best"])
    state = SearchState(generation=data["generation"], evaluations=data["evaluations"], population=population,
                        cache=cache, timings=Timings.from_json(data["timings"], f"{path}: timings"),
                        history=[HistoryEntry.from_json(h, f"{path}: history") for h in data["history"]],
                        best=None if best is None else Individual(best, cache[best.key]))
    rng = np.random.default_rng()
    rng.bit_generator.state = data["rng"]
    return state, rng
