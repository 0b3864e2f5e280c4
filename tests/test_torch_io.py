"""Tests of arch_gpt.torch_io: tracing torchvision models (weights=None) and building modules back."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from arch_gpt.encoding import Architecture, ArchitectureError, OtherLayer, check_layer
from arch_gpt.torch_build import ArchitectureModule
from arch_gpt.torch_io import BLOCK_CLASSES, LAYER_BLOCKS, MODULE_BLOCKS, block_class, from_module, to_module
from arch_gpt.torch_trace import trace_layers
from arch_gpt.zoo.torchvision_models import trace_table2_model

# layer count and final out_size at 32x32 (the FC to 1000 classes)
EXPECTED = {"resnet18": 69, "efficientnet_b0": 249, "googlenet": 197, "shufflenet_v2_x1_0": 210,
            "regnet_y_400mf": 270}


@pytest.fixture(scope="module")
def traces() -> dict[str, Architecture]:
    return {name: trace_table2_model(name, input_size=32) for name in EXPECTED}


def _by_id(arch: Architecture) -> dict:
    return {layer.id: layer for layer in arch.layers}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_trace_layer_count_and_final_size(traces, name):
    arch = traces[name]
    assert len(arch) == EXPECTED[name]
    assert arch.name == name
    assert arch.input_size == (32, 32, 3)
    last = arch.layers[-1]
    assert (last.kind, last.out_size) == ("fc", 1000)
    assert [layer.id for layer in arch.layers] == list(range(1, len(arch) + 1))
    for layer in arch.layers:
        check_layer(layer)
        assert block_class(layer.block) in BLOCK_CLASSES


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_trace_graph_ops_name_earlier_sources_with_matching_sizes(traces, name):
    arch = traces[name]
    layers = _by_id(arch)
    ops = [layer for layer in arch.layers if isinstance(layer, OtherLayer) and layer.source_ids()]
    assert ops, "every one of these models has adds, products or concats"
    for op in ops:
        sources = [layers[s] for s in op.source_ids()]
        assert all(s.id < op.id for s in sources)
        if op.name == "Concat":
            assert sum(s.out_size[2] for s in sources) == op.out_size[2]
            assert all(s.out_size[:2] == op.out_size[:2] for s in sources)
        elif op.name == "Add":
            assert all(s.out_size == op.out_size for s in sources)


def test_resnet18_residual_adds(traces):
    layers = _by_id(traces["resnet18"])
    # first BasicBlock: bn2 (9) + block input (maxpool, 4); first downsampling block: bn2 (23) + downsample bn (25)
    assert (layers[10].name, layers[10].value) == ("Add", "9-4")
    assert (layers[4].kind, layers[4].type) == ("pool", "Max")
    assert (layers[26].name, layers[26].value) == ("Add", "23-25")
    assert (layers[24].kind, layers[24].kernel, layers[24].stride) == ("conv", (1, 1), (2, 2))
    assert layers[24].in_size == (8, 8, 64) and layers[24].out_size == (4, 4, 128)
    adds = [layer for layer in layers.values() if getattr(layer, "name", None) == "Add"]
    assert len(adds) == 8


def test_googlenet_inception_concats(traces):
    arch = traces["googlenet"]
    layers = _by_id(arch)
    concats = [layer for layer in arch.layers if getattr(layer, "name", None) == "Concat"]
    assert len(concats) == 9
    first = concats[0]
    assert len(first.source_ids()) == 4
    assert first.out_size == (4, 4, 256)  # inception3a: 64 + 128 + 32 + 32
    assert [layers[s].out_size[2] for s in first.source_ids()] == [64, 128, 32, 32]
    assert first.block == "Inception#1"


def test_shufflenet_chunk_concat_and_shuffle(traces):
    arch = traces["shufflenet_v2_x1_0"]
    layers = _by_id(arch)
    names = [getattr(layer, "name", None) for layer in arch.layers]
    assert names.count("ChannelShuffle") == 16 and names.count("Concat") == 16
    first_chunk = names.index("Chunk")
    a, b = arch.layers[first_chunk], arch.layers[first_chunk + 1]
    assert (a.value, b.value) == ("0/2", "1/2")
    assert a.out_size[2] * 2 == a.in_size[2]
    concat = next(layer for layer in arch.layers[first_chunk:] if getattr(layer, "name", None) == "Concat")
    assert concat.source_ids()[0] == a.id  # the untouched half goes straight to the concat
    shuffle = layers[concat.id + 1]
    assert (shuffle.name, shuffle.value) == ("ChannelShuffle", "2")


def test_efficientnet_squeeze_excitation_and_stochastic_depth(traces):
    arch = traces["efficientnet_b0"]
    layers = _by_id(arch)
    muls = [layer for layer in arch.layers if getattr(layer, "name", None) == "Mul"]
    assert len(muls) == 16
    gate, scaled = (layers[s] for s in muls[0].source_ids())
    assert gate.name == "Sigmoid" and gate.out_size[:2] == (1, 1)
    assert scaled.out_size == muls[0].out_size
    depths = [layer for layer in arch.layers if getattr(layer, "name", None) == "StochasticDepth"]
    assert len(depths) == 9 and all(float(d.value) > 0 for d in depths)
    assert layers[depths[0].id + 1].name == "Add"


def test_block_labels(traces):
    resnet = traces["resnet18"]
    assert resnet.blocks[:4] == ("Conv#1", "BN#1", "ReLU#1", "MaxPool#1")
    assert resnet.blocks[-3:] == ("AvgPool#1", "Other#1", "Linear#1")
    assert {b for b in resnet.blocks if block_class(b) == "BasicBlock"} == {f"BasicBlock#{k}" for k in range(1, 9)}
    assert traces["regnet_y_400mf"].blocks[:3] == ("SimpleStemIN#1",) * 3
    assert "ResBottleneckBlock#16" in traces["regnet_y_400mf"].blocks
    effnet = traces["efficientnet_b0"]
    assert effnet.blocks[0] == "Conv2dNormActivation#1" and "MBConv#16" in effnet.blocks
    assert traces["googlenet"].blocks[:3] == ("BasicConv2d#1",) * 3
    assert "InvertedResidual#16" in traces["shufflenet_v2_x1_0"].blocks


def test_block_class_and_class_lists():
    assert block_class("Bottleneck#3") == "Bottleneck"
    assert block_class(None) is None
    assert BLOCK_CLASSES == MODULE_BLOCKS + LAYER_BLOCKS
    assert {"MBConv", "Inception", "SimpleStemIN", "Conv", "Other"} <= set(BLOCK_CLASSES)


CHAIN = """\
id:1;in_size:32-32-3;out_size:32-32-3;kernel:1-1;stride:1-1;padding:0-0-0-0;dilation:1;groups:1;bias_used:No
id:2;type:Max;in_size:32-32-3;out_size:16-16-3;kernel:2-2;stride:2-2;padding:1-0-1-0;dilation:1;bias_used:No
id:3;in_size:16-16-3;out_size:8-8-16;kernel:3-3;stride:2-2;padding:0-1-0-1;dilation:1;groups:1;bias_used:Yes;block:Stem#1
id:4;name:BN;in_size:8-8-16;out_size:8-8-16;value:none;block:Stem#1
id:5;name:ReLU6;in_size:8-8-16;out_size:8-8-16;value:none
id:6;in_size:8-8-16;out_size:8-8-16;kernel:3-3;stride:1-1;padding:2-2-2-2;dilation:2;groups:16;bias_used:No
id:7;type:Avg;in_size:8-8-16;out_size:4-4-16;kernel:3-3;stride:2-2;padding:1-1-1-1;dilation:1;bias_used:No
id:8;name:Dropout;in_size:4-4-16;out_size:4-4-16;value:0.25
id:9;name:AdaptiveAvgPool;in_size:4-4-16;out_size:1-1-16;value:1-1
id:10;name:Flatten;in_size:1-1-16;out_size:1-1-16;value:none
id:11;in_size:16;out_size:10
id:12;name:BN;in_size:1-1-10;out_size:1-1-10;value:none
"""


def test_chain_round_trip_and_forward():
    arch = Architecture.from_text(CHAIN)
    module = to_module(arch)
    assert module(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert from_module(module, input_size=(3, 32, 32)) == arch
    assert Architecture.from_module(arch.to_module(), input_size=(3, 32, 32)) == arch


def test_tracer_and_builder_work_at_the_layer_level():
    """torch_trace returns plain layers and torch_build takes anything with ``layers`` and ``input_size``."""
    arch = Architecture.from_text(CHAIN)
    module = ArchitectureModule(SimpleNamespace(layers=list(arch.layers), input_size=arch.input_size)).eval()
    assert module(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    assert trace_layers(module, (3, 32, 32)) == list(arch.layers)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_traced_graph_round_trip_and_forward(traces, name):
    """Adds, SE products, concats, chunks, shuffles and ceil-mode pools all build back and re-trace identically."""
    arch = traces[name]
    module = to_module(arch).eval()
    with torch.no_grad():
        assert module(torch.zeros(1, 3, 32, 32)).shape == (1, 1000)
    assert from_module(module, name=name) == arch


def _other(layer_id, name, in_size, out_size, value="none"):
    return OtherLayer(layer_id, name, in_size, out_size, value)


def test_to_module_rejects_unknown_add_source():
    base = Architecture.from_text(CHAIN).layers[:1]
    arch = Architecture(base + (_other(2, "Add", (32, 32, 3), (32, 32, 3), "1-7"),))
    with pytest.raises(ArchitectureError) as err:
        to_module(arch)
    assert err.value.field == "value" and err.value.layer_id == 2


def test_to_module_rejects_add_without_sources():
    arch = Architecture((_other(1, "Add", (32, 32, 3), (32, 32, 3)),))
    with pytest.raises(ArchitectureError) as err:
        to_module(arch)
    assert err.value.field == "value"


def test_to_module_rejects_concat_with_wrong_channels():
    base = Architecture.from_text(CHAIN).layers[:1]
    arch = Architecture(base + (_other(2, "Concat", (32, 32, 3), (32, 32, 7), "0-1"),))
    with pytest.raises(ArchitectureError) as err:
        to_module(arch)
    assert err.value.field == "value"


def test_to_module_rejects_unreachable_input_size():
    arch = Architecture((_other(1, "ReLU", (32, 32, 3), (32, 32, 3)), _other(2, "ReLU", (9, 9, 9), (9, 9, 9))))
    with pytest.raises(ArchitectureError) as err:
        to_module(arch)
    assert (err.value.field, err.value.layer_id) == ("in_size", 2)


def test_to_module_rejects_unknown_other_name():
    arch = Architecture((_other(1, "Wobble", (32, 32, 3), (32, 32, 3)),))
    with pytest.raises(ArchitectureError) as err:
        to_module(arch)
    assert err.value.field == "name"


def test_to_module_rejects_bad_dropout_value():
    arch = Architecture((_other(1, "Dropout", (32, 32, 3), (32, 32, 3), "lots"),))
    with pytest.raises(ArchitectureError) as err:
        to_module(arch)
    assert err.value.field == "value"


class _DataDependent(nn.Module):
    """Control flow on tensor values: torch.fx cannot trace it, so the hook tracer takes over."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x):
        if x.mean() > -1:
            x = self.conv(x)
        return self.act(x)


