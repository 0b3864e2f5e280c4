"""A NAS-Bench-101 cell expanded into the full network, as an Architecture (the runnable nn.Module is in
:mod:`arch_gpt.zoo.nasbench101_module`, so that writing layers never imports torch).

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
