"""NAS-Bench-Macro: codes, the network as layers and as a module (consistent), and the space's operators."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from arch_gpt.errors import UserInputError
from arch_gpt.search.protocols import SearchSpace
from arch_gpt.search.spaces import create_space
from arch_gpt.search.spaces.macro import MacroSpace
from arch_gpt.tokenizer.tokenization import layer_tokens
from arch_gpt.zoo import macro as zoo
from arch_gpt.zoo.macro_module import MacroNetwork
from zoo_checks import declared_layers, executed_layers


def test_parse_code_accepts_eight_digits():
    assert zoo.parse_code("01201201") == "01201201"


@pytest.mark.parametrize("bad", ["0120120", "012012013", "0120120a", 12012012])
def test_parse_code_rejects_non_codes(bad):
    with pytest.raises(UserInputError, match="NAS-Bench-Macro code"):
        zoo.parse_code(bad)


def test_layer_plan_follows_the_benchmark():
    assert zoo.layer_plan() == [(32, 64, 2), (64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 128, 1),
                                (128, 256, 2), (256, 256, 1), (256, 256, 1)]


@pytest.mark.parametrize("code,params", [("02012100", 890666), ("00000000", 387882), ("22222222", 2932586)])
def test_parameter_counts_equal_the_published_table(code, params):
    """The counts are NAS-Bench-Macro's published ``params`` for these codes."""
    assert sum(p.numel() for p in MacroNetwork(code).parameters()) == params


@pytest.mark.parametrize("code", ["01201201", "00000000", "22222222"])
def test_module_runs_and_matches_its_layers(code):
    space = MacroSpace()
    module = space.build_module(code)
    x = torch.randn(2, 3, 32, 32)
    assert module(x).shape == (2, 10)
    assert executed_layers(module, x) == declared_layers(space.to_architecture(code))
    assert len(module.units) == 8


def test_layers_have_shortcuts_and_block_labels():
    arch = MacroSpace().to_architecture("01201201")
    labels = [b.split("#")[0] for b in arch.blocks]
    assert labels.count("InvertedResidual") > 0 and "Identity" in labels
    adds = [l for l in arch.layers if l.kind == "other" and l.name == "Add"]
    # stride-1 InvertedResiduals (positions 2, 5, 7, 8 have '1' or '2' at stride 1) add their input
    assert len(adds) == sum(1 for d, (_, _, s) in zip("01201201", zoo.layer_plan()) if d != "0" and s == 1)
    assert arch.layers[-1].kind == "fc" and arch.layers[-1].in_size == 1280
    depthwise = [l for l in arch.layers if l.kind == "conv" and l.groups > 1]
    assert all(l.groups == l.in_size[2] for l in depthwise)


def test_space_is_registered_and_satisfies_protocol():
    space = create_space("nasbench-macro")
    assert isinstance(space, MacroSpace) and isinstance(space, SearchSpace)
    assert space.config() == {"num_classes": 10, "input_size": [32, 32, 3]}


def test_space_rejects_bad_input_size():
    with pytest.raises(UserInputError, match="input_size"):
        MacroSpace(input_size=(32, 32))


def test_operators_stay_in_space():
    space, rng = MacroSpace(), np.random.default_rng(0)
    for _ in range(20):
        g = space.sample(rng)
        m = space.mutate(g, rng)
        assert zoo.parse_code(m) and sum(a != b for a, b in zip(g, m)) == 1
        a, b = space.crossover(g, space.sample(rng), rng)
        assert zoo.parse_code(a) and zoo.parse_code(b)


def test_units_point_at_signature_tokens():
    space, rng = MacroSpace(), np.random.default_rng(2)
    table = space.choice_tokens()
    for _ in range(5):
        g = space.sample(rng)
        tokens = layer_tokens(space.to_architecture(g))
        for u, digit in zip(space.units(g), g):
            assert tokens[u.layer_start] == table[u.index][digit]
            assert len(u.allowed_tokens) == 3


def test_unit_layer_indices_match_the_expanded_network():
    rng = np.random.default_rng(4)
    for _ in range(30):
        code = MacroSpace().sample(rng)
        assert zoo.unit_layer_indices(code) == zoo.expand(code).unit_layers


def test_fill_unit_switches_choice_and_keeps_others():
    space, rng = MacroSpace(), np.random.default_rng(0)
    g = "00000000"
    unit = space.units(g)[4]
    for digit, token in space.choice_tokens()[4].items():
        assert space.fill_unit(g, unit, token, None, rng) == "0000" + digit + "000"


def test_fill_unit_ignores_token_of_another_position():
    space, rng = MacroSpace(), np.random.default_rng(0)
    g = "11111111"
    stride2_identity = space.choice_tokens()[0]["0"]  # a stride-2 projection: not a choice at stride-1 unit 1
    assert space.fill_unit(g, space.units(g)[1], stride2_identity, None, rng) == g
    assert space.unmatched_predictions[stride2_identity] == 1
