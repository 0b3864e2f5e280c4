"""One call that mirrors ``arch-gpt search``: :func:`run_search` (offered as ``arch_gpt.run_search``).

    import arch_gpt
    result = arch_gpt.run_search(strategy="ga+gpt", space="blocks", dataset="digits", budget=12,
                                 output_dir="runs/demo", epochs=2)
    network = result.to_module()               # the trained best network (arch_gpt.standalone.SearchedNetwork)

Every keyword is a :class:`~arch_gpt.search.spec.SearchConfig` field (or an
:class:`~arch_gpt.search.execution.ExecutionConfig` one: ``workers``, ``threads``, ...), with the CLI's defaults;
the search is built by the same :func:`~arch_gpt.search.spec.build_search` as the CLI. The run folder also gets
``search_config.json``: the full config and the equivalent ``arch-gpt search`` command (what model cards show).
"""
from __future__ import annotations

import dataclasses
import difflib
import shlex
from pathlib import Path
from typing import Any

from arch_gpt.errors import UserInputError
from arch_gpt.io import write_json
from arch_gpt.search.execution import ExecutionConfig
from arch_gpt.search.records import SearchResult
from arch_gpt.search.run_info import SEARCH_CONFIG_FILE
from arch_gpt.search.spec import SearchConfig, build_search

FLAGS = {"max_steps_per_epoch": "--max-steps", "asynchronous": "--async", "output_dir": "--output"}
CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(SearchConfig) if f.name != "execution")
EXECUTION_FIELDS = tuple(f.name for f in dataclasses.fields(ExecutionConfig))


def search_config(**options: Any) -> SearchConfig:
    """A SearchConfig from keywords (ExecutionConfig's included); UserInputError naming an unknown one."""
    known = set(CONFIG_FIELDS) | set(EXECUTION_FIELDS) | {"execution"}
    unknown = sorted(set(options) - known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserInputError(f"{unknown[0]}: not an option of a search{hint}; the options are SearchConfig's and "
                             f"ExecutionConfig's fields")
    execution = {k: options.pop(k) for k in EXECUTION_FIELDS if k in options}
    if execution:
        if "execution" in options:
            raise UserInputError(f"execution, {next(iter(execution))}: give the ExecutionConfig or its fields, "
                                 f"not both")
        options["execution"] = ExecutionConfig(**execution)
    return SearchConfig(**options)


def _flag(name: str, value: Any, default: Any) -> list[str]:
    flag = FLAGS.get(name, "--" + name.replace("_", "-"))
    if isinstance(value, bool) or value is None:
        if name == "accelerate":
            return [] if value else ["--no-accelerate"]
        if default is None and value is not None:  # a three-way switch such as --resident-data/--no-...
            return [flag if value else "--no-" + flag[2:]]
        return [flag] if value else []
    if isinstance(value, (tuple, list)):
        return [flag, ",".join(map(str, value))]
    return [flag, str(value)]


def search_command(config: SearchConfig, output: str = "RUN_DIR") -> str:
    """The ``arch-gpt search`` command that builds ``config`` (options left at their defaults are not shown;
    a benchmark by its file name, a data folder as DATA_DIR: no machine paths)."""
    args = ["arch-gpt", "search"]
    default, exec_default = SearchConfig(), ExecutionConfig()
    for name in CONFIG_FIELDS:
        value = getattr(config, name)
        shown = name in ("strategy", "space", "seed") or (name == "dataset" and config.benchmark is None)
        if value != getattr(default, name) or shown:
            if name == "benchmark":
                value = Path(value).name
            elif name == "data_dir":
                value = "DATA_DIR"
            args += _flag(name, value, getattr(default, name))
    for name in EXECUTION_FIELDS:
        value = getattr(config.execution, name)
        if value != getattr(exec_default, name):
            args += _flag(name, value, getattr(exec_default, name))
    return shlex.join(args + ["--output", output])


def write_search_config(run_dir: str | Path, config: SearchConfig) -> Path:
    """``RUN_DIR/search_config.json``: the config (JSON values) and its ``arch-gpt search`` command."""
    data = dataclasses.asdict(config)
    data.update({k: list(v) for k, v in data.items() if isinstance(v, tuple)})
    path = Path(run_dir) / SEARCH_CONFIG_FILE
    write_json(path, {"config": data, "command": search_command(config)})
    return path


def run_search(strategy: str = "ga+gpt", space: str = "blocks", dataset: str = "digits",
               benchmark: str | None = None, budget: int | None = None, output_dir: str | Path | None = None, *,
               resume: bool = False, progress: bool = True, **options: Any) -> SearchResult:
    """Run a search as ``arch-gpt search`` would and return its :class:`~arch_gpt.search.records.SearchResult`.

    ``options`` are the other SearchConfig / ExecutionConfig fields (``seed``, ``population``, ``epochs``,
    ``model``, ``workers``, ...); ``None`` values take the per-dataset defaults. With ``output_dir`` the run
    folder keeps everything the CLI writes (checkpoints, weights: ``result.to_module()`` needs them) plus
    ``search_config.json``; ``resume`` continues a killed run there. Errors name the option."""
    config = search_config(strategy=strategy, space=space, dataset=dataset, benchmark=benchmark, budget=budget,
                           **options)
    result = build_search(config).run(output_dir, resume=resume, progress=progress)
    if output_dir is not None:
        write_search_config(output_dir, config)
    return result
