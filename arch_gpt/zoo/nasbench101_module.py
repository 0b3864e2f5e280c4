"""A NAS-Bench-101 cell expanded into the full network as a runnable ``nn.Module`` (the same network as
:func:`arch_gpt.zoo.nasbench101_network.cell_to_architecture` writes as layers)."""
from __future__ import annotations

import torch
from torch import nn

from arch_gpt.encoding import Size
from arch_gpt.zoo.nasbench101_cells import CONV3X3, MAXPOOL3X3, Cell
from arch_gpt.zoo.nasbench101_network import BN_EPSILON, BN_MOMENTUM, vertex_channels


class ConvBNReLU(nn.Sequential):
    """Conv (no bias, 'same' padding) + BN + ReLU, NAS-Bench-101's basic op."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int):
        super().__init__(nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(out_channels, eps=BN_EPSILON, momentum=1 - BN_MOMENTUM),
                         nn.ReLU())


class NB101Cell(nn.Module):
    """One NAS-Bench-101 cell (module) with ``in_channels`` → ``out_channels``."""

    def __init__(self, cell: Cell, in_channels: int, out_channels: int):
        super().__init__()
        m, n = cell.matrix, cell.num_vertices
        self.n = n
        self.matrix = [[bool(x) for x in row] for row in m]
        self.channels = vertex_channels(in_channels, out_channels, m)
        ch = self.channels
        self.proj = nn.ModuleList([ConvBNReLU(in_channels, ch[t], 1) if m[0, t] and t > 0 else nn.Identity()
                                   for t in range(n)])
        ops: list[nn.Module] = [nn.Identity()]
        for t in range(1, n - 1):
            op = cell.ops[t]
            ops.append(nn.MaxPool2d(3, 1, padding=1) if op == MAXPOOL3X3 else
                       ConvBNReLU(ch[t], ch[t], 3 if op == CONV3X3 else 1))
        self.ops = nn.ModuleList(ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, n, ch = self.matrix, self.n, self.channels
        values = [x]
        for t in range(1, n - 1):
            inputs = [values[s][:, :ch[t]] for s in range(1, t) if m[s][t]]
            if m[0][t]:
                inputs.append(self.proj[t](x))
            total = inputs[0]
            for extra in inputs[1:]:
                total = total + extra
            values.append(self.ops[t](total))
        concat = [values[v] for v in range(1, n - 1) if m[v][n - 1]]
        if not concat:
            return self.proj[n - 1](x)
        out = concat[0] if len(concat) == 1 else torch.cat(concat, dim=1)
        if m[0][n - 1]:
            out = out + self.proj[n - 1](x)
        return out


def cell_to_module(cell: Cell, input_size: Size = (32, 32, 3), stem_channels: int = 128, num_stacks: int = 3,
                   cells_per_stack: int = 3, num_classes: int = 10) -> nn.Module:
    """The runnable NAS-Bench-101 network of ``cell`` (same layers as :func:`cell_to_architecture`)."""
    cell = cell.pruned()
    layers: list[nn.Module] = [ConvBNReLU(input_size[2], stem_channels, 3)]
    channels = stem_channels
    for stack in range(num_stacks):
        in_channels = channels
        if stack > 0:
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            channels *= 2
        for _ in range(cells_per_stack):
            layers.append(NB101Cell(cell, in_channels, channels))
            in_channels = channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)
