"""The top-level API: lazy exports (``import arch_gpt`` imports neither torch nor transformers), ``run_search`` (one
call that mirrors ``arch-gpt search``), ``SearchResult.load`` and ``SearchResult.to_module``, on a real tiny search
(digits, a tiny block space, 2 candidates of 2 training steps)."""
from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import arch_gpt
from arch_gpt.errors import UserInputError
from arch_gpt.search.api import search_command, search_config
from arch_gpt.search.records import SearchResult
from arch_gpt.search.run_config import load_run_config, rebuild
from arch_gpt.search.spaces.blocks import BlockSpace

TINY = dict(strategy="ga", dataset="digits", seed=0, population=2, generations=1, epochs=1, batch_size=32,
            max_steps_per_epoch=2, widths=(8, 16), min_blocks=3, max_blocks=4, progress=False)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    run = tmp_path_factory.mktemp("api") / "run"
    return arch_gpt.run_search(output_dir=run, **TINY), run


def test_import_arch_gpt_stays_light():
    code = ("import json, sys, arch_gpt; print(json.dumps(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('torch', 'transformers', 'torchvision', 'safetensors'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_top_level_names_are_the_library_objects():
    from arch_gpt import (  # noqa: F401
        ArchGPT, Architecture, GPTReconstructor, SearchConfig, SearchedNetwork, SearchResult as Result, build_search,
        run_search,
    )
    from arch_gpt.modeling import ArchGPT as modeling_gpt
    from arch_gpt.search import spec
    from arch_gpt.search.reconstruction import GPTReconstructor as reconstructor
    from arch_gpt.standalone import SearchedNetwork as network

    assert (ArchGPT, GPTReconstructor, SearchConfig, build_search, Result, SearchedNetwork) == (
        modeling_gpt, reconstructor, spec.SearchConfig, spec.build_search, SearchResult, network)
    assert set(arch_gpt.__all__) <= set(dir(arch_gpt))
    import arch_gpt.search.spec as spec_again  # the subpackage keeps its name: run_search is not called search
    assert arch_gpt.search.spec is spec_again and callable(arch_gpt.run_search)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        arch_gpt.nope  # noqa: B018


def test_run_search_returns_the_result_and_records_its_config(searched):
    result, run = searched
    assert isinstance(result, SearchResult) and result.output_dir == run
    assert result.strategy == "ga" and result.space == "blocks" and result.evaluations == 2
    recorded = json.loads((run / "search_config.json").read_text())
    assert recorded["config"]["population"] == 2 and recorded["config"]["widths"] == [8, 16]
    assert "/" not in recorded["command"].split("--output")[0]


def test_the_recorded_command_is_the_same_search(searched):
    """The command in search_config.json parses, through the real CLI parser, into the same SearchConfig."""
    from arch_gpt.cli import build_parser
    from arch_gpt.cli.search import config_from_args

    _, run = searched
    command = json.loads((run / "search_config.json").read_text())["command"]
    args = build_parser().parse_args(shlex.split(command)[1:])
    options = {k: v for k, v in TINY.items() if k != "progress"}
    assert config_from_args(args) == search_config(**options)
    tricky = search_config(benchmark="/data/tables/nb201_cifar10.json", space="nasbench201", strategy="re",
                           workers=2, asynchronous=True, resident_data=False, accelerate=False)
    line = search_command(tricky)
    assert "/data" not in line and "--async" in line and "--no-resident-data" in line
    parsed = config_from_args(build_parser().parse_args(shlex.split(line)[1:]))
    assert dataclasses.replace(parsed, benchmark=tricky.benchmark) == tricky


def test_run_search_names_a_wrong_option():
    with pytest.raises(UserInputError, match="populaton: not an option.*'population'"):
        arch_gpt.run_search(populaton=3)
    with pytest.raises(UserInputError, match="budget"):
        arch_gpt.run_search(budget=0, strategy="ga")


def test_load_gives_back_the_result(searched):
    result, run = searched
    loaded = SearchResult.load(run)
    assert loaded.to_json() == result.to_json()
    assert loaded.history == result.history and loaded.best.record.fitness == result.best.record.fitness
    assert loaded.best.candidate.genome == json.loads((run / "best_genome.json").read_text())["genome"]
    space = BlockSpace(**{k: v for k, v in json.loads((run / "best_genome.json").read_text())["space_config"].items()})
    typed = SearchResult.load(run, space=space)
    assert typed.best.candidate == result.best.candidate


def test_to_module_of_a_loaded_result_computes_what_the_search_trained(searched):
    _, run = searched
    _, _, module = rebuild(load_run_config(run))
    module.load_state_dict(load_file(str(run / "best.safetensors")))
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(SearchResult.load(run).to_module()(x), module.eval()(x))


def _broken(run, tmp_path, change) -> str:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    change(copy)
    with pytest.raises(UserInputError) as err:
        SearchResult.load(copy).to_module()
    return str(err.value)


def _edit_json(name, **changes):
    def change(run):
        data = json.loads((run / name).read_text())
        for key, value in changes.items():
            data.pop(key) if value is None else data.__setitem__(key, value)
        (run / name).write_text(json.dumps(data))
    return change


@pytest.mark.parametrize("change, words", [
    (lambda r: (r / "result.json").write_text("{"), ["result.json", "JSON"]),
    (lambda r: (r / "history.jsonl").unlink(), ["history.jsonl", "not found"]),
    (lambda r: (r / "history.jsonl").write_text('{"v": 1, "key": "x"}\n'), ["history.jsonl: line 1", "missing"]),
    (_edit_json("result.json", seed="zero"), ["result.json", "'seed'", "int"]),
    (_edit_json("result.json", timings=None), ["result.json", "'timings'"]),
    (_edit_json("best_genome.json", key="Conv-8-s1-x3"), ["best_genome.json", "'key'"]),
    (_edit_json("best_genome.json", network=None), ["best_genome.json", "'network'", "arch-gpt export"]),
    (_edit_json("best_genome.json", network={"format": "x"}), ["best_genome.json", "'network'", "format"]),
    (lambda r: (r / "best.safetensors").write_bytes(b"\x00" * 8), ["best.safetensors", "safetensors"]),
    (lambda r: (r / "best.safetensors").unlink(), ["best.safetensors", "not found"]),
])
def test_load_and_to_module_name_what_is_wrong(searched, tmp_path, change, words):
    _, run = searched
    message = _broken(run, tmp_path, change)
    for word in words:
        assert word in message, (word, message)


def test_to_module_needs_the_run_folder_and_its_weights(searched, tmp_path):
    result, run = searched
    with pytest.raises(UserInputError, match="output_dir"):
        dataclasses.replace(result, output_dir=None).to_module()
    with pytest.raises(UserInputError, match="retrain/model.safetensors.*arch-gpt retrain"):
        result.to_module(retrained=True)
    with pytest.raises(UserInputError, match="not a run folder"):
        SearchResult.load(tmp_path / "nowhere")
