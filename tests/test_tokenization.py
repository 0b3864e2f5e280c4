"""Layer tokens and the layer tokenizer: token form, exact decoding, vocabularies, files, bad tokens."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from arch_gpt.encoding import Architecture, ArchitectureError, ConvLayer, FCLayer, OtherLayer, PoolLayer
from arch_gpt.shapes import conv_out_hw
from arch_gpt.tokenizer import (
    SPECIAL_TOKENS, LayerTokenizer, TokenError, TokenizerFileError, build_vocab, check_token, count_tokens,
    layer_tokens, token_to_layer, tokens_to_architecture,
)
from arch_gpt.zoo.torchvision_models import trace_table2_model


def _graph_arch() -> Architecture:
    """A small graph network: stem, residual block with a downsample branch, depthwise conv, concat, head."""
    return Architecture((
        ConvLayer(1, (32, 32, 3), (32, 32, 16), (3, 3), (1, 1), (1, 1, 1, 1)),
        OtherLayer(2, "BN", (32, 32, 16), (32, 32, 16), block="Conv#1"),
        OtherLayer(3, "ReLU", (32, 32, 16), (32, 32, 16)),
        PoolLayer(4, "Max", (32, 32, 16), (16, 16, 16), (3, 3), (2, 2), (1, 1, 1, 1)),
        ConvLayer(5, (16, 16, 16), (8, 8, 32), (3, 3), (2, 2), (1, 1, 1, 1)),
        OtherLayer(6, "ReLU", (8, 8, 32), (8, 8, 32)),
        ConvLayer(7, (16, 16, 16), (8, 8, 32), (1, 1), (2, 2)),
        OtherLayer(8, "Add", (8, 8, 32), (8, 8, 32), "6-7"),
        ConvLayer(9, (8, 8, 32), (8, 8, 32), (3, 3), (1, 1), (1, 1, 1, 1), groups=32),
        OtherLayer(10, "Concat", (8, 8, 32), (8, 8, 96), "8-9-7"),
        PoolLayer(11, "Max", (8, 8, 96), (4, 4, 96), (3, 3), (2, 2), (0, 0, 0, 0)),
        OtherLayer(12, "AdaptiveAvgPool", (4, 4, 96), (1, 1, 96), "1-1"),
        OtherLayer(13, "Flatten", (1, 1, 96), (1, 1, 96)),
        OtherLayer(14, "Dropout", (1, 1, 96), (1, 1, 96), "0.2"),
        FCLayer(15, 96, 10),
    ), name="graph")


GRAPH_TOKENS = [
    "conv:k3x3:s1x1:p1-1-1-1:d1:g1:b0:r16/3", "other:BN", "other:ReLU", "pool:Max:k3x3:s2x2:p1-1-1-1:d1:b0",
    "conv:k3x3:s2x2:p1-1-1-1:d1:g1:b0:r2", "other:ReLU", "conv:k1x1:s2x2:p0-0-0-0:d1:g1:b0:r2:@-3",
    "other:Add:-2,-1", "conv:k3x3:s1x1:p1-1-1-1:d1:gdw:b0:r1", "other:Concat:-2,-1,-3",
    "pool:Max:k3x3:s2x2:p0-0-0-0:d1:b0:ceil", "other:AdaptiveAvgPool:1-1", "other:Flatten", "other:Dropout:0.2",
    "fc:r5/48",
]


def _strip(arch: Architecture) -> Architecture:
    """What decoding can restore: ids 1..n, no block labels, no name."""
    return Architecture(tuple(replace(layer, block=None) for layer in arch.renumbered().layers))


def test_graph_tokens_have_the_documented_form():
    assert layer_tokens(_graph_arch()) == GRAPH_TOKENS
    assert all(" " not in t for t in GRAPH_TOKENS)


def test_graph_decodes_exactly():
    arch = _graph_arch()
    assert tokens_to_architecture(layer_tokens(arch), arch.input_size) == _strip(arch)


def test_tokens_ignore_ids_and_widths():
    narrow = Architecture((ConvLayer(7, (8, 8, 4), (8, 8, 8), (3, 3), (1, 1), (1, 1, 1, 1)),
                           OtherLayer(9, "ReLU", (8, 8, 8), (8, 8, 8))))
    wide = Architecture((ConvLayer(1, (16, 16, 32), (16, 16, 64), (3, 3), (1, 1), (1, 1, 1, 1)),
                         OtherLayer(2, "ReLU", (16, 16, 64), (16, 16, 64))))
    assert layer_tokens(narrow) == layer_tokens(wide) == ["conv:k3x3:s1x1:p1-1-1-1:d1:g1:b0:r2", "other:ReLU"]


def test_other_size_change_and_network_input_source_round_trip():
    arch = Architecture((
        OtherLayer(1, "Chunk", (8, 8, 16), (8, 8, 8), "2"),
        OtherLayer(2, "Upsample", (8, 8, 8), (16, 16, 8)),
        OtherLayer(3, "Identity", (8, 8, 16), (8, 8, 16)),
        OtherLayer(4, "Add", (8, 8, 16), (8, 8, 16), "0-3"),
    ))
    tokens = layer_tokens(arch)
    assert tokens == ["other:Chunk:2:r1/2", "other:Upsample:none:r1:s2x2", "other:Identity:none:@in",
                      "other:Add:in,-1"]
    assert tokens_to_architecture(tokens, arch.input_size) == arch


@st.composite
def _chains(draw):
    """Random valid conv/pool/BN/ReLU chains, sizes inferred with PyTorch's formula."""
    size = (draw(st.integers(8, 40)), draw(st.integers(8, 40)), draw(st.sampled_from([1, 3, 8, 16])))
    layers = []
    for lid in range(1, draw(st.integers(1, 8)) + 1):
        h, w, c = size
        kind = draw(st.sampled_from(["conv", "pool", "BN", "ReLU"]))
        k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        p = tuple(draw(st.integers(0, 1)) for _ in range(4))
        oh, ow = conv_out_hw((h, w), k, s, p)
        if kind == "conv" and min(oh, ow) > 0:
            groups = draw(st.sampled_from([1, c]))
            out_c = c * draw(st.sampled_from([1, 2, 3]))
            layer = ConvLayer(lid, size, (oh, ow, out_c), k, s, p, groups=groups, bias_used=draw(st.booleans()))
        elif kind == "pool" and min(oh, ow) > 0:
            oh, ow = conv_out_hw((h, w), k, s, p, ceil_mode=draw(st.booleans()))
            layer = PoolLayer(lid, draw(st.sampled_from(["Max", "Avg"])), size, (oh, ow, c), k, s, p)
        else:
            layer = OtherLayer(lid, "BN" if kind == "BN" else "ReLU", size, size)
        layers.append(layer)
        size = layer.out_size
    return Architecture(tuple(layers))


