"""Search spaces from spec files: the bundled NAS-Bench-Macro spec equals the built-in space (keys, layers,
parameters, the table's params for all 6,561 codes), every op writes the layers its module runs, the operators and
GPT units work from the spec alone, and every strategy (+gpt included) runs on a spec space."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from arch_gpt.cli import main
from arch_gpt.costs import costs
from arch_gpt.modeling import TINY, ArchGPT
from arch_gpt.search.protocols import HasBlockClasses, HasConfig, ParsesKeys, SearchSpace
from arch_gpt.search.spaces import create_space, list_spaces
from arch_gpt.search.spaces.spec import SpecSpace, example_spec
from arch_gpt.search.spec import SearchConfig, all_labels, build_search
from arch_gpt.tokenizer import LayerTokenizer
from arch_gpt.tokenizer.tokenization import FITNESS_TOKENS
from arch_gpt.tokenizer.tokenization import layer_tokens
from zoo_checks import declared_layers, executed_layers

MACRO_SPEC = example_spec("nasbench-macro")
WIDTHS_SPEC = example_spec("widths")
MACRO_TABLE = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "nas-bench-macro_cifar10.json"
MACRO_CODES = ["".join(c) for c in itertools.product("012", repeat=8)]

ALL_OPS = {  # every op of the documented set, a width multiplier, a per-slot choice list, a branch in the stem
    "name": "all-ops",
    "input_size": [16, 16, 3],
    "stem": [{"op": "conv", "kernel": 3, "width": 8}, {"op": "max_pool", "kernel": 3, "stride": 1}],
    "stages": [
        {"width": 16, "stride": 2, "slots": 2},
        {"slots": [{"name": "keep", "choices": [{"code": "z", "op": "zero"}, {"code": "0", "op": "identity"},
                                                {"code": "c1", "op": "conv", "kernel": 1}]}]},
        {"width": 32, "stride": 2, "slots": [{"name": "last", "choices": [
            {"code": "b", "op": "basic"}, {"code": "g", "op": "conv", "groups": 4, "kernel": 5}]}]},
    ],
    "choices": [
        {"code": "c", "op": "conv", "kernel": 3},
        {"code": "s", "op": "sep_conv", "kernel": 5},
        {"code": "i", "op": "inverted_residual", "expansion": 2},
        {"code": "b", "op": "basic"},
        {"code": "n", "op": "bottleneck"},
        {"code": "0", "op": "identity"},
        {"code": "m", "op": "max_pool"},
        {"code": "a", "op": "avg_pool", "width_mult": 0.5},
    ],
    "head": [{"op": "sep_conv", "width": 24}],
}


def torch_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------- NAS-Bench-Macro as a spec

def test_macro_spec_equals_the_built_in_space_for_all_6561_codes():
    spec, builtin = create_space(MACRO_SPEC), create_space("nasbench-macro")
    table = json.loads(MACRO_TABLE.read_text()) if MACRO_TABLE.is_file() else None
    for code in MACRO_CODES:
        assert spec.key(spec.parse(code)) == builtin.key(code) == code
        mine, theirs = spec.to_architecture(code), builtin.to_architecture(code)
        assert mine.layers == theirs.layers, code  # same layers, sizes and block labels, hence same costs
        assert costs(mine) == costs(theirs)
        assert spec.units(code) == builtin.units(code)
        if table is not None:
            assert costs(mine).params == table[code]["params"] and costs(mine).macs == table[code]["flops"], code
    assert table is None or set(table) == set(MACRO_CODES)


@pytest.mark.skipif(not MACRO_TABLE.is_file(), reason="the NAS-Bench-Macro table is in ../shared/benchmarks only")
def test_macro_spec_keys_are_the_tables_keys():
    table = json.loads(MACRO_TABLE.read_text())
    spec = create_space(MACRO_SPEC)
    assert sorted(spec.parse(k) for k in table) == MACRO_CODES


def test_macro_spec_modules_have_the_built_in_parameter_counts():
    spec, builtin, rng = create_space(MACRO_SPEC), create_space("nasbench-macro"), np.random.default_rng(0)
    for code in ["00000000", "22222222", "02012100"] + [spec.sample(rng) for _ in range(5)]:
        module = spec.build_module(code)
        assert torch_params(module) == torch_params(builtin.build_module(code)) == \
            costs(spec.to_architecture(code)).params
        assert len(module.units) == 8
    x = torch.randn(2, 3, 32, 32)
    assert executed_layers(module, x) == declared_layers(spec.to_architecture(code))


# ----------------------------------------------------------------------------- every op

def test_every_op_writes_the_layers_its_module_runs():
    space = create_space(ALL_OPS)
    assert space.block_classes == ("AvgPool", "BasicBlock", "Bottleneck", "Conv2dNormActivation",
                                   "DepthwiseSeparableConv", "Identity", "InvertedResidual", "MaxPool", "Zero")
    x = torch.randn(2, 3, 16, 16)
    for codes in itertools.product("csibn0ma", "csibn0ma", ("z", "0", "c1"), "bg"):
        genome = "".join(codes)
        arch = space.to_architecture(genome)
        arch.check()
        module = space.build_module(genome)
        assert module(x).shape == (2, 10)
        assert executed_layers(module, x) == declared_layers(arch), genome
        assert costs(arch).params == torch_params(module), genome
        assert len(module.units) == 4
        tokens = layer_tokens(arch)
        for unit, code, size in zip(space.units(genome), space.split(genome), space.inputs(genome)):
            assert tokens[unit.layer_start] == space.choice_tokens(unit.index, size)[code]
            assert tokens[unit.layer_start] in unit.allowed_tokens
    for genome in ("ibzb", "nac1g"):  # the language rebuilds the same network
        assert torch_params(space.to_architecture(genome).to_module()) == torch_params(space.build_module(genome))


def test_width_multipliers_resolve_against_the_base_width():
    space = create_space(WIDTHS_SPEC)
    assert space.length == 5 and [s.codes for s in space.slots] == [("a", "b", "c", "d")] * 5
    widths = [[c.op.width for c in s.choices] for s in space.slots]
    assert widths == [[8, 12, 16, 24]] * 2 + [[16, 24, 32, 48]] * 2 + [[32, 48, 64, 96]]
    assert [op.stride for op in space.ops("abcda")] == [1, 1, 2, 1, 2]
    arch = space.to_architecture("abcda")
    assert [l.out_size[2] for l in arch.layers if l.kind == "conv"] == [16, 8, 12, 32, 48, 32]


# ----------------------------------------------------------------------------- the space's protocol

def test_spec_space_is_registered_and_a_file_or_dict_goes_where_a_name_does():
    assert "spec" in list_spaces()
    for space in (create_space(WIDTHS_SPEC), create_space(str(WIDTHS_SPEC)), create_space("spec", spec=WIDTHS_SPEC),
                  create_space(json.loads(json.dumps(ALL_OPS)))):
        assert isinstance(space, SpecSpace) and isinstance(space, SearchSpace)
        assert isinstance(space, (ParsesKeys, HasConfig, HasBlockClasses))
    assert create_space("spec").spec.title == "nasbench-macro"  # the bundled default


def test_json_file_and_config_rebuild_the_same_space(tmp_path):
    path = tmp_path / "all.json"
    path.write_text(json.dumps(ALL_OPS))
    space = create_space(path, num_classes=7, input_size=(32, 32, 3))
    again = create_space("spec", **json.loads(json.dumps(space.config())))
    assert space.config()["num_classes"] == 7 and again.input_size == (32, 32, 3)
    assert again.to_architecture("csc1g").layers == space.to_architecture("csc1g").layers


def test_operators_stay_in_the_space():
    space, rng = create_space(ALL_OPS), np.random.default_rng(0)
    for _ in range(50):
        g = space.sample(rng)
        m = space.mutate(g, rng)
        assert sum(a != b for a, b in zip(space.split(g), space.split(m))) == 1
        a, b = space.crossover(g, space.sample(rng), rng)
        assert space.parse(a) == a and space.parse(b) == b
    assert space.split("ccc1g") == ("c", "c", "c1", "g")  # a multi-character code splits one way


def test_sampling_is_reproducible_and_uses_every_choice():
    space = create_space(WIDTHS_SPEC)
    draw = lambda seed: [space.sample(np.random.default_rng(seed)) for _ in range(3)]  # noqa: E731
    assert draw(1) == draw(1)
    rng = np.random.default_rng(0)
    seen = {space.sample(rng)[0] for _ in range(100)}
    assert seen == set("abcd")


def test_allowed_tokens_follow_the_widths_chosen_before():
    space = create_space(WIDTHS_SPEC)
    narrow, wide = space.units("aaaaa")[1], space.units("daaaa")[1]
    assert narrow.allowed_tokens != wide.allowed_tokens  # the channel ratio out/in is in the token
    assert len(narrow.allowed_tokens) == 4


def test_fill_unit_takes_the_predicted_token_and_the_block_label():
    spec = {"stages": [{"width": 16, "slots": 2}],
            "choices": [{"code": "c", "op": "conv"}, {"code": "b", "op": "basic"}, {"code": "0", "op": "identity"}],
            "stem": [{"op": "conv", "width": 16}]}
    space, rng = create_space(spec), np.random.default_rng(0)
    unit = space.units("00")[1]
    tokens = space.choice_tokens(1, space.inputs("00")[1])
    assert tokens["c"] == tokens["b"] and len(unit.allowed_tokens) == 2  # a conv and a basic block start alike
    assert space.fill_unit("00", unit, tokens["c"], "BasicBlock#2", rng) == "0b"
    assert space.fill_unit("00", unit, tokens["c"], "Conv2dNormActivation#1", rng) == "0c"
    assert {space.fill_unit("00", unit, tokens["c"], None, rng) for _ in range(30)} == {"0b", "0c"}
    assert space.fill_unit("c0", space.units("c0")[0], tokens["0"], None, rng) == "00"
    assert space.fill_unit("c0", space.units("c0")[0], "pool:Max:k2x2", None, rng) == "c0"
    assert space.unmatched_predictions["pool:Max:k2x2"] == 1


# ----------------------------------------------------------------------------- searches

@pytest.fixture(scope="module")
def widths_table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("table") / "widths.json"
    keys = ["".join(c) for c in itertools.product("abcd", repeat=5)]
    path.write_text(json.dumps({k: {"acc": 50 + sum("abcd".index(ch) for ch in k), "params": 1000} for k in keys}))
    return path


@pytest.fixture(scope="module")
def tiny_gpt() -> ArchGPT:
    space, rng = create_space(WIDTHS_SPEC), np.random.default_rng(0)
    base = LayerTokenizer.build([space.to_architecture(space.sample(rng)) for _ in range(30)])
    tokenizer = LayerTokenizer.from_tokens([*base.ids_to_tokens(list(range(5, base.vocab_size))), *FITNESS_TOKENS])
    return ArchGPT.create(tokenizer, device="cpu", **TINY)  # with the fitness tokens, for +cond


@pytest.mark.parametrize("label", all_labels())
def test_every_strategy_runs_on_a_spec_space(label, widths_table, tiny_gpt):
    config = SearchConfig(strategy=label, space=str(WIDTHS_SPEC), benchmark=str(widths_table), fitness_field="acc",
                          budget=16, population=4)
    result = build_search(config, model=tiny_gpt if "gpt" in label else None).run(progress=False)
    assert result.evaluations == 16 and result.best.record.fitness >= 50
    assert all(create_space(WIDTHS_SPEC).parse(h.key) == h.key for h in result.history)
    if "gpt" in label:
        assert any(h.predicted_units for h in result.history)  # the GPT rewrote slots


def test_a_spec_search_from_the_command_line_and_its_export(tmp_path, widths_table, capsys):
    run = tmp_path / "run"
    args = ["search", "--no-progress", "--space", str(WIDTHS_SPEC), "--benchmark", str(widths_table),
            "--fitness-field", "acc", "--strategy", "ga", "--budget", "12", "--population", "4", "--output", str(run)]
    assert main(args) == 0
    assert main(args + ["--resume"]) == 0
    assert main(["export", str(run)]) == 0
    config = json.loads((run / "best_genome.json").read_text())
    assert config["space"] == "spec" and config["space_config"]["spec"]["name"] == "widths"


def test_a_short_training_search_on_digits(tmp_path):
    config = SearchConfig(strategy="random", space=str(WIDTHS_SPEC), dataset="digits", budget=2, population=2,
                          epochs=1, max_steps_per_epoch=3, device="cpu")
    result = build_search(config).run(tmp_path / "run", progress=False)
    assert [h.error for h in result.history] == [None, None]
    assert 0.0 < result.best.record.fitness <= 1.0
    assert result.best_architecture.layers[0].in_size == (8, 8, 3)  # sized for the data, not the spec's 32x32


def test_the_python_api_takes_the_spec_as_a_dict(widths_table):
    spec = yaml.safe_load(WIDTHS_SPEC.read_text())
    config = SearchConfig(strategy="ga", space=spec, benchmark=str(widths_table), fitness_field="acc", budget=8,
                          population=4)
    result = build_search(config).run(progress=False)
    assert result.evaluations == 8 and create_space(WIDTHS_SPEC).parse(result.best.candidate.key)
