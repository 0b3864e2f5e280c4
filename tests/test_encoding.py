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




# ----------------------------------------------------------------------------- checks on whole architectures
def test_check_accepts_the_toy_and_returns_it():
    arch = _arch()
    assert arch.check() is arch


def test_parsing_refuses_an_input_that_nothing_gives(tmp_path):
    text = _arch().to_text().replace("id:8;in_size:16;", "id:8;in_size:99;")
    path = tmp_path / "bad.arch"
    path.write_text(text)
    with pytest.raises(ArchitectureError) as info:
        Architecture.load(path)
    assert (info.value.field, info.value.layer_id, info.value.line) == ("in_size", 8, 9)  # line 1 is the name
    assert f"{path}:9" in str(info.value)


def test_json_continuity_error_names_the_layer_index():
    data = _arch().to_dict()
    data["layers"][4] = data["layers"][4].replace("value:4-4", "value:4-9")
    with pytest.raises(ArchitectureError) as info:
        Architecture.from_dict(data, source="a.json")
    assert "a.json layers[4]" in str(info.value) and info.value.field == "value"


def test_architecture_built_in_python_is_a_container_until_checked_or_saved(tmp_path):
    arch = Architecture((_arch()[0], OtherLayer(2, "Add", (32, 32, 16), (32, 32, 16), "1-7")))
    with pytest.raises(ArchitectureError, match="source 7"):
        arch.check()
    with pytest.raises(ArchitectureError, match="source 7"):
        arch.save(tmp_path / "x.arch")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["two\nlines", "semi;colon ok? no: newline\r", " padded"])
def test_a_name_that_would_not_read_back_is_refused(name):
    with pytest.raises(ArchitectureError) as info:
        Architecture(_arch().layers, name=name)
    assert info.value.field == "name"


def test_tricky_but_valid_text_survives_save_and_load(tmp_path):
    arch = Architecture((
        ConvLayer(1, (8, 8, 3), (8, 8, 3), (1, 1), block="My Block#1"),
        OtherLayer(2, "Drop out", (8, 8, 3), (8, 8, 3), "p: 0.5 # not a comment", block="x:y"),
    ), name="net; v2 # draft")
    for name in ("t.arch", "t.json"):
        loaded = Architecture.load(arch.save(tmp_path / name))
        assert loaded == arch and len(loaded) == 2


def test_an_empty_name_is_none():
    assert Architecture(_arch().layers, name="").name is None


def test_load_reads_json_by_suffix_and_names_the_file(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]\n")
    with pytest.raises(ArchitectureError, match="'layers'") as info:
        Architecture.load(path)
    assert str(path) in str(info.value)


def test_load_of_missing_and_directory_paths(tmp_path):
    with pytest.raises(ArchitectureError, match="file not found"):
        Architecture.load(tmp_path / "missing.arch")
    with pytest.raises(ArchitectureError, match="directory"):
        Architecture.load(tmp_path)


def test_save_under_a_file_names_it(tmp_path):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(ArchitectureError, match="is a file, not a folder"):
        _arch().save(tmp_path / "file" / "a.arch")
    assert (tmp_path / "file").read_text() == "mine"


class _MeanBetweenConvs:
    """Data-dependent control flow (so the hook tracer runs) and a functional mean it cannot see."""

    @staticmethod
    def build():
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1)

            def forward(self, x):
                if x.sum() > -1:
                    x = self.a(x)
                return self.b(torch.mean(x, dim=(2, 3), keepdim=True))

        return Net()


def test_a_trace_that_does_not_connect_is_refused():
    with pytest.raises(ArchitectureError, match="do not connect") as info:
        Architecture.from_module(_MeanBetweenConvs.build(), input_size=(3, 6, 6))
    assert (info.value.field, info.value.layer_id) == ("in_size", 2)


def test_a_file_too_large_to_be_an_architecture_is_not_read(tmp_path):
    from arch_gpt.encoding import MAX_FILE_BYTES

    path = tmp_path / "huge.arch"
    with open(path, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(ArchitectureError, match="too large") as info:
        Architecture.load(path)
    assert str(path) in str(info.value)
