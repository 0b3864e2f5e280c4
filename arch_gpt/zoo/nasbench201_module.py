"""The runnable ``nn.Module`` side of :mod:`arch_gpt.zoo.nasbench201` (the same network it writes as layers), apart so
that writing layers never imports torch."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from arch_gpt.errors import UserInputError
from arch_gpt.zoo.nasbench201 import EDGES, OPS, arch_str


def _relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out))


class Zero(nn.Module):
    """The ``none`` op: the input times zero (keeps the shape and the graph)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def op_module(op: str, c: int) -> nn.Module:
    """The module of one edge op at ``c`` channels."""
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    if op in ("nor_conv_1x1", "nor_conv_3x3"):
        return _relu_conv_bn(c, c, 1 if op == "nor_conv_1x1" else 3)
    raise UserInputError(f"unknown NAS-Bench-201 op {op!r}; choose one of: {', '.join(OPS)}")


class InferCell(nn.Module):
    """Nodes 1..3 sum their incoming edges (in arch-string order); the cell's output is node 3."""

    def __init__(self, ops: Sequence[str], c: int):
        super().__init__()
        self.edges = nn.ModuleList(op_module(op, c) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for to in (1, 2, 3):
            total = None
            for i, (t, frm) in enumerate(EDGES):
                if t == to:
                    y = self.edges[i](nodes[frm])
                    total = y if total is None else total + y
            nodes.append(total)
        return nodes[3]


class ResNetBasicblock(nn.Module):
    """The stride-2 reduction block between stages, with an AvgPool2d(2) + Conv1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = _relu_conv_bn(c_in, c_out, 3, stride=2)
        self.conv_b = _relu_conv_bn(c_out, c_out, 3)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.downsample(x)


class NB201Network(nn.Module):
    """The NAS-Bench-201 skeleton around one cell."""

    def __init__(self, ops: Sequence[str], num_classes: int = 10, channels: int = 16, cells_per_stage: int = 5,
                 in_channels: int = 3):
        super().__init__()
        self.arch_str = arch_str(ops)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)]
        for stage in range(3):
            width = channels * 2 ** stage
            if stage:
                layers.append(ResNetBasicblock(width // 2, width))
            layers.extend(InferCell(ops, width) for _ in range(cells_per_stage))
        layers += [nn.BatchNorm2d(channels * 4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
