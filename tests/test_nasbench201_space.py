"""NAS-Bench-201: arch strings, the network as layers and as a module (consistent), and the space's operators."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from arch_gpt.errors import UserInputError
from arch_gpt.search.protocols import SearchSpace
from arch_gpt.search.spaces import create_space
from arch_gpt.search.spaces.nasbench201 import NASBench201Space
from arch_gpt.tokenizer.tokenization import layer_tokens
from arch_gpt.zoo import nasbench201 as zoo
from zoo_checks import declared_layers, executed_layers

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
MIXED = "|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"


def test_arch_string_round_trip():
    ops = zoo.parse_arch_str(MIXED)
    assert ops == ("avg_pool_3x3", "none", "nor_conv_1x1", "skip_connect", "nor_conv_3x3", "none")
    assert zoo.arch_str(ops) == MIXED


def test_arch_string_with_unknown_op_is_rejected():
    with pytest.raises(UserInputError, match="conv_5x5"):
        zoo.parse_arch_str(MIXED.replace("avg_pool_3x3", "conv_5x5"))


def test_arch_string_with_wrong_layout_is_rejected():
    with pytest.raises(UserInputError, match="arch string"):
        zoo.parse_arch_str("|none~0|+|none~0|none~1|")


def test_arch_str_needs_six_ops():
    with pytest.raises(UserInputError, match="6 ops"):
        zoo.arch_str(["none"] * 5)


@pytest.mark.parametrize("genome", [BEST, MIXED])
def test_module_runs_and_matches_its_layers(genome):
    space = NASBench201Space()
    module = space.build_module(genome)
    x = torch.randn(2, 3, 32, 32)
    assert module(x).shape == (2, 10)
    assert executed_layers(module, x) == declared_layers(space.to_architecture(genome))


def test_network_layout():
    arch = NASBench201Space().to_architecture(BEST)
    assert arch.name == BEST
    assert arch.layers[0].out_size == (32, 32, 16)
    assert arch.layers[-1].kind == "fc" and (arch.layers[-1].in_size, arch.layers[-1].out_size) == (64, 10)
    labels = {b.split("#")[0] for b in arch.blocks}
    assert {"InferCell", "ResNetBasicblock", "Conv", "BN", "Linear"} <= labels
    assert sum(b.startswith("InferCell#") for b in set(arch.blocks)) == 15
    assert sum(b.startswith("ResNetBasicblock#") for b in set(arch.blocks)) == 2
    strides = [l.stride[0] for l in arch.layers if l.kind == "conv" and l.stride[0] == 2]
    assert len(strides) == 2  # one per reduction block
    assert {l.name for l in arch.layers if l.kind == "other"} >= {"Add", "Identity", "BN", "ReLU"}


def test_cell_with_none_and_pool_has_zero_and_avgpool_layers():
    arch = NASBench201Space().to_architecture(MIXED)
    first_cell = [l for l in arch.layers if l.block == "InferCell#1"]
    assert [l.name for l in first_cell if l.kind == "other"].count("Zero") == 2
    assert any(l.kind == "pool" and l.type == "Avg" and l.kernel == (3, 3) for l in first_cell)


def test_space_is_registered_and_satisfies_protocol():
    space = create_space("nasbench201", num_classes=100)
    assert isinstance(space, NASBench201Space) and isinstance(space, SearchSpace)
    assert space.to_architecture(BEST).layers[-1].out_size == 100


def test_space_rejects_bad_num_classes():
    with pytest.raises(UserInputError, match="num_classes"):
        NASBench201Space(num_classes=0)


def test_sample_mutate_crossover_stay_in_space():
    space, rng = NASBench201Space(), np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(50)]
    assert len(set(samples)) > 40
    for g in samples[:10]:
        child = space.mutate(g, rng)
        assert sum(a != b for a, b in zip(zoo.parse_arch_str(g), zoo.parse_arch_str(child))) == 1
        a, b = space.crossover(g, samples[-1], rng)
        pa, pb, ca = zoo.parse_arch_str(g), zoo.parse_arch_str(samples[-1]), zoo.parse_arch_str(a)
        assert all(x in (p, q) for x, p, q in zip(ca, pa, pb))
        assert space.key(a) == a and space.key(b) == b


def test_same_seed_same_samples():
    space = NASBench201Space()
    assert ([space.sample(np.random.default_rng(3)) for _ in range(3)]
            == [space.sample(np.random.default_rng(3)) for _ in range(3)])


def test_key_rejects_non_genome():
    with pytest.raises(UserInputError):
        NASBench201Space().key("|none~0|")


def test_units_point_at_signature_tokens():
    space, rng = NASBench201Space(), np.random.default_rng(1)
    table = space.choice_tokens()
    assert all(len(set(row.values())) == 5 for row in table)
    for _ in range(5):
        g = space.sample(rng)
        tokens = layer_tokens(space.to_architecture(g))
        units = space.units(g)
        assert [u.index for u in units] == list(range(6))
        for u, op in zip(units, zoo.parse_arch_str(g)):
            assert tokens[u.layer_start] == table[u.index][op]
            assert u.allowed_tokens == frozenset(table[u.index].values())


def test_context_architecture_is_a_prefix_holding_every_unit():
    space, rng = NASBench201Space(), np.random.default_rng(5)
    for _ in range(10):
        g = space.sample(rng)
        full, short = layer_tokens(space.to_architecture(g)), layer_tokens(space.context_architecture(g))
        end = max(u.layer_start for u in space.units(g)) + 1
        assert len(short) < len(full) / 2 and short[:end] == full[:end]


def test_unit_layer_indices_match_the_expanded_network():
    rng = np.random.default_rng(4)
    space = NASBench201Space(cells_per_stage=2)
    for _ in range(30):
        ops = zoo.parse_arch_str(space.sample(rng))
        assert zoo.unit_layer_indices(ops) == zoo.expand(ops, cells_per_stage=2).unit_layers


def test_fill_unit_picks_the_op_of_each_allowed_token():
    space, rng = NASBench201Space(), np.random.default_rng(0)
    unit = space.units(BEST)[3]
    for op, token in space.choice_tokens()[3].items():
        filled = space.fill_unit(BEST, unit, token, None, rng)
        assert zoo.parse_arch_str(filled)[3] == op
        assert zoo.parse_arch_str(filled)[:3] == zoo.parse_arch_str(BEST)[:3]


def test_fill_unit_accepts_a_layer():
    space, rng = NASBench201Space(), np.random.default_rng(0)
    arch = space.to_architecture(MIXED)
    unit = space.units(BEST)[0]
    pool_layer = arch.layers[space.units(MIXED)[0].layer_start]
    assert zoo.parse_arch_str(space.fill_unit(BEST, unit, pool_layer, None, rng))[0] == "avg_pool_3x3"


def test_fill_unit_keeps_genome_on_unknown_token():
    space, rng = NASBench201Space(), np.random.default_rng(0)
    unit = space.units(BEST)[0]
    assert space.fill_unit(BEST, unit, "other:Sigmoid", None, rng) == BEST
    assert space.fill_unit(BEST, unit, None, None, rng) == BEST
    assert space.unmatched_predictions["other:Sigmoid"] == 1


@pytest.mark.parametrize("size", [(9, 9, 1), (30, 32, 3), 6])
def test_input_sizes_the_two_reductions_cannot_halve_are_refused(size):
    with pytest.raises(UserInputError, match="^input_size: .*multiples of 4"):
        create_space("nasbench201", input_size=size)
