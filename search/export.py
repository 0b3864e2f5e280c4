"""The best architecture of a search as a runnable PyTorch module folder (behind ``arch-gpt export``).

A search run folder holds ``result.json`` and ``best_genome.json`` (space name, space config, key, genome,
dataset input size and classes; written by the runner). Export writes ``model.py`` (Python source that
rebuilds the module through arch_gpt from ``config.json``), ``config.json``, a copy of ``best.arch`` and,
when the run (or a later ``arch-gpt retrain``) saved trained weights, ``model.safetensors``.

Every file read is checked before anything is written, and errors name the file and key: unknown keys, a space
config the space refuses (types, limits, unknown fields), a ``genome`` that does not rebuild as ``key``, a
fitness that is not a finite number, weights that are not safetensors or belong to another architecture. The
destination may be an earlier export (its four files are replaced, a stale ``model.safetensors`` removed, any
other file kept) but not a folder whose ``config.json``/``model.py`` some other tool wrote, nor the run folder.
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

from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from torch import nn

from arch_gpt.errors import UserInputError
from arch_gpt.io import atomic_write_bytes, atomic_write_text, read_json
from arch_gpt.search.protocols import Genome, HasConfig, ParsesKeys, SearchSpace, SerializesGenomes
from arch_gpt.search.spaces import create_space, list_spaces
from arch_gpt.search.spaces.checks import MAX_CLASSES, MAX_SIDE, check_int, input_size_hwc

FORMAT = "arch-gpt-export/1"
GENOME_FILE = "best_genome.json"
WEIGHT_FILES = ("retrain/model.safetensors", "best.safetensors")  # first found wins: retrained, then search
EXPORT_FILES = ("config.json", "model.py", "best.arch", "model.safetensors")  # all that export writes (or removes)


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
    source: str | None = field(default=None, compare=False, repr=False)  # the file it was read from; not written

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("source")
        if self.input_size:
            h, w, c = self.input_size
            data["input_size"] = [c, h, w]
        return json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"


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
    try:
        data = read_json(path)
    except UserInputError as err:
        raise ExportError(str(err)) from None
    except OSError as err:
        raise ExportError(f"{path}: cannot read ({err.strerror or err})") from None
    if not isinstance(data, dict):
        raise ExportError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


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
    config = ModelConfig(space=space, key=key, space_config=space_config, genome=genome, num_classes=num_classes,
                         input_size=hwc, fitness=check_fitness(data.get("fitness"), path), source=str(path))
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


def write_best_genome(run_dir: str | Path, space: SearchSpace, genome: Genome, **kwargs) -> Path:
    """Write ``RUN_DIR/best_genome.json`` (what the search runner calls; kwargs as in best_genome_record)."""
    path = Path(run_dir) / GENOME_FILE
    atomic_write_text(path, best_genome_record(space, genome, **kwargs).to_json())
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
    result_path = run_dir / "result.json"
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


def build_from_config(path: str | Path) -> nn.Module:
    """The module described by an exported ``config.json`` (what the generated ``model.py`` calls)."""
    path = Path(path)
    return rebuild(config_from_dict(read_object(path), path))[2]


def load_weights(path: Path, module: nn.Module, data: bytes | None = None) -> bytes:
    """Load the safetensors file ``path`` (or its bytes ``data``) into ``module``; returns the bytes. ExportError
    names the file when it is unreadable, not safetensors (empty, truncated, pickled) or another architecture's."""
    try:
        data = path.read_bytes() if data is None else data
    except OSError as err:
        raise ExportError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        state = load_safetensors(data)
    except SafetensorError as err:
        raise ExportError(f"{path}: not a valid safetensors file ({err}); empty, truncated or another format?") \
            from None
    expected = module.state_dict()
    problems = [f"missing {k!r}" for k in expected if k not in state][:2]
    problems += [f"unexpected {k!r}" for k in state if k not in expected][:2]
    problems += [f"{k!r} has shape {list(state[k].shape)}, expected {list(v.shape)}" for k, v in expected.items()
                 if k in state and state[k].shape != v.shape][:2]
    if problems:
        raise ExportError(f"{path}: weights do not fit the architecture ({'; '.join(problems)})")
    module.load_state_dict(state)
    return data


MODEL_SOURCE = '''"""Best architecture of an arch-gpt search: space {space!r}, key {key!r}.

``build_model()`` rebuilds the PyTorch module from config.json through arch_gpt; ``load_model()`` also
loads model.safetensors when it is present. Run ``python model.py`` to print the module.
"""
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build_model():
    from arch_gpt.search.export import build_from_config

    return build_from_config(HERE / "config.json")


def load_model():
    model = build_model()
    weights = HERE / "model.safetensors"
    if weights.exists():
        from arch_gpt.search.export import load_weights

        load_weights(weights, model)  # a clear error naming the file if it is not this model's weights
    return model


if __name__ == "__main__":
    print(load_model())
'''


