"""Shape inference for the four layer kinds, following PyTorch's output-size formulas.

Sizes are ``(H, W, C)``; padding is ``(left, right, top, bottom)`` as in ``torch.nn.functional.pad``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from arch_gpt.layers import Layer

# ``other`` layers whose output has the input's size.
SHAPE_PRESERVING = frozenset({
    "BN", "ReLU", "ReLU6", "SiLU", "Sigmoid", "Hardswish", "Hardsigmoid", "GELU", "Tanh", "LeakyReLU",
    "Dropout", "StochasticDepth", "Identity", "Zero", "Add", "Mul", "ChannelShuffle",
})


def _spatial(n: int, k: int, s: int, pad: int, d: int, ceil_mode: bool = False) -> int:
    """PyTorch's size formula along one axis; ``pad`` is the total padding on that axis."""
    span = n + pad - d * (k - 1) - 1
    if not ceil_mode:
        return span // s + 1 if span >= 0 else 0
    out = (span + s - 1) // s + 1  # PyTorch's ceil-mode formula (a window may hang over the end)
    if out > 0 and (out - 1) * s >= n + pad // 2:  # the last window must start inside the input or left padding
        out -= 1
    return max(out, 0)


def conv_out_hw(in_hw: tuple[int, int], kernel, stride, padding, dilation: int = 1,
                ceil_mode: bool = False) -> tuple[int, int]:
    """(H, W) after a conv or pool window."""
    left, right, top, bottom = padding
    return (_spatial(in_hw[0], kernel[0], stride[0], top + bottom, dilation, ceil_mode),
            _spatial(in_hw[1], kernel[1], stride[1], left + right, dilation, ceil_mode))


def pool_ceil_mode(layer) -> bool:
    """Whether a pool layer's out_size needs ``ceil_mode=True`` (GoogLeNet's pools do)."""
    floor = conv_out_hw(layer.in_size[:2], layer.kernel, layer.stride, layer.padding, layer.dilation)
    return floor != tuple(layer.out_size[:2])


def layer_inconsistency(layer: "Layer") -> tuple[str, str] | None:
    """``(field, message)`` describing why a layer's sizes contradict its parameters, or None."""
    kind = layer.kind
    if kind == "fc":
        return None
    (h, w, c), (oh, ow, oc) = layer.in_size, layer.out_size
    if kind == "conv":
        if c % layer.groups or oc % layer.groups:
            return "groups", f"groups={layer.groups} must divide in channels {c} and out channels {oc}"
        expect = conv_out_hw((h, w), layer.kernel, layer.stride, layer.padding, layer.dilation)
        if expect != (oh, ow):
            return "out_size", (f"expected {expect[0]}-{expect[1]}-{oc} from in_size {h}-{w}-{c}, kernel, stride, "
                                f"padding and dilation, got {oh}-{ow}-{oc}")
        return None
    if kind == "pool":
        if oc != c:
            return "out_size", f"pooling keeps channels: expected {c} channels, got {oc}"
        floor = conv_out_hw((h, w), layer.kernel, layer.stride, layer.padding, layer.dilation)
        ceil = conv_out_hw((h, w), layer.kernel, layer.stride, layer.padding, layer.dilation, ceil_mode=True)
        if (oh, ow) not in (floor, ceil):
            return "out_size", (f"expected {floor[0]}-{floor[1]}-{c} from in_size {h}-{w}-{c}, kernel, stride, "
                                f"padding and dilation, got {oh}-{ow}-{oc}")
        return None
    if layer.name in SHAPE_PRESERVING and layer.in_size != layer.out_size:
        return "out_size", f"{layer.name} keeps its input size {h}-{w}-{c}, got {oh}-{ow}-{oc}"
    if layer.name == "Flatten" and layer.out_size != (1, 1, h * w * c):
        return "out_size", f"Flatten of {h}-{w}-{c} gives 1-1-{h * w * c}, got {oh}-{ow}-{oc}"
    return None