@settings(max_examples=60, deadline=None)
@given(_chains())
def test_random_chains_decode_exactly(arch):
    assert tokens_to_architecture(layer_tokens(arch), arch.input_size) == arch


# ----------------------------------------------------------------------------- the tokenizer

def _chain_arch() -> Architecture:
    return Architecture((
        ConvLayer(1, (32, 32, 3), (32, 32, 8), (3, 3), (1, 1), (1, 1, 1, 1)),
        OtherLayer(2, "ReLU", (32, 32, 8), (32, 32, 8)),
        OtherLayer(3, "ReLU", (32, 32, 8), (32, 32, 8)),
        OtherLayer(4, "Flatten", (32, 32, 8), (1, 1, 8192)),
        FCLayer(5, 8192, 10),
    ))


def test_encode_wraps_in_bos_eos_and_matches_the_stock_tokenizer():
    tok = build_vocab([_graph_arch(), _chain_arch()])
    ids = tok.encode(_graph_arch())
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.encode(_graph_arch(), add_special_tokens=False) == ids[1:-1]
    assert tok.hf(" ".join(GRAPH_TOKENS))["input_ids"] == ids
    assert tok.ids_to_tokens(ids[1:-1]) == GRAPH_TOKENS


def test_special_token_ids_and_frequency_order():
    tok = LayerTokenizer.build([_chain_arch()])
    assert [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id, tok.mask_token_id] == [0, 1, 2, 3, 4]
    assert tok.ids_to_tokens(range(5)) == list(SPECIAL_TOKENS)
    assert tok.ids_to_tokens([5]) == ["other:ReLU"]  # the only token seen twice comes first
    assert tok.vocab_size == len(tok) == 5 + 4


