"""Architecture → runnable ``nn.Module`` (the builder behind :meth:`Architecture.to_module`).

Layers run in execution order. A layer takes the previous layer's output when its in_size matches, else
the most recent earlier output (or the network input) of exactly its in_size — the same input rule as the
tokenizer's ``@-k`` references. Add/Mul/Concat take the outputs their ``value`` names (0 = network input).
Consecutive layers with one block label live in one :class:`LayerGroup` whose ``block_label`` the tracer
reads back, so ``from_module(to_module(a)) == a`` for architectures with ids 1..n. Works at the layer level:
any object with ``layers`` and ``input_size`` builds (it imports :mod:`arch_gpt.layers`, never ``encoding``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.shufflenetv2 import channel_shuffle
from torchvision.ops import StochasticDepth

from arch_gpt.layers import ArchitectureError, Layer, OtherLayer, Size, check_layer
from arch_gpt.shapes import pool_ceil_mode

if TYPE_CHECKING:  # pragma: no cover
    from arch_gpt.encoding import Architecture

_ACTIVATIONS = {"ReLU": nn.ReLU, "ReLU6": nn.ReLU6, "SiLU": nn.SiLU, "Sigmoid": nn.Sigmoid, "Hardswish": nn.Hardswish,
                "Hardsigmoid": nn.Hardsigmoid, "GELU": nn.GELU, "Tanh": nn.Tanh, "LeakyReLU": nn.LeakyReLU,
                "Identity": nn.Identity, "Flatten": nn.Flatten}


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle as a module (``other`` layer ChannelShuffle, value = groups)."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups)


class Chunk(nn.Module):
    """One channel chunk of a tensor (``other`` layer Chunk, value ``index/chunks``)."""

    def __init__(self, index: int, chunks: int):
        super().__init__()
        self.index, self.chunks = index, chunks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.chunk(self.chunks, dim=1)[self.index]


class Zero(nn.Module):
    """The 'none' operation of cell spaces: zeros of the input's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


class PaddedConv2d(nn.Conv2d):
    """A convolution with asymmetric padding ``pad4`` = (left, right, top, bottom)."""

    def __init__(self, *args, pad4: tuple[int, int, int, int], **kwargs):
        super().__init__(*args, padding=0, **kwargs)
        self.pad4 = tuple(pad4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad4))


class PaddedMaxPool2d(nn.MaxPool2d):
    """Max pooling with padding ``pad4`` that nn.MaxPool2d cannot express (asymmetric or over kernel/2)."""

    def __init__(self, *args, pad4: tuple[int, int, int, int], **kwargs):
        super().__init__(*args, padding=0, **kwargs)
        self.pad4 = tuple(pad4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad4, value=float("-inf")))


class PaddedAvgPool2d(nn.AvgPool2d):
    """Average pooling over zero padding ``pad4`` that nn.AvgPool2d cannot express."""

    def __init__(self, *args, pad4: tuple[int, int, int, int], **kwargs):
        super().__init__(*args, padding=0, **kwargs)
        self.pad4 = tuple(pad4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad4))


