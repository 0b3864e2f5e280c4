"""The layer level of the architecture language: one layer's text form, round trips, bad fields, block labels."""
from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import arch_gpt.encoding
from arch_gpt import layers
from arch_gpt.errors import UserInputError
from arch_gpt.layers import (
    BLOCK_CLASSES, ArchitectureError, ConvLayer, FCLayer, OtherLayer, PoolLayer, block_class, format_layer,
    layer_fields, parse_layer,
)
from arch_gpt.shapes import conv_out_hw

PAPER_CONV = "id:1;in_size:32-32-3;out_size:32-32-3;kernel:1-1;stride:1-1;padding:0-0-0-0;dilation:1;groups:1;bias_used:No"
PAPER_POOL = "id:2;type:Max;in_size:32-32-3;out_size:16-16-3;kernel:2-2;stride:2-2;padding:1-0-1-0;dilation:1;bias_used:No"


def test_paper_examples_round_trip_byte_identical():
    for text in (PAPER_CONV, PAPER_POOL):
        assert format_layer(parse_layer(text)) == text


def test_paper_examples_parse_to_expected_fields():
    conv, pool = parse_layer(PAPER_CONV), parse_layer(PAPER_POOL)
    assert isinstance(conv, ConvLayer) and conv.kernel == (1, 1) and conv.bias_used is False
    assert isinstance(pool, PoolLayer) and pool.type == "Max" and pool.padding == (1, 0, 1, 0)
    assert pool.out_size == (16, 16, 3)


def test_spaces_after_semicolons_are_tolerated():
    spaced = PAPER_POOL.replace(";", "; ")
    assert format_layer(parse_layer(spaced)) == PAPER_POOL


def test_fc_and_other_layers_round_trip():
    for text in ("id:9;in_size:512;out_size:10",
                 "id:3;name:BN;in_size:8-8-16;out_size:8-8-16;value:none",
                 "id:4;name:Add;in_size:8-8-16;out_size:8-8-16;value:1-3",
                 "id:5;name:Dropout;in_size:1-1-64;out_size:1-1-64;value:0.2;block:Head#1"):
        assert format_layer(parse_layer(text)) == text


def test_other_layer_sources():
    layer = parse_layer("id:4;name:Concat;in_size:8-8-16;out_size:8-8-48;value:1-2-3")
    assert isinstance(layer, OtherLayer) and layer.source_ids() == (1, 2, 3)
    assert parse_layer("id:5;name:ReLU;in_size:8-8-16;out_size:8-8-16;value:none").source_ids() == ()


def test_layer_fields_is_a_plain_dict_with_kind():
    fields = layer_fields(parse_layer(PAPER_POOL))
    assert fields["kind"] == "pool" and fields["type"] == "Max" and fields["padding"] == (1, 0, 1, 0)
    assert fields["block"] is None


def test_block_class_of_a_label():
    assert block_class("Bottleneck#3") == "Bottleneck" and block_class(None) is None
    assert {"Bottleneck", "Conv", "Linear"} <= set(BLOCK_CLASSES)


def test_encoding_re_exports_the_layer_level():
    """``from arch_gpt.encoding import ConvLayer, check_layer, ...`` keeps working: the same objects."""
    for name in arch_gpt.encoding.__all__:
        if name != "Architecture":
            assert getattr(arch_gpt.encoding, name) is getattr(layers, name), name