def test_decode_of_encode_restores_the_architecture():
    tok = build_vocab([_graph_arch()])
    arch = _graph_arch()
    assert tok.decode(tok.encode(arch), arch.input_size) == _strip(arch)
    padded = tok.encode(arch) + [tok.pad_token_id] * 3
    assert tok.decode(padded, arch.input_size) == _strip(arch)


def test_unknown_tokens_map_to_unk():
    tok = build_vocab([_chain_arch()])
    assert not tok.in_vocab("other:GELU") and tok.in_vocab("other:ReLU")
    assert tok.tokens_to_ids(["other:GELU", "other:ReLU"]) == [tok.unk_token_id, tok.tokens_to_ids(["other:ReLU"])[0]]
    ids = tok.encode(_graph_arch())
    assert tok.unk_token_id in ids
    assert tok.hf("other:GELU")["input_ids"] == [tok.bos_token_id, tok.unk_token_id, tok.eos_token_id]


def test_decode_of_unk_raises_naming_the_token_field():
    tok = build_vocab([_chain_arch()])
    with pytest.raises(ArchitectureError, match="UNK") as info:
        tok.decode([tok.bos_token_id, tok.unk_token_id], (8, 8, 3))
    assert info.value.field == "token"


def test_ids_outside_the_vocabulary_raise():
    tok = build_vocab([_chain_arch()])
    with pytest.raises(ArchitectureError) as info:
        tok.ids_to_tokens([tok.vocab_size])
    assert info.value.field == "ids"


def test_min_frequency_drops_rare_tokens():
    archs = [_chain_arch(), _chain_arch(), _graph_arch()]
    counts = count_tokens(archs)
    assert counts["other:ReLU"] == 2 * 2 + 2 and counts["other:Add:-2,-1"] == 1
    tok = build_vocab(archs, min_frequency=2)
    assert tok.in_vocab("other:ReLU") and tok.in_vocab("fc:r5/4096")
    assert not tok.in_vocab("other:Add:-2,-1") and not tok.in_vocab("fc:r5/48")
    assert tok == LayerTokenizer.from_counts(counts, min_frequency=2)
    assert len(build_vocab(archs)) > len(tok)


def test_min_frequency_below_one_is_rejected():
    with pytest.raises(ValueError, match="min_frequency"):
        build_vocab([_chain_arch()], min_frequency=0)


def test_save_load_equality_and_stock_autotokenizer(tmp_path):
    tok = build_vocab([_graph_arch(), _chain_arch()])
    tok.save_pretrained(tmp_path / "tok")
    assert sorted(p.name for p in (tmp_path / "tok").iterdir()) == ["tokenizer.json", "tokenizer_config.json"]
    loaded = LayerTokenizer.from_pretrained(tmp_path / "tok")
    assert loaded == tok and loaded.get_vocab() == tok.get_vocab()
    assert loaded.encode(_graph_arch()) == tok.encode(_graph_arch())
    stock = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert stock.get_vocab() == tok.get_vocab()
    assert stock(" ".join(GRAPH_TOKENS))["input_ids"] == tok.encode(_graph_arch())
    assert (stock.pad_token_id, stock.mask_token_id, stock.unk_token_id) == (0, 4, 3)
    assert "auto_map" not in json.loads((tmp_path / "tok" / "tokenizer_config.json").read_text())


def test_from_pretrained_of_a_folder_without_tokenizer_raises(tmp_path):
    with pytest.raises(TokenizerFileError, match="tokenizer.json"):
        LayerTokenizer.from_pretrained(tmp_path)


def test_from_pretrained_of_a_missing_folder_raises(tmp_path):
    with pytest.raises(TokenizerFileError, match="missing"):
        LayerTokenizer.from_pretrained(tmp_path / "missing")