class FlattenLinear(nn.Linear):
    """A Linear layer that flattens a feature map first (an FC layer after a global pool)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.flatten(x, 1) if x.dim() > 2 else x)


def _flat(size) -> Size:
    return (1, 1, size) if isinstance(size, int) else tuple(size)


def _symmetric(pad: tuple[int, int, int, int], kernel: tuple[int, int] | None = None) -> bool:
    left, right, top, bottom = pad
    ok = left == right and top == bottom
    return ok and (kernel is None or (2 * top <= kernel[0] and 2 * left <= kernel[1]))


def _other_module(layer: OtherLayer, flat_input: bool) -> nn.Module:
    name, value = layer.name, layer.value
    try:
        if name == "BN":
            return nn.BatchNorm1d(layer.in_size[2]) if flat_input else nn.BatchNorm2d(layer.in_size[2])
        if name in _ACTIVATIONS:
            return _ACTIVATIONS[name]()
        if name == "Dropout":
            return nn.Dropout(float(value))
        if name == "StochasticDepth":
            return StochasticDepth(float(value), "row")
        if name in ("AdaptiveAvgPool", "AdaptiveMaxPool"):
            h, w = (int(v) for v in value.split("-"))
            return nn.AdaptiveAvgPool2d((h, w)) if name == "AdaptiveAvgPool" else nn.AdaptiveMaxPool2d((h, w))
        if name == "ChannelShuffle":
            return ChannelShuffle(int(value))
        if name == "Chunk":
            index, chunks = (int(v) for v in value.split("/"))
            return Chunk(index, chunks)
        if name == "Zero":
            return Zero()
    except ValueError:
        raise ArchitectureError(f"bad value {value!r} for a {name} layer", field="value", layer_id=layer.id) from None
    raise ArchitectureError(f"cannot build an other layer named {name!r}", field="name", layer_id=layer.id)


def layer_module(layer: Layer, flat_input: bool = False) -> nn.Module:
    """The PyTorch module computing one non-graph layer."""
    if layer.kind == "conv":
        args = (layer.in_size[2], layer.out_size[2], layer.kernel)
        kw = dict(stride=layer.stride, dilation=layer.dilation, groups=layer.groups, bias=layer.bias_used)
        if _symmetric(layer.padding):
            return nn.Conv2d(*args, padding=(layer.padding[2], layer.padding[0]), **kw)
        return PaddedConv2d(*args, pad4=layer.padding, **kw)
    if layer.kind == "pool":
        ceil = pool_ceil_mode(layer)
        if layer.type == "Avg" and layer.dilation != 1:
            raise ArchitectureError("average pooling has no dilation", field="dilation", layer_id=layer.id)
        kw = dict(stride=layer.stride, ceil_mode=ceil)
        if layer.type == "Max":
            kw["dilation"] = layer.dilation
        if _symmetric(layer.padding, layer.kernel):
            cls = nn.MaxPool2d if layer.type == "Max" else nn.AvgPool2d
            return cls(layer.kernel, padding=(layer.padding[2], layer.padding[0]), **kw)
        cls = PaddedMaxPool2d if layer.type == "Max" else PaddedAvgPool2d
        return cls(layer.kernel, pad4=layer.padding, **kw)
    if layer.kind == "fc":
        return FlattenLinear(layer.in_size, layer.out_size)
    return _other_module(layer, flat_input)


class LayerGroup(nn.Module):
    """Consecutive layers sharing one block label; ``forward`` appends each layer's output to ``outputs``."""

    def __init__(self, block_label: str | None):
        super().__init__()
        self.block_label = block_label
        self.mods = nn.ModuleDict()
        self.plan: list[tuple[str, tuple[int, ...]]] = []  # (op: 'module'|'Add'|'Mul'|'Concat', input indices)

    def add(self, op: str, refs: tuple[int, ...], module: nn.Module | None = None) -> None:
        if module is not None:
            self.mods[str(len(self.plan))] = module
        self.plan.append((op, refs))

    def forward(self, outputs: list) -> list:
        for k, (op, refs) in enumerate(self.plan):
            xs = [outputs[r] for r in refs]
            if op == "module":
                y = self.mods[str(k)](xs[0])
            elif op == "Concat":
                y = torch.cat(xs, 1)
            else:
                fn = torch.add if op == "Add" else torch.mul
                y = fn(xs[0], 0.0 if op == "Add" else 1.0) if len(xs) == 1 else xs[0]
                for t in xs[1:]:
                    y = fn(y, t)
            outputs.append(y)
        return outputs


class ArchitectureModule(nn.Module):
    """Runs an Architecture's layers in order on an input of shape ``(N, C, H, W)``; returns the last output.

    ``arch`` is duck-typed: anything with ``layers`` (in execution order) and ``input_size`` ``(H, W, C)``.
    """

    def __init__(self, arch: "Architecture"):
        super().__init__()
        if not arch.layers:
            raise ArchitectureError("an architecture without layers cannot be built", field="layers")
        h, w, c = _flat(arch.input_size)
        self.input_size = (c, h, w)
        self.groups = nn.ModuleList()
        index = {0: 0}  # layer id -> position in the outputs list (0: network input)
        sizes: list[Size] = [(h, w, c)]
        flat = [False]
        for pos, layer in enumerate(arch.layers, start=1):
            check_layer(layer)
            if not len(self.groups) or self.groups[-1].block_label != layer.block:
                self.groups.append(LayerGroup(layer.block))
            group = self.groups[-1]
            if isinstance(layer, OtherLayer) and layer.name in ("Add", "Mul", "Concat"):
                refs = self._sources(layer, index, sizes)
                group.add(layer.name, refs)
                flat.append(flat[refs[0]])
            else:
                ref = self._implicit_input(layer, sizes)
                group.add("module", (ref,), layer_module(layer, flat[ref]))
                flat.append(layer.kind == "fc" or (layer.kind == "other" and layer.name == "Flatten")
                            or (flat[ref] and layer.kind == "other" and not layer.name.startswith("Adaptive")))
            index[layer.id] = pos
            sizes.append(_flat(layer.out_size))

    @staticmethod
    def _implicit_input(layer: Layer, sizes: list[Size]) -> int:
        want = _flat(layer.in_size)
        prev = sizes[-1]
        if prev == want or (layer.kind == "fc" and prev[0] * prev[1] * prev[2] == layer.in_size):
            return len(sizes) - 1
        for j in range(len(sizes) - 1, -1, -1):
            if sizes[j] == want:
                return j
        raise ArchitectureError(f"no earlier output (nor the network input) has in_size {'-'.join(map(str, want))}",
                                field="in_size", layer_id=layer.id)

    @staticmethod
    def _sources(layer: OtherLayer, index: dict[int, int], sizes: list[Size]) -> tuple[int, ...]:
        ids = layer.source_ids()
        if not ids:
            raise ArchitectureError(f"{layer.name} needs source layer ids in its value", field="value",
                                    layer_id=layer.id)
        missing = [i for i in ids if i not in index]
        if missing:
            raise ArchitectureError(f"source id {missing[0]} is not an earlier layer", field="value",
                                    layer_id=layer.id)
        refs = tuple(index[i] for i in ids)
        if layer.name == "Concat" and sum(sizes[r][2] for r in refs) != layer.out_size[2]:
            raise ArchitectureError("Concat sources' channels do not add up to out_size", field="value",
                                    layer_id=layer.id)
        return refs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [x]
        for group in self.groups:
            outputs = group(outputs)
        return outputs[-1]