# ----------------------------------------------------------------------------- bad inputs
BAD_LAYERS = [
    ("unknown key", PAPER_CONV + ";color:red", "color"),
    ("missing key", PAPER_CONV.replace(";groups:1", ""), "groups"),
    ("non-integer id", PAPER_CONV.replace("id:1", "id:one"), "id"),
    ("zero id", PAPER_CONV.replace("id:1", "id:0"), "id"),
    ("non-integer size", PAPER_CONV.replace("in_size:32-32-3", "in_size:32-x-3"), "in_size"),
    ("wrong size arity", PAPER_CONV.replace("in_size:32-32-3", "in_size:32-32"), "in_size"),
    ("zero size", PAPER_CONV.replace("out_size:32-32-3", "out_size:32-0-3"), "out_size"),
    ("negative size", PAPER_CONV.replace("in_size:32-32-3", "in_size:32--32-3"), "in_size"),
    ("wrong kernel arity", PAPER_CONV.replace("kernel:1-1", "kernel:1-1-1"), "kernel"),
    ("wrong padding arity", PAPER_CONV.replace("padding:0-0-0-0", "padding:0-0"), "padding"),
    ("negative padding", PAPER_CONV.replace("padding:0-0-0-0", "padding:0-0-0--1"), "padding"),
    ("bad bias", PAPER_CONV.replace("bias_used:No", "bias_used:maybe"), "bias_used"),
    ("bad pool type", PAPER_POOL.replace("type:Max", "type:Median"), "type"),
    ("zero dilation", PAPER_CONV.replace("dilation:1", "dilation:0"), "dilation"),
    ("inconsistent conv out_size", PAPER_CONV.replace("out_size:32-32-3", "out_size:30-30-3"), "out_size"),
    ("inconsistent pool out_size", PAPER_POOL.replace("out_size:16-16-3", "out_size:8-8-3"), "out_size"),
    ("pool changes channels", PAPER_POOL.replace("out_size:16-16-3", "out_size:16-16-6"), "out_size"),
    ("groups not dividing", PAPER_CONV.replace("groups:1", "groups:2"), "groups"),
    ("key without value separator", PAPER_CONV.replace("dilation:1", "dilation"), "dilation"),
    ("key given twice", PAPER_CONV + ";groups:1", "groups"),
    ("BN changes size", "id:3;name:BN;in_size:8-8-16;out_size:8-8-8;value:none", "out_size"),
    ("bad flatten", "id:3;name:Flatten;in_size:2-2-4;out_size:1-1-8;value:none", "out_size"),
    ("empty name", "id:3;name:;in_size:8-8-16;out_size:8-8-16;value:none", "name"),
    ("fc non-integer", "id:9;in_size:512;out_size:ten", "out_size"),
]


@pytest.mark.parametrize("text,fld", [(t, f) for _, t, f in BAD_LAYERS], ids=[c for c, _, _ in BAD_LAYERS])
def test_bad_layer_names_the_field(text, fld):
    with pytest.raises(ArchitectureError) as info:
        parse_layer(text)
    assert isinstance(info.value, ValueError) and isinstance(info.value, UserInputError)
    assert info.value.field == fld
    assert f"field '{fld}'" in str(info.value)


# ----------------------------------------------------------------------------- property test
@st.composite
def conv_layers(draw):
    h, w = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    groups = draw(st.sampled_from([1, 2, 4]))
    c, oc = groups * draw(st.integers(1, 16)), groups * draw(st.integers(1, 16))
    k = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad = tuple(draw(st.integers(0, 3)) for _ in range(4))
    d = draw(st.integers(1, 2))
    oh, ow = conv_out_hw((h, w), k, s, pad, d)
    if oh < 1 or ow < 1:
        k, pad, d = (1, 1), (0, 0, 0, 0), 1
        oh, ow = conv_out_hw((h, w), k, s, pad, d)
    return ConvLayer(draw(st.integers(1, 999)), (h, w, c), (oh, ow, oc), k, s, pad, d, groups,
                     draw(st.booleans()), block=draw(st.sampled_from([None, "Bottleneck#3", "Conv#1"])))