def test_from_pretrained_without_special_tokens_raises(tmp_path):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    bare = Tokenizer(models.WordLevel(vocab={"other:ReLU": 0, "x": 1}, unk_token="x"))
    PreTrainedTokenizerFast(tokenizer_object=bare).save_pretrained(str(tmp_path))
    with pytest.raises(TokenizerFileError, match=r"\[PAD\]"):
        LayerTokenizer.from_pretrained(tmp_path)


def test_from_tokens_rejects_a_malformed_token():
    with pytest.raises(TokenError) as info:
        LayerTokenizer.from_tokens(["other:ReLU", "bogus:1"])
    assert info.value.field == "kind"


# ----------------------------------------------------------------------------- token_to_layer

def test_token_to_layer_resolves_sources_and_inputs_from_previous_layers():
    prev = list(tokens_to_architecture(GRAPH_TOKENS[:7], (32, 32, 3)).layers)
    add = token_to_layer("other:Add:-2,-1", prev[-1].out_size, 8, prev, (32, 32, 3), block="BasicBlock#1")
    assert add == OtherLayer(8, "Add", (8, 8, 32), (8, 8, 32), "6-7", block="BasicBlock#1")
    branch = token_to_layer("conv:k1x1:s1x1:p0-0-0-0:d1:g1:b0:r1:@in", (4, 4, 4), 9, prev, (32, 32, 3))
    assert branch.in_size == (32, 32, 3) and branch.out_size == (32, 32, 3)


def test_malformed_token_is_checked_without_context():
    check_token("conv:k3x3:s1x1:p1-1-1-1:d1:g1:b0:r2")
    with pytest.raises(TokenError) as info:
        check_token("conv:k3x3:s1x1:p1-1-1-1:d1:g1:b0:rx")
    assert info.value.field == "ratio"


BAD_TOKENS = [
    ("", "token"),
    ("conv:k3x3:s1x1", "token"),
    ("lstm:h32", "kind"),
    ("conv:k3:s1x1:p1-1-1-1:d1:g1:b0:r2", "kernel"),
    ("conv:kAx3:s1x1:p1-1-1-1:d1:g1:b0:r2", "kernel"),
    ("conv:k3x3:s0x1:p1-1-1-1:d1:g1:b0:r2", "stride"),
    ("conv:k3x3:s1x1:p1-1-1:d1:g1:b0:r2", "padding"),
    ("conv:k3x3:s1x1:p1-1-1-1:d0:g1:b0:r2", "dilation"),
    ("conv:k3x3:s1x1:p1-1-1-1:d1:gx:b0:r2", "groups"),
    ("conv:k3x3:s1x1:p1-1-1-1:d1:g1:b2:r2", "bias_used"),
    ("conv:k3x3:s1x1:p1-1-1-1:d1:g1:b0:r0", "ratio"),
    ("conv:k3x3:s1x1:p1-1-1-1:d1:g1:b0:r1/3", "ratio"),  # 8 channels / 3 is not whole
    ("conv:k3x3:s1x1:p1-1-1-1:d1:g3:b0:r1", "groups"),  # 3 does not divide 8 channels
    ("conv:k9x9:s1x1:p0-0-0-0:d1:g1:b0:r1", "in_size"),  # window larger than the 4x4 input
    ("conv:k3x3:s1x1:p1-1-1-1:d1:g1:b0:r2:@-9", "input"),
    ("conv:k3x3:s1x1:p1-1-1-1:d1:g1:b0:r2:@x", "input"),
    ("pool:Min:k3x3:s2x2:p1-1-1-1:d1:b0", "type"),
    ("pool:Max:k3x3:s2x2:p1-1-1-1:d1:b0:floor", "token"),
    ("fc:5/48", "ratio"),
    ("other:", "name"),
    ("other:Add:-1,+2", "value"),
    ("other:Concat:-5", "value"),  # only one layer precedes it
    ("other:AdaptiveAvgPool:big", "value"),
    ("other:Upsample:none:s2x", "size_ratio"),
    ("other:ReLU:none:q1", "token"),
    ("other:ReLU extra", "token"),
]


@pytest.mark.parametrize("token,field", BAD_TOKENS, ids=[f"{i}-{f}" for i, (_, f) in enumerate(BAD_TOKENS)])
def test_bad_tokens_raise_naming_the_field(token, field):
    previous = [OtherLayer(1, "ReLU", (4, 4, 8), (4, 4, 8))]
    with pytest.raises(ArchitectureError) as info:
        token_to_layer(token, (4, 4, 8), 2, previous, (4, 4, 8))
    assert info.value.field == field
    assert f"'{field}'" in str(info.value)


