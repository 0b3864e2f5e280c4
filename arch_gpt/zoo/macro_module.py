"""The runnable ``nn.Module`` side of :mod:`arch_gpt.zoo.macro` (the same network it writes as layers), apart so
that writing layers never imports torch."""
from __future__ import annotations

import torch
from torch import nn

from arch_gpt.errors import UserInputError
from arch_gpt.zoo.macro import CHOICES, EXPANSION_KERNEL, HEAD_CHANNELS, STEM_CHANNELS, layer_plan, parse_code


class Identity(nn.Module):
    """Choice ``0``: the input itself, or a 1x1 conv (stride s) + BN where the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.downsample = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
                           if stride != 1 or c_in != c_out else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.downsample is None else self.downsample(x)


class InvertedResidual(nn.Module):
    """1x1 expand-BN-ReLU, depthwise kxk (stride s)-BN-ReLU, 1x1 project-BN; a shortcut when shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int, kernel: int):
        super().__init__()
        hidden = c_in * expansion
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.use_shortcut = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y + x if self.use_shortcut else y


def unit_module(digit: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """The module of one searchable layer."""
    if digit == "0":
        return Identity(c_in, c_out, stride)
    if digit not in EXPANSION_KERNEL:
        raise UserInputError(f"unknown NAS-Bench-Macro choice {digit!r}; choose one of: {', '.join(CHOICES)}")
    return InvertedResidual(c_in, c_out, stride, *EXPANSION_KERNEL[digit])


class MacroNetwork(nn.Module):
    """The NAS-Bench-Macro network of one code; ``units`` are its 8 searchable layers in order."""

    def __init__(self, code: str, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.code = parse_code(code)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, STEM_CHANNELS, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(STEM_CHANNELS), nn.ReLU())
        self.units = nn.ModuleList(unit_module(d, *plan) for d, plan in zip(code, layer_plan()))
        last = layer_plan()[-1][1]
        self.head = nn.Sequential(nn.Conv2d(last, HEAD_CHANNELS, 1, bias=False), nn.BatchNorm2d(HEAD_CHANNELS),
                                  nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for unit in self.units:
            x = unit(x)
        return self.classifier(self.head(x))