@st.composite
def pool_layers(draw):
    h, w, c = draw(st.integers(3, 64)), draw(st.integers(3, 64)), draw(st.integers(1, 64))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad = tuple(draw(st.integers(0, k[1 if i < 2 else 0] // 2)) for i in range(4))
    oh, ow = conv_out_hw((h, w), k, s, pad, 1)
    return PoolLayer(draw(st.integers(1, 999)), draw(st.sampled_from(["Max", "Avg"])), (h, w, c), (oh, ow, c),
                     k, s, pad)


@settings(max_examples=150, deadline=None)
@given(st.one_of(conv_layers(), pool_layers(),
                 st.builds(FCLayer, st.integers(1, 999), st.integers(1, 4096), st.integers(1, 4096))))
def test_random_valid_layers_round_trip(layer):
    text = format_layer(layer)
    assert parse_layer(text) == layer
    assert format_layer(parse_layer(text.replace(";", "; "))) == text


def test_the_language_imports_without_torch():
    """The lazy torch imports in ``Architecture.from_module``/``to_module`` exist for this: the language stays light."""
    code = ("import sys, arch_gpt, arch_gpt.encoding, arch_gpt.layers, arch_gpt.torch_io\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- limits and text fields
def test_every_number_is_limited_to_max_size():
    assert layers.MAX_SIZE == 2 ** 24
    edge = PAPER_CONV.replace("in_size:32-32-3;out_size:32-32-3", f"in_size:{2 ** 24}-1-3;out_size:{2 ** 24}-1-3")
    assert parse_layer(edge).in_size == (2 ** 24, 1, 3)
    with pytest.raises(ArchitectureError, match=r"2\*\*24") as info:
        parse_layer(edge.replace(str(2 ** 24), str(2 ** 24 + 1)))
    assert info.value.field == "in_size"
    with pytest.raises(ArchitectureError) as info:
        layers.check_layer(FCLayer(1, 2 ** 30, 10))
    assert info.value.field == "in_size"


@pytest.mark.parametrize("text,fld", [
    (PAPER_CONV.replace("id:1", "id:+1"), "id"),
    (PAPER_CONV.replace("id:1", "id:1_000"), "id"),
    (PAPER_CONV.replace("id:1", "id:" + "9" * 5000), "id"),
    ("id:3;name:ReLU;in_size:8-8-16;out_size:8-8-16;value:", "value"),
    ("id:3;name:ReLU;in_size:8-8-16;out_size:8-8-16;value:none;block:", "block"),
    ("id:3;name:Add;in_size:8-8-16;out_size:8-8-16;value:1-x", "value"),
    ("id:3;name:Add;in_size:8-8-16;out_size:8-8-16;value:-1", "value"),
])
def test_more_bad_fields(text, fld):
    with pytest.raises(ArchitectureError) as info:
        parse_layer(text)
    assert info.value.field == fld and len(str(info.value)) < 400


@pytest.mark.parametrize("layer,fld", [
    (OtherLayer(1, "Re;LU", (2, 2, 2), (2, 2, 2)), "name"),
    (OtherLayer(1, "ReLU\nid:2", (2, 2, 2), (2, 2, 2)), "name"),
    (OtherLayer(1, "ReLU", (2, 2, 2), (2, 2, 2), "0.1\u2028x"), "value"),
    (OtherLayer(1, "ReLU", (2, 2, 2), (2, 2, 2), " 0.1"), "value"),
    (OtherLayer(1, "ReLU", (2, 2, 2), (2, 2, 2), block="a;b"), "block"),
    (OtherLayer(1, "ReLU", (2, 2, 2), (2, 2, 2), block=""), "block"),
    (ConvLayer(1, (4, 4, 3), (4, 4, 3), (1, 1), bias_used="No"), "bias_used"),
    (ConvLayer(1, (4, 4, 3), (4, 4, 3), (1, 1), padding=(0, 0)), "padding"),
    (PoolLayer(1, "Min", (4, 4, 3), (4, 4, 3), (1, 1), (1, 1)), "type"),
])
def test_format_refuses_a_layer_whose_text_would_not_read_back(layer, fld):
    with pytest.raises(ArchitectureError) as info:
        format_layer(layer)
    assert info.value.field == fld


def test_text_fields_with_colons_hashes_and_inner_spaces_round_trip():
    layer = OtherLayer(4, "My Op:v2", (2, 2, 2), (2, 2, 2), "p=0.5, mode:x#1", block="Custom Block#2")
    assert parse_layer(format_layer(layer)) == layer


def test_source_ids_of_a_bad_value_is_an_architecture_error():
    with pytest.raises(ArchitectureError) as info:
        OtherLayer(5, "Concat", (2, 2, 2), (2, 2, 4), "3,4").source_ids()
    assert (info.value.field, info.value.layer_id) == ("value", 5)
    assert OtherLayer(5, "Concat", (2, 2, 2), (2, 2, 4), "0-3").source_ids() == (0, 3)


def test_error_messages_are_one_bounded_line():
    err = ArchitectureError("x" * 5000 + "\nsecond line", field="name")
    assert "\n" not in str(err) and len(str(err)) < 400
