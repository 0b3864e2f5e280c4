"""The block-based CNN space: operators, genome codecs, fitting rules and GPT units on real torchvision blocks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from arch_gpt.errors import UserInputError
from arch_gpt.tokenizer import layer_tokens
from arch_gpt.search.protocols import SearchSpace
from arch_gpt.search.spaces import create_space
from arch_gpt.search.spaces.block_modules import KINDS, keeps_channels
from arch_gpt.search.spaces.blocks import BlockGene, BlockSpace, GenomeError

SIDE = 16  # the fast tests run at 16x16 (digits size)
RECONSTRUCTED = 200  # individuals rewritten by fill_unit in the property test


@pytest.fixture(scope="module")
def space() -> BlockSpace:
    return BlockSpace(num_classes=5, input_size=SIDE, min_blocks=3, max_blocks=8, widths=(8, 16))


def runs(space: BlockSpace, genome) -> None:
    """Builds, and a forward pass at the input size gives (2, classes) finite logits."""
    model = space.build_module(genome)
    with torch.no_grad():
        y = model(torch.randn(2, 3, SIDE, SIDE))
    assert y.shape == (2, space.num_classes)
    assert torch.isfinite(y).all()


def assert_fitted(space: BlockSpace, genome) -> None:
    assert space.min_blocks <= len(genome) <= space.max_blocks
    assert sum(g.stride == 2 for g in genome) <= space.max_downsamples
    for c_in, gene in zip(space.in_channels(genome), genome):
        assert gene.kind in KINDS and gene.extra in KINDS[gene.kind].extras
        if keeps_channels(gene.kind, gene.stride):
            assert gene.out_channels == c_in


def test_registered_and_satisfies_protocol():
    space = create_space("blocks", input_size=SIDE)
    assert isinstance(space, SearchSpace)
    assert (space.min_blocks, space.max_blocks) == (10, 20)
    assert space.block_classes == tuple(KINDS)


def test_default_sample_length_and_kinds():
    space = BlockSpace(input_size=32)
    rng = np.random.default_rng(1)
    genomes = [space.sample(rng) for _ in range(40)]
    assert all(10 <= len(g) <= 20 for g in genomes)
    assert {g.kind for genome in genomes for g in genome} == set(KINDS)


def test_operators_property_200_individuals(space):
    """Every sampled, mutated and crossed individual is fitted, builds and runs (seeded loop, 200 each)."""
    rng = np.random.default_rng(0)
    prev = space.sample(rng)
    for _ in range(200):
        genome = space.sample(rng)
        mutant = space.mutate(genome, rng)
        child_a, child_b = space.crossover(genome, prev, rng)
        for g in (genome, mutant, child_a, child_b):
            assert_fitted(space, g)
            runs(space, g)
        prev = mutant


def test_operators_do_not_mutate_and_are_seeded(space):
    a = space.sample(np.random.default_rng(3))
    b = space.sample(np.random.default_rng(4))
    a_copy, b_copy = tuple(a), tuple(b)
    m1 = space.mutate(a, np.random.default_rng(5))
    m2 = space.mutate(a, np.random.default_rng(5))
    c1 = space.crossover(a, b, np.random.default_rng(6))
    assert m1 == m2 and c1 == space.crossover(a, b, np.random.default_rng(6))
    assert (a, b) == (a_copy, b_copy)


def test_crossover_swaps_tails(space):
    rng = np.random.default_rng(7)
    a, b = space.sample(rng), space.sample(rng)
    c, d = space.crossover(a, b, rng)
    assert len(c) + len(d) == len(a) + len(b)
    assert c[0].kind == a[0].kind and d[0].kind == b[0].kind
    assert c[-1].kind == b[-1].kind and d[-1].kind == a[-1].kind


def test_fit_applies_channel_rules_and_downsampling_cap(space):
    genes = [BlockGene("Conv", 16, 2, 3), BlockGene("BN", 8), BlockGene("InvertedResidual", 8, 1),
             BlockGene("MaxPool", 16, 2), BlockGene("Conv", 8, 2, 1), BlockGene("MaxPool", 8, 2)]
    fitted = space.fit(genes)
    assert [g.out_channels for g in fitted] == [16, 16, 16, 16, 8, 8]
    assert [g.stride for g in fitted] == [2, 1, 1, 2, 2, 1]  # cap of 3 at 16x16
    runs(space, fitted)


def test_key_and_json_round_trip(space):
    rng = np.random.default_rng(8)
    for _ in range(20):
        g = space.sample(rng)
        assert space.parse(space.key(g)) == g
        assert space.genome_from_json(space.genome_to_json(g)) == g


@pytest.mark.parametrize("bad, field", [
    ("Conv-8-s1-x3_Nope-8-s1-x0_BN-8-s1-x0", "kind"),
    ("Conv-12-s1-x3_BN-8-s1-x0_BN-8-s1-x0", "out_channels"),
    ("Conv-8-s3-x3_BN-8-s1-x0_BN-8-s1-x0", "stride"),
    ("Conv-8-s1-x7_BN-8-s1-x0_BN-8-s1-x0", "extra"),
    ("Conv-8-s1_BN-8-s1-x0_BN-8-s1-x0", "Kind-<out>"),
    ("Conv-eight-s1-x3_BN-8-s1-x0_BN-8-s1-x0", "integers"),
    ("Conv-8-s1-x3", "blocks"),
])
def test_parse_rejects_bad_keys(space, bad, field):
    with pytest.raises(GenomeError, match=field) as err:
        space.parse(bad)
    assert isinstance(err.value, UserInputError)


@pytest.mark.parametrize("bad, match", [
    ("not json", "genome JSON"),
    ({"blocks": "x"}, "'blocks'"),
    ({"blocks": [{"kind": "Conv"}] * 3}, r"blocks\[0\]"),
    ({"blocks": [{"kind": "BN", "out_channels": 8, "colour": 1}] * 3}, r"blocks\[0\]"),
])
def test_genome_from_json_rejects_bad_input(space, bad, match):
    with pytest.raises(GenomeError, match=match):
        space.genome_from_json(bad)


@pytest.mark.parametrize("kwargs, match", [
    ({"widths": (12,)}, "widths"), ({"min_blocks": 5, "max_blocks": 2}, "min_blocks"),
    ({"kinds": ("Conv", "Transformer")}, "kinds"), ({"input_size": (16, 16)}, "input_size"),
])
def test_bad_space_config(kwargs, match):
    with pytest.raises(UserInputError, match=match):
        BlockSpace(**kwargs)


def test_module_units_are_the_blocks(space):
    g = space.sample(np.random.default_rng(9))
    model = space.build_module(g)
    torch_names = {"Conv": "Conv2d", "MaxPool": "MaxPool2d", "BN": "BatchNorm2d", "ReLU": "ReLU"}
    assert [type(m).__name__ for m in model.units] == [torch_names.get(x.kind, x.kind) for x in g]


# ----------------------------------------------------------------------------- traced networks and GPT units

def test_architecture_labels_and_units(space):
    """Each unit points at its block's first traced layer, labelled by the block's class, whose token is allowed."""
    rng = np.random.default_rng(10)
    for _ in range(12):
        genome = space.sample(rng)
        arch = space.to_architecture(genome)
        assert arch.name == space.key(genome) and space.to_architecture(genome) is arch  # cached
        tokens = layer_tokens(arch)
        units = space.units(genome)
        assert [u.index for u in units] == list(range(len(genome)))
        starts = [i for i in range(1, len(arch)) if arch.blocks[i] != arch.blocks[i - 1]][:len(genome)]
        assert [u.layer_start for u in units] == starts  # label groups: stem, then one per block
        for unit, gene in zip(units, genome):
            assert arch.blocks[unit.layer_start].split("#")[0] == gene.kind
            assert tokens[unit.layer_start] in unit.allowed_tokens


def test_fill_unit_prefers_the_classifier_label(space):
    genome = space.fit([BlockGene("Conv", 8, 1, 3), BlockGene("BN", 8), BlockGene("Conv", 16, 1, 1)])
    unit = space.units(genome)[1]
    tokens = space.choice_tokens(genome, 1)
    basic = next(g for g in tokens if g.kind == "BasicBlock" and g.stride == 1 and g.out_channels == 16)
    out = space.fill_unit(genome, unit, tokens[basic], "BasicBlock#4", np.random.default_rng(0))
    assert out[1] == basic and out[0] == genome[0]
    # a label whose class has no choice with that token still gives a block of that class
    out = space.fill_unit(genome, unit, tokens[basic], "Inception", np.random.default_rng(0))
    assert out[1].kind == "Inception"
    runs(space, out)


def test_fill_unit_accepts_a_predicted_layer(space):
    """A Layer (as ``predict_next_layers`` gives) works like its token: here the traced first layer itself."""
    genome = space.fit([BlockGene("Conv", 8, 1, 3), BlockGene("MaxPool", 8, 2), BlockGene("Conv", 16, 1, 1)])
    other = space.fit([BlockGene("Conv", 8, 1, 3), BlockGene("BN", 8), BlockGene("Conv", 16, 1, 1)])
    layer = space.to_architecture(genome).layers[space.units(genome)[1].layer_start]
    out = space.fill_unit(other, space.units(other)[1], layer, None, np.random.default_rng(0))
    assert out == genome


def test_fill_unit_falls_back_to_the_token_then_keeps_the_genome(space):
    genome = space.fit([BlockGene("Conv", 8, 1, 3), BlockGene("BN", 8), BlockGene("Conv", 16, 1, 1)])
    unit = space.units(genome)[1]
    tokens = space.choice_tokens(genome, 1)
    pool = next(g for g in tokens if g.kind == "MaxPool" and g.stride == 2)
    out = space.fill_unit(genome, unit, tokens[pool], None, np.random.default_rng(0))
    assert out[1] == pool
    assert space.fill_unit(genome, unit, "conv:nothing", "SimpleStemIN", np.random.default_rng(0)) == genome
    assert space.fill_unit(genome, unit, None, None, np.random.default_rng(0)) == genome


def test_reconstruction_property(space):
    """Individuals rewritten by fill_unit with random allowed tokens and labels stay fitted and run."""
    rng = np.random.default_rng(11)
    labels = list(space.block_classes) + [None, "SimpleStemIN"]
    for _ in range(RECONSTRUCTED):
        genome = space.sample(rng)
        for unit in space.units(genome):
            if rng.random() < 0.5:
                continue
            unit = space.units(genome)[unit.index]
            allowed = sorted(unit.allowed_tokens)
            token = allowed[int(rng.integers(len(allowed)))]
            genome = space.fill_unit(genome, unit, token, labels[int(rng.integers(len(labels)))], rng)
        assert_fitted(space, genome)
        runs(space, genome)


@pytest.mark.slow
def test_default_space_property_at_32():
    """The default space (10-20 blocks, default widths) at 32x32: 200 sampled, mutated, crossed, reconstructed."""
    space = BlockSpace(num_classes=10, input_size=32)
    rng = np.random.default_rng(12)
    prev = space.sample(rng)
    for _ in range(200):
        genome = space.sample(rng)
        rebuilt = genome
        for unit in space.units(genome):
            if rng.random() < 0.4:
                allowed = sorted(unit.allowed_tokens)
                label = space.block_classes[int(rng.integers(len(space.block_classes)))]
                rebuilt = space.fill_unit(rebuilt, space.units(rebuilt)[unit.index],
                                          allowed[int(rng.integers(len(allowed)))], label, rng)
        for g in (genome, space.mutate(genome, rng), *space.crossover(genome, prev, rng), rebuilt):
            assert_fitted(space, g)
            model = space.build_module(g)
            with torch.no_grad():
                assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        prev = genome