def find_weights(run_dir: Path) -> Path | None:
    """Trained weights of the best individual: the retrained ones, else those kept by the search."""
    for name in WEIGHT_FILES:
        if (run_dir / name).is_file():
            return run_dir / name
    return None


def check_out_dir(out: Path, param: str = "out_dir") -> None:
    """Refuse an output folder that is a file or lies under a file (before anything is written)."""
    if out.exists() and not out.is_dir():
        raise UserInputError(f"{param}: {out} is a file, not a folder")
    for parent in out.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise UserInputError(f"{param}: {out} lies under {parent}, which is a file")
            return


def make_out_dir(out: Path, param: str = "out_dir") -> None:
    """Create the output folder (and its parents); UserInputError naming ``param`` if that is not possible."""
    check_out_dir(out, param)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserInputError(f"{param}: cannot create {out} ({err.strerror or err})") from None


def _is_export(config_path: Path) -> bool:
    try:
        return config_path.is_file() and read_json(config_path).get("format") == FORMAT
    except (UserInputError, OSError, AttributeError):
        return False


def _check_export_dir(out: Path, run_dir: Path, weights: Path | None) -> None:
    """The destination is a new folder or an earlier export, never the run folder or where the weights are."""
    check_out_dir(out)
    target, run = out.resolve(), run_dir.resolve()
    if target == run or target in run.parents:
        raise ExportError(f"out_dir: {out} is the run folder or contains it; export into a folder of its own")
    if weights is not None and target == weights.parent.resolve():
        raise ExportError(f"out_dir: {out} holds the weights being exported ({weights.name}); choose another folder")
    existing = [name for name in EXPORT_FILES if (out / name).exists() or (out / name).is_symlink()]
    for name in existing:
        if (out / name).is_dir():
            raise ExportError(f"out_dir: {out / name} is a folder; export writes a file there")
    if existing and not _is_export(out / "config.json"):
        raise ExportError(f"out_dir: {out} holds {', '.join(existing)} not written by arch-gpt export (no config.json "
                          f"of format {FORMAT}); choose a new or empty folder")


def _retrained(config: ModelConfig, metrics_path: Path) -> ModelConfig:
    """The config for weights retrained on another dataset (``metrics.json`` records its classes)."""
    if not metrics_path.is_file():
        return config
    metrics = read_object(metrics_path)
    classes = metrics.get("num_classes")
    if classes is None:
        return config
    with _located(metrics_path, "num_classes"):
        classes = check_int("num_classes", classes, 1, MAX_CLASSES)
    if classes == config.num_classes:
        return config
    space_config = {**config.space_config, **({"num_classes": classes} if "num_classes" in config.space_config
                                              else {})}
    return replace(config, num_classes=classes, space_config=space_config)


def export_run(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write model.py, config.json, best.arch and (if trained) model.safetensors; returns the folder.

    Everything is checked before the first write. In an earlier export, a file this export does not write
    (``model.safetensors`` of a run without weights, ``best.arch``) is removed; other files are kept."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    weights = find_weights(run_dir)
    if weights is not None and weights.parent.name == "retrain":
        config = _retrained(config, weights.parent / "metrics.json")
    _, _, module = rebuild(config)
    data = load_weights(weights, module) if weights is not None else None
    arch_path = run_dir / "best.arch"
    try:
        arch = arch_path.read_bytes() if arch_path.is_file() else None
    except OSError as err:
        raise ExportError(f"{arch_path}: cannot read ({err.strerror or err})") from None
    out = Path(out_dir) if out_dir is not None else run_dir / "export"
    _check_export_dir(out, run_dir, weights)
    make_out_dir(out)
    # Stale files first, weights last: an interrupted export leaves config.json with its weights or none.
    for name in ("model.safetensors",) + (("best.arch",) if arch is None else ()):
        if (out / name).exists() or (out / name).is_symlink():
            (out / name).unlink()
    atomic_write_text(out / "config.json", replace(config, source=None).to_json())
    atomic_write_text(out / "model.py", MODEL_SOURCE.format(space=config.space, key=config.key))
    if arch is not None:
        atomic_write_bytes(out / "best.arch", arch)
    if data is not None:
        atomic_write_bytes(out / "model.safetensors", data)
    return out