def test_bad_token_in_a_sequence_names_its_position():
    with pytest.raises(ArchitectureError, match="tokens:2") as info:
        tokens_to_architecture(["other:ReLU", "pool:Min:k3x3:s2x2:p1-1-1-1:d1:b0"], (8, 8, 3))
    assert info.value.field == "type"


def test_untokenizable_value_raises_naming_the_layer():
    arch = Architecture((OtherLayer(4, "Dropout", (2, 2, 2), (2, 2, 2), "p:0.5"),))
    with pytest.raises(ArchitectureError) as info:
        layer_tokens(arch)
    assert info.value.field == "value" and info.value.layer_id == 4


def test_bad_input_size_is_rejected():
    with pytest.raises(ArchitectureError) as info:
        tokens_to_architecture(["other:ReLU"], (0, 8, 3))
    assert info.value.field == "input_size"


# ----------------------------------------------------------------------------- traced torchvision models

TRACED = ["resnet18", "efficientnet_b0", "googlenet", "shufflenet_v2_x1_0", "regnet_y_400mf"]


@pytest.fixture(scope="module")
def traced() -> dict[str, Architecture]:
    return {name: trace_table2_model(name, input_size=32) for name in TRACED}


@pytest.mark.parametrize("name", TRACED)
def test_traced_torchvision_models_decode_exactly(traced, name):
    arch = traced[name]
    tok = build_vocab(traced.values())
    ids = tok.encode(arch)
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, arch.input_size) == _strip(arch)


# ----------------------------------------------------------------------------- fitness-quantile tokens

def test_fitness_tokens_are_non_layer_entries_that_keep_their_ids(tmp_path):
    from arch_gpt.tokenizer import FITNESS_TOKENS
    from arch_gpt.training.corpus_loading import extend_tokenizer

    assert FITNESS_TOKENS == ("[FIT_TOP]", "[FIT_MID]", "[FIT_LOW]")
    layers = ["conv:k3x3:s1x1:p1-1-1-1:d1:g1:b0:r1", "other:ReLU"]
    tok = LayerTokenizer.from_tokens([*layers, *FITNESS_TOKENS])
    fit_ids = tok.tokens_to_ids(FITNESS_TOKENS)
    assert tok.layer_token_list == layers and tok.fitness_tokens == list(FITNESS_TOKENS)
    assert tok.non_layer_ids == [*range(len(SPECIAL_TOKENS)), *fit_ids]
    tok.save_pretrained(tmp_path)
    again = LayerTokenizer.from_pretrained(tmp_path)
    assert again == tok and set(FITNESS_TOKENS) <= set(again.hf.all_special_tokens)
    hf = AutoTokenizer.from_pretrained(tmp_path)
    ids = hf("[FIT_TOP] other:ReLU")["input_ids"]
    assert ids == [tok.bos_token_id, fit_ids[0], tok.tokens_to_ids(["other:ReLU"])[0], tok.eos_token_id]
    assert hf.decode(ids, skip_special_tokens=True) == "other:ReLU"
    # a fitness prefix is conditioning, not a layer: decode skips it
    arch = tok.decode([tok.bos_token_id, fit_ids[1], *tok.tokens_to_ids(layers), tok.eos_token_id], (8, 8, 3))
    assert len(arch.layers) == 2
    # extending the vocabulary keeps every id, fitness tokens included
    bigger = extend_tokenizer(tok, LayerTokenizer.from_tokens(["other:ReLU", "other:BN"]))
    assert bigger.tokens_to_ids(FITNESS_TOKENS) == fit_ids and bigger.tokens_to_ids(["other:BN"]) == [tok.vocab_size]
    # a vocabulary without them (the NAS-Bench-101 checkpoint's) masks only the special tokens
    plain = LayerTokenizer.from_tokens(layers)
    assert plain.fitness_tokens == [] and plain.non_layer_ids == list(range(len(SPECIAL_TOKENS)))
