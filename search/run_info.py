"""The files of a search run folder and what they say about how the best network was found (for model cards).

A run folder holds ``result.json``, ``history.jsonl``, ``best_genome.json``, ``best.arch``, the search's weights
of the best individual ``best.safetensors`` (when the evaluator trained it), ``search_config.json`` (when the
run was started through :func:`arch_gpt.run_search`: the full :class:`~arch_gpt.search.spec.SearchConfig` and the
equivalent ``arch-gpt search`` command) and, after ``arch-gpt retrain``, ``retrain/``. This module reads them
with errors that name the file and key, and imports nothing of the search (``records`` uses it).
"""
from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

from arch_gpt.errors import UserInputError
from arch_gpt.io import read_json

GENOME_FILE, RESULT_FILE, HISTORY_FILE = "best_genome.json", "result.json", "history.jsonl"
SEARCH_CONFIG_FILE, SEARCH_WEIGHTS = "search_config.json", "best.safetensors"
RETRAIN_WEIGHTS, RETRAIN_METRICS = "retrain/model.safetensors", "retrain/metrics.json"
WEIGHT_FILES = (RETRAIN_WEIGHTS, SEARCH_WEIGHTS)  # what export uses, first found wins: retrained, then search


def read_object(path: Path, error: type[UserInputError] = UserInputError) -> dict:
    """A JSON object from ``path``; ``error`` names the file (missing, unreadable, not JSON, not an object)."""
    try:
        data = read_json(path)
    except UserInputError as err:
        raise error(str(err)) from None
    except OSError as err:
        raise error(f"{path}: cannot read ({err.strerror or err})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def field(data: dict, key: str, kind: type | tuple[type, ...], path: Path | str, required: bool = False,
          error: type[UserInputError] = UserInputError) -> Any:
    """``data[key]`` if it has type ``kind`` (bools are not numbers), None when absent and not ``required``."""
    value = data.get(key)
    if value is None and not required:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = " or ".join("number" if k is numbers.Real else k.__name__ for k in kinds)
        raise error(f"{path}: key {key!r}: expected {names}, got {value!r}")
    return value


def find_weights(run_dir: Path) -> Path | None:
    """Trained weights of the best individual: the retrained ones, else those kept by the search."""
    for name in WEIGHT_FILES:
        if (run_dir / name).is_file():
            return run_dir / name
    return None


def search_info(run_dir: Path, weights: Path | None, error: type[UserInputError] = UserInputError) -> dict:
    """How the best network was found, for its config.json and model card: strategy, seed, evaluations, budget,
    generations, test accuracy and parameters (``result.json``), dataset or benchmark and the command
    (``search_config.json``), which weights (``search``/``retrained``, with the retrain's metrics). Keys whose
    file is absent are left out; no machine paths (the benchmark by its file name, the folder as RUN_DIR)."""
    info: dict[str, Any] = {}
    path = run_dir / RESULT_FILE
    result = read_object(path, error) if path.is_file() else {}
    for key, kind in (("strategy", str), ("space", str), ("seed", int), ("evaluations", int),
                      ("unique_evaluations", int), ("generations", int)):
        info[key] = field(result, key, kind, path, error=error)
    best = field(result, "best", dict, path, error=error) or {}
    info["test_acc"] = field(best, "test_acc", numbers.Real, f"{path}: key 'best'", error=error)
    info["params"] = field(best, "params", int, f"{path}: key 'best'", error=error)
    path = run_dir / SEARCH_CONFIG_FILE
    if path.is_file():
        recorded = read_object(path, error)
        config = field(recorded, "config", dict, path, required=True, error=error)
        benchmark = field(config, "benchmark", str, f"{path}: key 'config'", error=error)
        info["benchmark"] = Path(benchmark).name if benchmark else None
        info["dataset"] = None if benchmark else field(config, "dataset", str, f"{path}: key 'config'", error=error)
        info["budget"] = field(config, "budget", int, f"{path}: key 'config'", error=error)
        info["command"] = field(recorded, "command", str, path, error=error)
    elif info["strategy"] is not None:
        info["command"] = (f"arch-gpt search --space {info.get('space') or result.get('space')} --strategy "
                           f"{info['strategy']} --seed {info['seed']} --budget {info['evaluations']} --output RUN_DIR"
                           f"  # other options were not recorded")
    info.pop("space")
    if weights is not None:
        retrained = weights.parent.name == "retrain"
        info["weights"] = "retrained" if retrained else "search"
        path = weights.parent / "metrics.json"
        if retrained and path.is_file():
            metrics = read_object(path, error)
            schedule = field(metrics, "config", dict, path, error=error) or {}
            info["retrain"] = {k: v for k, v in {
                "dataset": field(metrics, "dataset", str, path, error=error),
                "epochs": field(schedule, "epochs", int, f"{path}: key 'config'", error=error),
                "val_acc": field(metrics, "val_acc", numbers.Real, path, error=error),
                "test_acc": field(metrics, "test_acc", numbers.Real, path, error=error)}.items() if v is not None}
    return {k: v for k, v in info.items() if v is not None}
