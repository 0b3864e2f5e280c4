"""The operations of spec search spaces (``arch_gpt.search.spaces.spec``), as layers and as ``nn.Module``s.

One resolved operation (:class:`Op`: its kind, output width, stride and kind fields) is written two ways that
agree layer for layer: :func:`write_op` appends its layers to a :class:`LayerChain`, :func:`op_module` builds the
module that runs the same convolutions, pools and linear layers in the same order. :func:`expand` and
:class:`SpecNetwork` do the same for a whole network: stem ops, one op per searchable slot (the units), head
ops, then global average pool + flatten + linear. Every conv is bias-free with "same" padding ``kernel // 2``
(kernels are odd), so a stride ``s`` maps a side ``H`` to ``ceil(H / s)``; a ``width`` of None keeps the input's
channels. The kinds:

=================  ========================================================================================
``conv``           conv k×k (stride, ``groups``) + BN + ReLU
``sep_conv``       depthwise conv k×k (stride) + BN + ReLU, pointwise 1x1 to the width + BN + ReLU
``inverted_residual``  1x1 to ``expansion`` × input channels + BN + ReLU, depthwise k×k (stride) + BN + ReLU,
                   1x1 to the width + BN; the input added where stride 1 and channels kept (NAS-Bench-Macro's)
``basic``          ResNet basic block: conv k×k (stride) + BN + ReLU, conv k×k + BN, plus the input (or its
                   1x1 conv (stride) + BN projection where the shape changes), ReLU
``bottleneck``     ResNet bottleneck: 1x1 to width / ``reduction`` + BN + ReLU, k×k (stride) + BN + ReLU,
                   1x1 to the width + BN, plus the input or its projection, ReLU
``identity``       the input; where stride or channels change a 1x1 conv (stride) + BN (NAS-Bench-Macro's "0")
``max_pool``, ``avg_pool``  k×k window (stride, padding k // 2); a 1x1 conv + BN after it where channels change
``zero``           zeros of the input's shape (the "none" op of cell spaces): only where stride 1 keeps the channels
=================  ========================================================================================
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from arch_gpt.encoding import Size
from arch_gpt.zoo.layer_chain import ExpandedNetwork, LayerChain
from arch_gpt.zoo.macro_module import Identity, InvertedResidual

# kind -> (block label, the kind's own fields)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "conv": ("Conv2dNormActivation", ("kernel", "groups")),
    "sep_conv": ("DepthwiseSeparableConv", ("kernel",)),
    "inverted_residual": ("InvertedResidual", ("kernel", "expansion")),
    "basic": ("BasicBlock", ("kernel",)),
    "bottleneck": ("Bottleneck", ("kernel", "reduction")),
    "identity": ("Identity", ()),
    "max_pool": ("MaxPool", ("kernel",)),
    "avg_pool": ("AvgPool", ("kernel",)),
    "zero": ("Zero", ()),
}
REQUIRED: dict[str, tuple[str, ...]] = {"inverted_residual": ("expansion",)}  # fields with no default


@dataclass(frozen=True)
class Op:
    """One resolved operation: ``kind`` (a key of :data:`KINDS`), output channels (None: the input's), stride and
    the kind's fields (the others keep their defaults)."""
    kind: str
    width: int | None = None
    stride: int = 1
    kernel: int = 3
    expansion: int = 1
    groups: int = 1
    reduction: int = 4

    @property
    def label(self) -> str:
        """The block class of its layers (``InvertedResidual``, ``BasicBlock``, ...)."""
        return KINDS[self.kind][0]

    def out_channels(self, c_in: int) -> int:
        return c_in if self.width is None else self.width


def out_size(op: Op, in_size: Size) -> Size:
    """The output (H, W, C) of ``op`` on an input of ``in_size``."""
    h, w, c = in_size
    return (-(-h // op.stride), -(-w // op.stride), op.out_channels(c))


def problem(op: Op, in_size: Size) -> tuple[str, str] | None:
    """(field, message) if ``op`` cannot run on ``in_size`` (a stride larger than a side, channels that its groups
    or reduction do not divide), else None."""
    h, w, c_in = in_size
    c_out = op.out_channels(c_in)
    if op.stride > 1 and min(h, w) < op.stride:
        return "stride", (f"stride {op.stride} on a {h}x{w} input would shrink it below 1 pixel; use stride 1 here "
                          f"or fewer downsampling steps before it")
    if op.kind == "conv" and (c_in % op.groups or c_out % op.groups):
        bad = "input channels" if c_in % op.groups else "width"
        return "groups", f"{bad} {c_in if c_in % op.groups else c_out} is not divisible by groups {op.groups}"
    if op.kind == "zero" and (op.stride != 1 or c_out != c_in):
        return "op", (f"zero keeps its input's shape (the language's Zero layer), but here the stride is {op.stride} "
                      f"and the channels go from {c_in} to {c_out}; use it in a slot that keeps the shape")
    if op.kind == "bottleneck" and (c_out % op.reduction or c_out < op.reduction):
        return "width", f"width {c_out} is not a multiple of the bottleneck's reduction {op.reduction}"
    return None


# ----------------------------------------------------------------------------- layers

def _shortcut(chain: LayerChain, block_in: int, in_size: Size, main: int, stride: int) -> None:
    """The residual sum of the main path ``main`` and the block input (projected by 1x1 conv + BN if needed)."""
    if stride != 1 or in_size[2] != chain.size[2]:
        c_out = chain.size[2]
        chain.size = in_size  # a branch from the block input
        chain.conv(c_out, 1, stride)
        chain.add([main, chain.other("BN")])
    else:
        chain.add([main, block_in])


def write_op(chain: LayerChain, op: Op, labelled: bool = True) -> int:
    """Append the layers of ``op``; returns the index (in ``chain.layers``) of its first layer. ``labelled``
    gives them the block label ``op.label`` (a skeleton ``conv`` is written loose, as in a traced stem)."""
    start = len(chain.layers)
    block_in, in_size = chain.last_id, chain.size
    c_in = in_size[2]
    c_out, s, k = op.out_channels(c_in), op.stride, op.kernel
    chain.enter(op.label if labelled else None)
    if op.kind == "conv":
        chain.conv(c_out, k, s, groups=op.groups)
        chain.other("BN")
        chain.other("ReLU")
    elif op.kind == "sep_conv":
        chain.conv(c_in, k, s, groups=c_in)
        chain.other("BN")
        chain.other("ReLU")
        chain.conv(c_out, 1)
        chain.other("BN")
        chain.other("ReLU")
    elif op.kind == "inverted_residual":
        chain.inverted_residual(c_out, op.expansion, k, s)
    elif op.kind in ("basic", "bottleneck"):
        if op.kind == "basic":
            chain.conv(c_out, k, s)
            chain.other("BN")
            chain.other("ReLU")
            chain.conv(c_out, k)
        else:
            mid = c_out // op.reduction
            chain.conv(mid, 1)
            chain.other("BN")
            chain.other("ReLU")
            chain.conv(mid, k, s)
            chain.other("BN")
            chain.other("ReLU")
            chain.conv(c_out, 1)
        _shortcut(chain, block_in, in_size, chain.other("BN"), s)
        chain.other("ReLU")
    elif op.kind == "identity":
        if s != 1 or c_in != c_out:
            chain.conv(c_out, 1, s)
            chain.other("BN")
        else:
            chain.other("Identity")
    elif op.kind in ("max_pool", "avg_pool"):
        chain.pool("Max" if op.kind == "max_pool" else "Avg", k, s, k // 2)
        if c_in != c_out:
            chain.conv(c_out, 1)
            chain.other("BN")
    elif op.kind == "zero":
        chain.other("Zero")
    else:
        raise ValueError(f"unknown op kind {op.kind!r}")
    return start


def expand(stem: Sequence[Op], units: Sequence[Op], head: Sequence[Op], num_classes: int, input_size: Size,
           name: str | None = None) -> ExpandedNetwork:
    """The network as layers; unit i is ``units[i]``, its signature layer its first layer."""
    chain = LayerChain(input_size)
    for op in stem:
        write_op(chain, op, labelled=op.kind != "conv")
    signatures = [write_op(chain, op) for op in units]
    for op in head:
        write_op(chain, op, labelled=op.kind != "conv")
    chain.enter(None)
    chain.head(num_classes)
    return chain.build(signatures, name=name)


# ----------------------------------------------------------------------------- modules

def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True) -> list:
    return [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out),
            *([nn.ReLU()] if relu else [])]


class Residual(nn.Module):
    """ReLU(body(x) + x), or + shortcut(x) where the shape changes (the body runs first, as in torchvision)."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None):
        super().__init__()
        self.body, self.shortcut = body, shortcut
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return self.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class Zero(nn.Module):
    """The input times zero (its shape, and the graph, kept)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def op_module(op: Op, c_in: int) -> nn.Module:
    """The module of ``op`` on ``c_in`` input channels (same layers, same order as :func:`write_op`)."""
    c_out, s, k = op.out_channels(c_in), op.stride, op.kernel
    if op.kind == "conv":
        return nn.Sequential(*_conv_bn(c_in, c_out, k, s, op.groups))
    if op.kind == "sep_conv":
        return nn.Sequential(*_conv_bn(c_in, c_in, k, s, c_in), *_conv_bn(c_in, c_out, 1))
    if op.kind == "inverted_residual":
        return InvertedResidual(c_in, c_out, s, op.expansion, k)
    if op.kind in ("basic", "bottleneck"):
        if op.kind == "basic":
            body = nn.Sequential(*_conv_bn(c_in, c_out, k, s), *_conv_bn(c_out, c_out, k, relu=False))
        else:
            mid = c_out // op.reduction
            body = nn.Sequential(*_conv_bn(c_in, mid, 1), *_conv_bn(mid, mid, k, s), *_conv_bn(mid, c_out, 1,
                                                                                                relu=False))
        projection = s != 1 or c_in != c_out
        return Residual(body, nn.Sequential(*_conv_bn(c_in, c_out, 1, s, relu=False)) if projection else None)
    if op.kind == "identity":
        return Identity(c_in, c_out, s)
    if op.kind in ("max_pool", "avg_pool"):
        pool = (nn.MaxPool2d if op.kind == "max_pool" else nn.AvgPool2d)(k, s, k // 2)
        return nn.Sequential(pool, *(_conv_bn(c_in, c_out, 1, relu=False) if c_in != c_out else []))
    if op.kind == "zero":
        return Zero()
    raise ValueError(f"unknown op kind {op.kind!r}")


class SpecNetwork(nn.Module):
    """A spec space's network: ``stem``, ``units`` (one module per slot, in order), ``head`` (its ops, global
    average pool, flatten) and ``classifier``; the same layers as :func:`expand` writes."""

    def __init__(self, stem: Sequence[Op], units: Sequence[Op], head: Sequence[Op], num_classes: int,
                 in_channels: int = 3):
        super().__init__()
        c = in_channels
        modules: list[list[nn.Module]] = []
        for part in (stem, units, head):
            modules.append([])
            for op in part:
                modules[-1].append(op_module(op, c))
                c = op.out_channels(c)
        self.stem = nn.Sequential(*modules[0])
        self.units = nn.ModuleList(modules[1])
        self.head = nn.Sequential(*modules[2], nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for unit in self.units:
            x = unit(x)
        return self.classifier(self.head(x))
