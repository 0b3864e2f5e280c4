"""Whole architectures: text/JSON round trips, renumbering, block labels, files, errors naming line and layer.

One layer's text form is tested in test_layers.py."""
from __future__ import annotations

import json

import pytest

from arch_gpt.encoding import Architecture, ArchitectureError, ConvLayer, FCLayer, OtherLayer, PoolLayer

PAPER_CONV = "id:1;in_size:32-32-3;out_size:32-32-3;kernel:1-1;stride:1-1;padding:0-0-0-0;dilation:1;groups:1;bias_used:No"
PAPER_POOL = "id:2;type:Max;in_size:32-32-3;out_size:16-16-3;kernel:2-2;stride:2-2;padding:1-0-1-0;dilation:1;bias_used:No"


def _arch() -> Architecture:
    return Architecture((
        ConvLayer(1, (32, 32, 3), (32, 32, 16), (3, 3), (1, 1), (1, 1, 1, 1), block="Conv#1"),
        OtherLayer(2, "BN", (32, 32, 16), (32, 32, 16), block="BN#1"),
        OtherLayer(3, "ReLU", (32, 32, 16), (32, 32, 16), block="ReLU#1"),
        PoolLayer(4, "Max", (32, 32, 16), (16, 16, 16), (2, 2), (2, 2)),
        OtherLayer(5, "Add", (16, 16, 16), (16, 16, 16), value="4-4"),
        OtherLayer(6, "AdaptiveAvgPool", (16, 16, 16), (1, 1, 16), value="1-1"),
        OtherLayer(7, "Flatten", (1, 1, 16), (1, 1, 16)),
        FCLayer(8, 16, 10),
    ), name="toy")


def test_architecture_text_and_json_round_trip():
    arch = _arch()
    assert Architecture.from_text(arch.to_text()) == arch
    assert Architecture.from_json(arch.to_json()) == arch
    assert arch.to_text().startswith("# name: toy\n")
    assert arch.blocks[:3] == ("Conv#1", "BN#1", "ReLU#1")
    assert arch.input_size == (32, 32, 3)


def test_architecture_save_load_text_and_json(tmp_path):
    arch = _arch()
    for name in ("a.arch", "a.json"):
        path = arch.save(tmp_path / name)
        assert Architecture.load(path) == arch
    assert json.loads((tmp_path / "a.json").read_text())["name"] == "toy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.arch", "a.json"]  # no temporary file left


def test_renumbered_remaps_sources():
    arch = _arch()
    shifted = arch.renumbered(start=10)
    assert [l.id for l in shifted] == list(range(10, 18))
    assert shifted[4].value == "13-13"
    assert shifted.renumbered() == arch


def test_with_blocks_requires_one_label_per_layer():
    with pytest.raises(ArchitectureError, match="block"):
        _arch().with_blocks(["x"])


def test_error_names_line_and_layer_in_a_file(tmp_path):
    path = tmp_path / "bad.arch"
    path.write_text(PAPER_CONV + "\n\n" + PAPER_POOL.replace("type:Max", "type:Median") + "\n")
    with pytest.raises(ArchitectureError) as info:
        Architecture.load(path)
    message = str(info.value)
    assert f"{path}:3" in message and "layer id 2" in message and "field 'type'" in message


def test_duplicate_id_names_both_lines():
    with pytest.raises(ArchitectureError, match="line 1") as info:
        Architecture.from_text(PAPER_CONV + "\n" + PAPER_CONV + "\n", source="dup.arch")
    assert info.value.line == 2 and info.value.field == "id"


def test_file_that_is_not_an_architecture(tmp_path):
    empty = tmp_path / "empty.arch"
    empty.write_text("# just a comment\n\n")
    with pytest.raises(ArchitectureError, match="not an architecture"):
        Architecture.load(empty)
    binary = tmp_path / "weights.bin"
    binary.write_bytes(b"\x80\x81\xff\x00")
    with pytest.raises(ArchitectureError, match="not a text file"):
        Architecture.load(binary)


def test_bad_json_architecture(tmp_path):
    with pytest.raises(ArchitectureError, match="not valid JSON"):
        Architecture.from_json("{", source="x.json")
    with pytest.raises(ArchitectureError, match="'layers'"):
        Architecture.from_json('{"name": "x"}', source="x.json")
    with pytest.raises(ArchitectureError, match=r"layers\[1\]") as info:
        Architecture.from_json(json.dumps({"layers": [PAPER_CONV, "id:2;bogus:1"]}), source="x.json")
    assert info.value.field == "bogus"


