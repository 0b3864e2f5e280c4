"""A NAS-Bench-101 cell expanded into the full network, as an Architecture and as a runnable nn.Module.

The network follows NAS-Bench-101's model builder: stem conv3x3 (128 channels) + BN + ReLU; 3 stacks of
3 cells; before stacks 2 and 3 a 2×2 max-pool with stride 2 and the channels doubled; global average
pool; a dense layer to the classes. Inside a cell the output's channels are split among the vertices that
feed it (remainder to the first ones), other vertices take the largest channel count of their successors;
a vertex sums its inputs (interior inputs truncated to its channels, the cell input through a 1×1
conv-BN-ReLU projection); the output concatenates its inputs and adds the projected cell input.

Architecture layout (execution order; a conv/pool/BN layer reads the layer written before it, except a
projection conv, which reads the cell input, and the first layer of a vertex, which reads that vertex's
Add or single input): per vertex ``Truncate`` layers (OtherLayer, drops the extra channel), the
projection Conv/BN/ReLU, ``Add`` (value = source ids) when it has several inputs, then its op (Conv/BN/
ReLU or a 3×3 max-pool); at the output ``Concat`` (value = source ids; its in_size is the previous
layer's out_size) and the projection + ``Add``.
Block labels: ``Stem#1``, ``Cell#1`` … ``Cell#9`` (in order), ``Downsample#1``/``#2``, ``Head#1``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from arch_gpt.encoding import Architecture, ConvLayer, FCLayer, Layer, OtherLayer, PoolLayer, Size
from arch_gpt.zoo.nasbench101_cells import CONV3X3, MAXPOOL3X3, Cell

BN_MOMENTUM, BN_EPSILON = 0.997, 1e-5  # NAS-Bench-101's (TensorFlow) batch-norm settings


def vertex_channels(in_channels: int, out_channels: int, matrix: np.ndarray) -> list[int]:
    """Channels of every vertex of a (pruned) cell under NAS-Bench-101's channel rule."""
    n = len(matrix)
    m = np.asarray(matrix).tolist()
    ch = [0] * n
    ch[0], ch[-1] = in_channels, out_channels
    if n == 2:
        return ch
    fan_in = sum(m[v][n - 1] for v in range(1, n - 1))
    base, extra = divmod(out_channels, fan_in)
    for v in range(1, n - 1):
        if m[v][n - 1]:
            ch[v] = base + (1 if extra > 0 else 0)
            extra -= 1 if extra > 0 else 0
    for v in range(n - 3, 0, -1):
        if not m[v][n - 1]:
            ch[v] = max([ch[d] for d in range(v + 1, n - 1) if m[v][d]], default=0)
    return ch


def _hw_after_pool(size: Size) -> Size:
    h, w, c = size
    return (-(-h // 2), -(-w // 2), c)


class _Writer:
    """Appends layers with ids 1..n and the current block label."""

    def __init__(self):
        self.layers: list[Layer] = []
        self.block: str | None = None

    def add(self, cls, **kw) -> int:
        layer_id = len(self.layers) + 1
        self.layers.append(cls(id=layer_id, block=self.block, **kw))
        return layer_id

    @property
    def last_size(self) -> Size:
        return self.layers[-1].out_size

    def conv_bn_relu(self, in_size: Size, channels: int, k: int) -> int:
        out = (in_size[0], in_size[1], channels)
        p = k // 2
        self.add(ConvLayer, in_size=in_size, out_size=out, kernel=(k, k), padding=(p, p, p, p))
        self.add(OtherLayer, name="BN", in_size=out, out_size=out)
        return self.add(OtherLayer, name="ReLU", in_size=out, out_size=out)


def _write_cell(wr: _Writer, cell: Cell, in_size: Size, channels: int) -> int:
    """Write one cell's layers; returns the id of the layer holding the cell output."""
    n = cell.num_vertices
    ch = vertex_channels(in_size[2], channels, cell.matrix)
    m = cell.matrix.tolist()
    h, w = in_size[:2]
    out_ids = [0] * n
    for t in range(1, n - 1):
        sources = []
        for s in range(1, t):
            if m[s][t]:
                sources.append(out_ids[s] if ch[s] == ch[t] else
                               wr.add(OtherLayer, name="Truncate", in_size=(h, w, ch[s]), out_size=(h, w, ch[t])))
        if m[0][t]:
            sources.append(wr.conv_bn_relu(in_size, ch[t], 1))
        if len(sources) > 1:
            wr.add(OtherLayer, name="Add", in_size=(h, w, ch[t]), out_size=(h, w, ch[t]),
                   value="-".join(map(str, sources)))
        if cell.ops[t] == MAXPOOL3X3:
            out_ids[t] = wr.add(PoolLayer, type="Max", in_size=(h, w, ch[t]), out_size=(h, w, ch[t]),
                                kernel=(3, 3), stride=(1, 1), padding=(1, 1, 1, 1))
        else:
            out_ids[t] = wr.conv_bn_relu((h, w, ch[t]), ch[t], 3 if cell.ops[t] == CONV3X3 else 1)
    concat = [out_ids[v] for v in range(1, n - 1) if m[v][n - 1]]
    out = (h, w, channels)
    if not concat:
        return wr.conv_bn_relu(in_size, channels, 1)
    result = concat[0]
    if len(concat) > 1:
        result = wr.add(OtherLayer, name="Concat", in_size=wr.last_size, out_size=out,
                        value="-".join(map(str, concat)))
    if m[0][n - 1]:
        proj = wr.conv_bn_relu(in_size, channels, 1)
        result = wr.add(OtherLayer, name="Add", in_size=out, out_size=out, value=f"{result}-{proj}")
    return result


def cell_to_architecture(cell: Cell, input_size: Size = (32, 32, 3), stem_channels: int = 128,
                         num_stacks: int = 3, cells_per_stack: int = 3, num_classes: int = 10,
                         name: str | None = None) -> Architecture:
    """The full NAS-Bench-101 network of ``cell`` (pruned first) with real sizes for ``input_size`` (H, W, C)."""
    cell = cell.pruned()
    wr = _Writer()
    wr.block = "Stem#1"
    wr.conv_bn_relu(tuple(input_size), stem_channels, 3)
    size = (input_size[0], input_size[1], stem_channels)
    k = 0
    for stack in range(num_stacks):
        channels = size[2]
        if stack > 0:
            wr.block = f"Downsample#{stack}"
            pooled = _hw_after_pool(size)
            wr.add(PoolLayer, type="Max", in_size=size, out_size=pooled, kernel=(2, 2), stride=(2, 2))
            size, channels = pooled, 2 * channels
        for _ in range(cells_per_stack):
            k += 1
            wr.block = f"Cell#{k}"
            _write_cell(wr, cell, size, channels)
            size = (size[0], size[1], channels)
    wr.block = "Head#1"
    wr.add(OtherLayer, name="AdaptiveAvgPool", in_size=size, out_size=(1, 1, size[2]), value="1-1")
    wr.add(OtherLayer, name="Flatten", in_size=(1, 1, size[2]), out_size=(1, 1, size[2]))
    wr.add(FCLayer, in_size=size[2], out_size=num_classes)
    return Architecture(tuple(wr.layers), name=name)


# ----------------------------------------------------------------------------- nn.Module

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
