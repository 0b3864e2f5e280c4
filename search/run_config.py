"""What a search run records about its best individual (``best_genome.json``) and how it is rebuilt.

``best_genome.json`` holds the space's name and constructor config, the key, the genome (where the space
serializes it), the data's input size and classes, the fitness and, when the space's network could be traced, the
``network`` that :class:`arch_gpt.standalone.SearchedNetwork` rebuilds without the space (what
``SearchResult.to_module`` uses). Every read is checked; errors name the file and key: unknown keys, a space
config the space refuses (types, limits, unknown fields), a ``genome`` that does not rebuild as ``key``, a
fitness that is not a finite number.
"""
from __future__ import annotations

import json
import math
import numbers
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from arch_gpt.errors import UserInputError
from arch_gpt.io import atomic_write_text
from arch_gpt.search.protocols import Genome, HasConfig, ParsesKeys, SearchSpace, SerializesGenomes
from arch_gpt.search.spaces import create_space, list_spaces
from arch_gpt.search.spaces.checks import MAX_CLASSES, MAX_SIDE, check_int, input_size_hwc
from arch_gpt.search.run_info import GENOME_FILE, RESULT_FILE
from arch_gpt.search.run_info import read_object as _read_object
from arch_gpt.standalone import SearchedNetwork
from arch_gpt.torch_export import NetworkExportError, standalone_copy

FORMAT = "arch-gpt-export/1"


class ExportError(UserInputError):
    """A run folder or export config that cannot be turned into a module (names file and key)."""


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the best module: the space (name + constructor config) and the genome."""
    space: str
    key: str
    space_config: dict = field(default_factory=dict)
    genome: dict | None = None  # space.genome_to_json(genome) where the space has it
    num_classes: int | None = None
    input_size: tuple[int, int, int] | None = None  # (H, W, C) like the language; [C, H, W] on disk
    fitness: float | None = None
    format: str = FORMAT
    network: dict | None = field(default=None, compare=False, repr=False)  # arch_gpt.standalone's description
    source: str | None = field(default=None, compare=False, repr=False)  # the file it was read from; not written

    def to_dict(self) -> dict:
        """The JSON object (``input_size`` as [C, H, W]; ``network`` only when known)."""
        data = asdict(self)
        data.pop("source")
        if data["network"] is None:
            data.pop("network")
        if self.input_size:
            h, w, c = self.input_size
            data["input_size"] = [c, h, w]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"


CONFIG_KEYS = frozenset(f.name for f in fields(ModelConfig)) - {"source"}


@contextmanager
def _located(where: str | Path, key: str) -> Iterator[None]:
    """Re-raise a UserInputError from inside as an ExportError naming the file and key."""
    try:
        yield
    except UserInputError as err:
        message = str(err)
        message = message[len(key) + 2:] if message.startswith(f"{key}: ") else message
        raise ExportError(f"{where}: key {key!r}: {message}") from None


def read_object(path: Path) -> dict:
    """A JSON object from ``path``; ExportError names the file (missing, unreadable, not JSON, not an object)."""
    return _read_object(path, ExportError)


def _need(data: dict, key: str, kind: type, path: Path):
    if not isinstance(data.get(key), kind):
        raise ExportError(f"{path}: key {key!r}: missing or not a {kind.__name__}")
    return data[key]


def check_fitness(value: object, where: str | Path, key: str = "fitness") -> float | None:
    """None or a finite number (never NaN, which JSON cannot hold); ExportError naming the file and key."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ExportError(f"{where}: key {key!r}: must be a finite number or null, got {value!r}")
    return float(value)