def test_untraceable_module_falls_back_to_hooks():
    module = _DataDependent().train()
    arch = from_module(module, input_size=(3, 8, 8))
    assert [layer.kind for layer in arch.layers] == ["conv", "other"]
    assert arch.layers[0].out_size == (8, 8, 8) and arch.layers[0].bias_used
    assert arch.blocks == ("Conv#1", "ReLU#1")
    assert module.training  # the caller's mode is restored


def test_input_too_small_is_a_clear_error():
    module = nn.Sequential(nn.Conv2d(3, 4, 5))
    with pytest.raises(ArchitectureError) as err:
        from_module(module, input_size=(3, 2, 2))
    assert err.value.field == "input_size" and "(1, 3, 2, 2)" in str(err.value)


@pytest.mark.parametrize("bad", [(3, 32), (3, 0, 32), (3, 32.0, 32)])
def test_bad_input_size_is_rejected(bad):
    with pytest.raises(ArchitectureError) as err:
        from_module(nn.ReLU(), input_size=bad)
    assert err.value.field == "input_size"


def test_trace_uses_the_module_dtype():
    module = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.BatchNorm2d(4)).double()
    arch = from_module(module, input_size=(3, 9, 9))
    assert [layer.out_size for layer in arch.layers] == [(4, 4, 4), (4, 4, 4)]


class _FunctionalOps(nn.Module):
    """Functional pools, relu and a flatten: traced as pool/other layers, not as opaque ops."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(self.conv(x), 2)
        x = torch.nn.functional.avg_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.flatten(torch.nn.functional.relu(x), 1)


def test_functional_ops_become_layers():
    arch = from_module(_FunctionalOps(), input_size=(3, 8, 8))
    kinds = [(layer.kind, getattr(layer, "type", None) or getattr(layer, "name", None)) for layer in arch.layers]
    assert kinds == [("conv", None), ("pool", "Max"), ("pool", "Avg"), ("other", "ReLU"), ("other", "Flatten")]
    assert arch.layers[1].stride == (2, 2) and arch.layers[2].padding == (1, 1, 1, 1)
    assert arch.layers[-1].out_size == (1, 1, 96)
    assert from_module(to_module(arch), input_size=(3, 8, 8)) == arch
