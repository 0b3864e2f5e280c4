"""The best architecture of a search as a runnable PyTorch module folder (behind ``arch-gpt export``).

A search run folder holds ``result.json`` and ``best_genome.json`` (space name, space config, key, genome,
dataset input size and classes; written by the runner). Export writes ``model.py`` (Python source that
rebuilds the module through arch_gpt from ``config.json``), ``config.json``, a copy of ``best.arch`` and,
when the run (or a later ``arch-gpt retrain``) saved trained weights, ``model.safetensors``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from safetensors.torch import load_file
from torch import nn

from arch_gpt.errors import UserInputError
from arch_gpt.io import atomic_write_bytes, atomic_write_text
from arch_gpt.search.protocols import Genome, HasConfig, ParsesKeys, SearchSpace, SerializesGenomes
from arch_gpt.search.spaces import create_space

FORMAT = "arch-gpt-export/1"
GENOME_FILE = "best_genome.json"
WEIGHT_FILES = ("retrain/model.safetensors", "best.safetensors")  # first found wins: retrained, then search


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

    def to_json(self) -> str:
        data = asdict(self)
        if self.input_size:
            h, w, c = self.input_size
            data["input_size"] = [c, h, w]
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ExportError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise ExportError(f"{path}: not JSON: line {err.lineno}: {err.msg}") from None
    if not isinstance(data, dict):
        raise ExportError(f"{path}: expected a JSON object")
    return data


def _need(data: dict, key: str, kind: type, path: Path):
    if not isinstance(data.get(key), kind):
        raise ExportError(f"{path}: key {key!r}: missing or not a {kind.__name__}")
    return data[key]


def config_from_dict(data: dict, path: Path) -> ModelConfig:
    """Validate a ``best_genome.json`` / ``config.json`` object into a ModelConfig."""
    input_size = data.get("input_size")
    if input_size is not None and (not isinstance(input_size, list) or len(input_size) != 3
                                   or not all(isinstance(v, int) and v > 0 for v in input_size)):
        raise ExportError(f"{path}: key 'input_size': expected [C, H, W] positive integers, got {input_size!r}")
    num_classes = data.get("num_classes")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes <= 0):
        raise ExportError(f"{path}: key 'num_classes': expected a positive integer, got {num_classes!r}")
    genome = data.get("genome")
    if genome is not None and not isinstance(genome, dict):
        raise ExportError(f"{path}: key 'genome': expected an object, got {type(genome).__name__}")
    space_config = data.get("space_config") or {}
    if not isinstance(space_config, dict):
        raise ExportError(f"{path}: key 'space_config': expected an object, got {type(space_config).__name__}")
    hwc = (input_size[1], input_size[2], input_size[0]) if input_size else None
    return ModelConfig(space=_need(data, "space", str, path), key=_need(data, "key", str, path),
                       space_config=space_config, genome=genome, num_classes=num_classes, input_size=hwc,
                       fitness=data.get("fitness"))


def best_genome_record(space: SearchSpace, genome: Genome, fitness: float | None = None,
                       num_classes: int | None = None,
                       input_size: tuple[int, int, int] | None = None) -> ModelConfig:
    """The ``best_genome.json`` content for a space's genome (``input_size`` is (H, W, C))."""
    config = space.config() if isinstance(space, HasConfig) else {}
    return ModelConfig(space=space.name, key=space.key(genome), space_config=config,
                       genome=space.genome_to_json(genome) if isinstance(space, SerializesGenomes) else None,
                       num_classes=num_classes or space.num_classes,
                       input_size=tuple(input_size) if input_size else None, fitness=fitness)


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
        raise ExportError(f"{run_dir}: not a run folder (no such directory)")
    path = run_dir / GENOME_FILE
    if path.exists():
        return config_from_dict(_read_json(path), path)
    result_path = run_dir / "result.json"
    if not result_path.exists():
        raise ExportError(f"{run_dir}: neither {GENOME_FILE} nor result.json; was it written by `arch-gpt search`?")
    result = _read_json(result_path)
    best = _need(result, "best", dict, result_path)
    return ModelConfig(space=_need(result, "space", str, result_path), key=_need(best, "key", str, result_path),
                       space_config=result.get("space_config") or {}, fitness=best.get("fitness"))


def rebuild(config: ModelConfig, num_classes: int | None = None) -> tuple[SearchSpace, Genome, nn.Module]:
    """``(space, genome, module)`` for a config; the genome's key must match the recorded one."""
    space_config = dict(config.space_config)
    if num_classes is not None and "num_classes" in space_config:
        space_config["num_classes"] = num_classes
    try:
        space = create_space(config.space, **space_config)
    except TypeError as err:
        raise ExportError(f"space_config: does not fit space {config.space!r}: {err}") from None
    if config.genome is not None and isinstance(space, SerializesGenomes):
        genome = space.genome_from_json(config.genome)
    elif isinstance(space, ParsesKeys):
        genome = space.parse(config.key)
    else:
        raise ExportError(f"space {config.space!r}: cannot rebuild a genome (no genome_from_json or parse)")
    if space.key(genome) != config.key:
        raise ExportError(f"key: genome rebuilds as {space.key(genome)!r}, recorded {config.key!r}")
    module = space.build_module(genome, num_classes or config.num_classes or space.num_classes)
    return space, genome, module


def build_from_config(path: str | Path) -> nn.Module:
    """The module described by an exported ``config.json`` (what the generated ``model.py`` calls)."""
    path = Path(path)
    return rebuild(config_from_dict(_read_json(path), path))[2]


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
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(weights)))
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


def export_run(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write model.py, config.json, best.arch and (if trained) model.safetensors; returns the folder."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    weights = find_weights(run_dir)
    if weights is not None and weights.parent.name == "retrain" and (weights.parent / "metrics.json").is_file():
        classes = _read_json(weights.parent / "metrics.json").get("num_classes")  # retrained on another dataset?
        if isinstance(classes, int) and classes > 0 and classes != config.num_classes:
            space_config = {**config.space_config, **({"num_classes": classes}
                                                      if "num_classes" in config.space_config else {})}
            config = replace(config, num_classes=classes, space_config=space_config)
    _, _, module = rebuild(config)
    out = Path(out_dir) if out_dir is not None else run_dir / "export"
    out.mkdir(parents=True, exist_ok=True)
    if weights is not None:
        try:
            module.load_state_dict(load_file(str(weights)))
        except (RuntimeError, OSError) as err:
            raise ExportError(f"{weights}: weights do not fit the best architecture: {err}") from None
        atomic_write_bytes(out / "model.safetensors", weights.read_bytes())
    atomic_write_text(out / "config.json", config.to_json())
    atomic_write_text(out / "model.py", MODEL_SOURCE.format(space=config.space, key=config.key))
    if (run_dir / "best.arch").is_file():
        atomic_write_text(out / "best.arch", (run_dir / "best.arch").read_text())
    return out