def config_from_dict(data: dict, path: str | Path) -> ModelConfig:
    """Validate a ``best_genome.json`` / ``config.json`` object into a ModelConfig (space and genome included)."""
    unknown = sorted(set(data) - CONFIG_KEYS)
    if unknown:
        raise ExportError(f"{path}: key {unknown[0]!r}: unknown; expected {', '.join(sorted(CONFIG_KEYS))}")
    if data.get("format", FORMAT) != FORMAT:
        raise ExportError(f"{path}: key 'format': expected {FORMAT!r}, got {data['format']!r}")
    space = _need(data, "space", str, path)
    if space not in list_spaces():
        raise ExportError(f"{path}: key 'space': unknown search space {space!r}; choose one of: "
                          f"{', '.join(list_spaces())}")
    key = _need(data, "key", str, path)
    input_size = data.get("input_size")
    hwc = None
    if input_size is not None:
        if not isinstance(input_size, list) or len(input_size) != 3:
            raise ExportError(f"{path}: key 'input_size': expected [C, H, W] integers 1 to {MAX_SIDE}, "
                              f"got {input_size!r}")
        with _located(path, "input_size"):
            hwc = input_size_hwc((input_size[1], input_size[2], input_size[0]))
    num_classes = data.get("num_classes")
    if num_classes is not None:
        with _located(path, "num_classes"):
            num_classes = check_int("num_classes", num_classes, 1, MAX_CLASSES)
    genome = data.get("genome")
    if genome is not None and not isinstance(genome, dict):
        raise ExportError(f"{path}: key 'genome': expected an object, got {type(genome).__name__}")
    space_config = data.get("space_config")
    if space_config is None:
        space_config = {}
    if not isinstance(space_config, dict):
        raise ExportError(f"{path}: key 'space_config': expected an object, got {type(space_config).__name__}")
    network = data.get("network")
    if network is not None and not isinstance(network, dict):
        raise ExportError(f"{path}: key 'network': expected an object, got {type(network).__name__}")
    config = ModelConfig(space=space, key=key, space_config=space_config, genome=genome, num_classes=num_classes,
                         input_size=hwc, fitness=check_fitness(data.get("fitness"), path), network=network,
                         source=str(path))
    space_and_genome(config)
    return config


@lru_cache(maxsize=None)
def _config_keys(space: str) -> frozenset[str]:
    """The constructor arguments a space records in its config (what ``space_config`` may hold)."""
    default = create_space(space)
    return frozenset(default.config()) if isinstance(default, HasConfig) else frozenset()


def space_and_genome(config: ModelConfig, num_classes: int | None = None) -> tuple[SearchSpace, Genome]:
    """The space and genome of a config (``num_classes`` overrides the space's); ExportError names the file
    and key of whatever does not fit: an unknown or refused space_config field, a genome not matching ``key``."""
    where = config.source or "config"
    space_config = dict(config.space_config)
    unknown = sorted(set(space_config) - _config_keys(config.space))
    if unknown:
        raise ExportError(f"{where}: key 'space_config': unknown field {unknown[0]!r} for space {config.space!r}; "
                          f"allowed: {', '.join(sorted(_config_keys(config.space))) or 'none'}")
    recorded = space_config.get("num_classes", config.num_classes)
    if config.num_classes is not None and recorded != config.num_classes:
        raise ExportError(f"{where}: key 'num_classes': {config.num_classes} differs from space_config's "
                          f"num_classes {recorded!r}")
    if num_classes is not None and "num_classes" in space_config:
        space_config["num_classes"] = num_classes
    with _located(where, "space_config"):
        space = create_space(config.space, **space_config)
    if config.genome is not None:
        if not isinstance(space, SerializesGenomes):
            raise ExportError(f"{where}: key 'genome': space {config.space!r} has no genome beside its key; "
                              f"remove 'genome'")
        with _located(where, "genome"):
            genome = space.genome_from_json(config.genome)
        if space.key(genome) != config.key:
            raise ExportError(f"{where}: key 'genome': rebuilds as {space.key(genome)!r}, but 'key' is {config.key!r}")
    elif isinstance(space, ParsesKeys):
        with _located(where, "key"):
            genome = space.parse(config.key)
        if space.key(genome) != config.key:
            raise ExportError(f"{where}: key 'key': {config.key!r} is not in canonical form; the space writes it "
                              f"{space.key(genome)!r}")
    else:
        raise ExportError(f"{where}: key 'space': {config.space!r} cannot rebuild a genome (no genome_from_json "
                          f"or parse)")
    return space, genome


