"""Tests of arch_gpt.zoo.torchvision_models: the 36 Table-2 architectures (weights=None, nothing downloaded)."""
from __future__ import annotations

import pytest

from arch_gpt.errors import UserInputError
from arch_gpt.torch_io import BLOCK_CLASSES, block_class
from arch_gpt.zoo.torchvision_models import (
    TABLE2_MODELS, UnknownModelError, build_torchvision_model, family_of, list_table2_models, trace_table2_model,
)


def test_family_counts_match_table2():
    counts = {family: len(names) for family, names in TABLE2_MODELS.items()}
    assert counts == {"EfficientNet": 8, "GoogLeNet": 1, "RegNet": 14, "ResNet": 5, "ResNeXt": 2,
                      "ShuffleNetV2": 4, "Wide-ResNet": 2}
    names = list_table2_models()
    assert len(names) == 36 == len(set(names))
    assert names[0] == "efficientnet_b0" and names[-1] == "wide_resnet101_2"


def test_all_names_are_torchvision_models():
    from torchvision import models

    assert set(list_table2_models()) <= set(models.list_models(module=models))


def test_family_of():
    assert family_of("regnet_y_400mf") == "RegNet"
    assert family_of("wide_resnet50_2") == "Wide-ResNet"


def test_unknown_model_is_a_user_error():
    with pytest.raises(UnknownModelError) as err:
        trace_table2_model("alexnet")
    assert "alexnet" in str(err.value)
    with pytest.raises(UnknownModelError):
        build_torchvision_model("no_such_net")


@pytest.mark.parametrize("size", [8, 31, "32"])
def test_too_small_or_non_integer_input_size_is_rejected(size):
    with pytest.raises(UserInputError) as err:
        trace_table2_model("resnet18", input_size=size)
    assert "input_size" in str(err.value)


def test_trace_resnext_and_wide_resnet_have_bottlenecks():
    for name, groups in (("resnext50_32x4d", 32), ("wide_resnet50_2", 1)):
        arch = trace_table2_model(name)
        assert arch.name == name and len(arch) == 175
        classes = {block_class(b) for b in arch.blocks}
        assert "Bottleneck" in classes and classes <= set(BLOCK_CLASSES)
        grouped = [layer.groups for layer in arch.layers if layer.kind == "conv" and layer.kernel == (3, 3)]
        assert max(grouped) == groups


def test_trace_at_imagenet_size():
    arch = trace_table2_model("shufflenet_v2_x0_5", input_size=224)
    assert arch.input_size == (224, 224, 3)
    assert arch.layers[0].out_size == (112, 112, 24)
    assert (arch.layers[-1].kind, arch.layers[-1].out_size) == ("fc", 1000)


@pytest.mark.slow
def test_all_36_trace_with_block_labels_and_build_back():
    import torch

    from arch_gpt.torch_io import from_module, to_module

    for name in list_table2_models():
        arch = trace_table2_model(name)
        assert arch.layers[-1].out_size == 1000, name
        assert all(block_class(b) in BLOCK_CLASSES for b in arch.blocks), name
        module = to_module(arch).eval()
        assert from_module(module, name=name) == arch, name
        with torch.no_grad():
            assert module(torch.zeros(1, 3, 32, 32)).shape == (1, 1000), name
