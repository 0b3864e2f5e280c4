"""PyTorch builders for the block space: every block is an instance of torchvision's own class.

Each block kind is named by the class that :func:`arch_gpt.torch_io.from_module` uses as its block label
(GPT-NAS Table 2), so the block classifier's output names a kind directly. ``KINDS`` maps a kind to its rules:
the allowed ``extra`` values (kernel or expansion ratio, see :data:`EXTRA_MEANING`), whether it may downsample,
and whether it keeps its input's channels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.efficientnet import MBConv, MBConvConfig
from torchvision.models.googlenet import Inception
from torchvision.models.regnet import ResBottleneckBlock
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.models.shufflenetv2 import InvertedResidual
from torchvision.ops.misc import Conv2dNormActivation, SqueezeExcitation

CHANNEL_MULTIPLE = 8  # every width is a multiple of this (Inception splits, RegNet group width 8)
REGNET_GROUP_WIDTH = 8


@dataclass(frozen=True)
class KindSpec:
    """What a block kind allows: ``extras`` choices, stride 2 or not, and whether out == in channels."""
    extras: tuple[int, ...] = (0,)
    can_downsample: bool = True
    keeps_channels: bool = False  # out_channels always equals in_channels
    keeps_channels_at_stride1: bool = False  # ShuffleNetV2's InvertedResidual


KINDS: dict[str, KindSpec] = {
    "Conv": KindSpec(extras=(1, 3, 5)),
    "Conv2dNormActivation": KindSpec(extras=(1, 3)),
    "BasicBlock": KindSpec(),
    "Bottleneck": KindSpec(),
    "InvertedResidual": KindSpec(keeps_channels_at_stride1=True),
    "MBConv": KindSpec(extras=(1, 4, 6)),
    "SqueezeExcitation": KindSpec(can_downsample=False, keeps_channels=True),
    "ResBottleneckBlock": KindSpec(extras=(0, 1)),
    "Inception": KindSpec(can_downsample=False),
    "MaxPool": KindSpec(keeps_channels=True),
    "BN": KindSpec(can_downsample=False, keeps_channels=True),
    "ReLU": KindSpec(can_downsample=False, keeps_channels=True),
}
EXTRA_MEANING = {"Conv": "kernel", "Conv2dNormActivation": "kernel", "MBConv": "expand ratio",
                 "ResBottleneckBlock": "1 = RegNetY (SE 0.25), 0 = RegNetX"}


def keeps_channels(kind: str, stride: int) -> bool:
    """Whether a block of ``kind`` at ``stride`` must output its input's channel count."""
    spec = KINDS[kind]
    return spec.keeps_channels or (spec.keeps_channels_at_stride1 and stride == 1)


def make_block(kind: str, in_c: int, out_c: int, stride: int, extra: int) -> nn.Module:
    """One block of ``kind`` from its torchvision class, mapping ``in_c`` to ``out_c`` channels at ``stride``."""
    if kind == "Conv":
        return nn.Conv2d(in_c, out_c, extra, stride, extra // 2, bias=False)
    if kind == "Conv2dNormActivation":
        return Conv2dNormActivation(in_c, out_c, kernel_size=extra, stride=stride)
    if kind == "BasicBlock":
        return BasicBlock(in_c, out_c, stride, _downsample(in_c, out_c, stride))
    if kind == "Bottleneck":
        return Bottleneck(in_c, out_c // Bottleneck.expansion, stride, _downsample(in_c, out_c, stride))
    if kind == "InvertedResidual":
        return InvertedResidual(in_c, out_c, stride)
    if kind == "MBConv":
        return MBConv(MBConvConfig(extra, 3, stride, in_c, out_c, 1), 0.0, nn.BatchNorm2d)
    if kind == "SqueezeExcitation":
        return SqueezeExcitation(in_c, max(1, in_c // 4))
    if kind == "ResBottleneckBlock":
        return ResBottleneckBlock(in_c, out_c, stride, nn.BatchNorm2d, nn.ReLU, REGNET_GROUP_WIDTH, 1.0,
                                  0.25 if extra else None)
    if kind == "Inception":
        c1, c3, c5 = out_c // 4, out_c // 2, out_c // 8
        return Inception(in_c, c1, max(1, c3 // 2), c3, max(1, c5 // 2), c5, out_c - c1 - c3 - c5)
    if kind == "MaxPool":
        return nn.MaxPool2d(3, stride, 1)
    if kind == "BN":
        return nn.BatchNorm2d(in_c)
    if kind == "ReLU":
        return nn.ReLU()
    raise KeyError(f"unknown block kind {kind!r}")


def _downsample(in_c: int, out_c: int, stride: int) -> nn.Module | None:
    """ResNet's projection shortcut (conv1x1 + BN) when the shape changes."""
    if stride == 1 and in_c == out_c:
        return None
    return nn.Sequential(nn.Conv2d(in_c, out_c, 1, stride, bias=False), nn.BatchNorm2d(out_c))


class BlockNetwork(nn.Module):
    """Stem (Conv2dNormActivation 3x3) → the searched blocks → global average pool → linear classifier."""

    def __init__(self, stem: nn.Module, blocks: list[nn.Module], out_channels: int, num_classes: int):
        super().__init__()
        self.stem = stem
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(out_channels, num_classes)

    @property
    def units(self) -> list[nn.Module]:
        """The searched blocks, one per GPT unit (for training only the predicted blocks)."""
        return list(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.pool(self.blocks(self.stem(x)))))


def make_stem(in_c: int, out_c: int, stride: int) -> nn.Module:
    """The fixed stem: conv3x3-BN-ReLU, stride 2 only for large inputs."""
    return Conv2dNormActivation(in_c, out_c, kernel_size=3, stride=stride)