def best_genome_record(space: SearchSpace, genome: Genome, fitness: float | None = None,
                       num_classes: int | None = None,
                       input_size: tuple[int, int, int] | None = None) -> ModelConfig:
    """The ``best_genome.json`` content for a space's genome (``input_size`` is (H, W, C)); a fitness that is
    not a finite number is recorded as null."""
    config = space.config() if isinstance(space, HasConfig) else {}
    if fitness is not None and not (isinstance(fitness, numbers.Real) and math.isfinite(fitness)):
        fitness = None
    return ModelConfig(space=space.name, key=space.key(genome), space_config=config,
                       genome=space.genome_to_json(genome) if isinstance(space, SerializesGenomes) else None,
                       num_classes=num_classes or space.num_classes,
                       input_size=tuple(input_size) if input_size else None,
                       fitness=float(fitness) if fitness is not None else None)


def input_chw(config: ModelConfig, space: SearchSpace) -> tuple[int, int, int]:
    """The (C, H, W) input of the config's network: its recorded input size, else the space's."""
    h, w, c = config.input_size or input_size_hwc(getattr(space, "input_size", (32, 32, 3)))
    return c, h, w


def standalone_network(config: ModelConfig, space: SearchSpace, module: nn.Module,
                       search: dict | None = None) -> SearchedNetwork:
    """``module`` as an :class:`arch_gpt.standalone.SearchedNetwork` with its weights, checked to compute the same;
    its config is the record's JSON (network included) plus ``search`` (how it was found). ExportError names the
    config's file when the module cannot be described."""
    extra = {**replace(config, network=None).to_dict(), **({"search": search} if search is not None else {})}
    try:
        return standalone_copy(module, input_chw(config, space), extra)
    except NetworkExportError as err:
        raise ExportError(f"{config.source or 'config'}: space {config.space!r}: {err}") from None


def write_best_genome(run_dir: str | Path, space: SearchSpace, genome: Genome, **kwargs) -> Path:
    """Write ``RUN_DIR/best_genome.json`` (what the search runner calls; kwargs as in best_genome_record), with the
    ``network`` that :class:`arch_gpt.standalone.SearchedNetwork` rebuilds when the space's module traces (the
    global RNG is left as it was)."""
    path = Path(run_dir) / GENOME_FILE
    record = best_genome_record(space, genome, **kwargs)
    try:
        with torch.random.fork_rng(devices=[]):
            module = space.build_module(genome, record.num_classes or space.num_classes)
            record = replace(record, network=standalone_network(record, space, module).config["network"])
    except (ExportError, NotImplementedError):  # a space whose network the standalone class cannot describe
        pass
    atomic_write_text(path, record.to_json())
    return path


def load_run_config(run_dir: str | Path) -> ModelConfig:
    """The best individual of a run folder: ``best_genome.json``, else ``result.json``'s space and best key
    (then the space's default config is used)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        what = "a file" if run_dir.exists() else "no such directory"
        raise ExportError(f"{run_dir}: not a run folder ({what})")
    path = run_dir / GENOME_FILE
    if path.exists():
        return config_from_dict(read_object(path), path)
    result_path = run_dir / RESULT_FILE
    if not result_path.exists():
        raise ExportError(f"{run_dir}: neither {GENOME_FILE} nor result.json; was it written by `arch-gpt search`?")
    result = read_object(result_path)
    best = _need(result, "best", dict, result_path)
    data = {"space": result.get("space"), "key": best.get("key"), "space_config": result.get("space_config"),
            "fitness": check_fitness(best.get("fitness"), result_path, "best.fitness")}
    return config_from_dict(data, result_path)


def rebuild(config: ModelConfig, num_classes: int | None = None) -> tuple[SearchSpace, Genome, nn.Module]:
    """``(space, genome, module)`` for a config; the genome's key must match the recorded one."""
    space, genome = space_and_genome(config, num_classes)
    module = space.build_module(genome, num_classes or config.num_classes or space.num_classes)
    return space, genome, module


