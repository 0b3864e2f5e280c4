"""Shape inference for the four layer kinds, following PyTorch's output-size formulas, and the continuity of a
whole architecture (:func:`continuity_problem`: every layer's input exists).

Sizes are ``(H, W, C)``; padding is ``(left, right, top, bottom)`` as in ``torch.nn.functional.pad``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from arch_gpt.layers import Layer

MULTI_INPUT_OPS = frozenset({"Add", "Concat", "Mul"})  # ``other`` layers whose value names their source ids

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


# ----------------------------------------------------------------------------- continuity

def _flat(size) -> tuple[int, int, int]:
    """Sizes as (H, W, C); an FC feature count n is (1, 1, n)."""
    return (1, 1, size) if isinstance(size, int) else tuple(size)


def _fmt(size) -> str:
    return "-".join(map(str, _flat(size)))


def _sources_problem(layer: "Layer", out_of: dict[int, tuple], position: dict[int, int], index: int) -> str | None:
    """Why an Add/Concat/Mul's sources do not exist before it or do not fit its out_size (None when they do)."""
    ids = layer.source_ids()
    if not ids:
        return f"{layer.name} needs its source layer ids in value, joined by '-' (0 = the network input)"
    for sid in ids:
        if sid == layer.id:
            return f"source {sid} is this layer itself"
        if sid not in out_of:
            if sid in position:
                return f"source {sid} is a later layer (position {position[sid] + 1}, this is {index + 1})"
            return f"source {sid} is not a layer id of this architecture (0 is the network input)"
    sizes = [out_of[sid] for sid in ids]
    oh, ow, oc = _flat(layer.out_size)
    if layer.name == "Concat":
        if any(s[:2] != (oh, ow) for s in sizes) or sum(s[2] for s in sizes) != oc:
            return (f"Concat of sources sized {', '.join(map(_fmt, sizes))} gives {oh}-{ow}-"
                    f"{sum(s[2] for s in sizes)} (the same H-W, channels added), but out_size is {oh}-{ow}-{oc}")
        return None
    fits = all(s[d] in (1, (oh, ow, oc)[d]) for s in sizes for d in range(3))
    if not fits or tuple(max(s[d] for s in sizes) for d in range(3)) != (oh, ow, oc):
        return (f"{layer.name} of sources sized {', '.join(map(_fmt, sizes))} does not give out_size {oh}-{ow}-{oc} "
                "(each size must equal it or broadcast from 1)")
    return None


def continuity_problem(layers: Sequence["Layer"]) -> tuple[int, str, str] | None:
    """``(position, field, message)`` of the first layer whose input does not exist, or None.

    The network input is the first layer's in_size. A layer reads the previous layer's output when its in_size is
    that output (an FC also when it has that output's H*W*C features: an implicit flatten); otherwise it is a
    branch and reads the most recent earlier output, or the network input, of exactly its in_size — the rule of
    the builder and of the tokens' ``@-k`` references — so an in_size that no earlier output has is refused.
    Add/Concat/Mul must name sources (``value``: ids joined by ``-``, 0 = the network input) that are earlier
    layers; Concat's out_size has their H-W and the sum of their channels, Add/Mul's is their broadcast size.
    Which branch a layer reads when several earlier outputs share its in_size cannot be told from the text.
    """
    if not layers:
        return None
    net_in = _flat(layers[0].in_size)
    position = {layer.id: i for i, layer in enumerate(layers)}
    out_of: dict[int, tuple] = {0: net_in}  # id -> output size; 0 is the network input
    seen, prev = {net_in}, net_in
    for i, layer in enumerate(layers):
        want = _flat(layer.in_size)
        implicit_flatten = layer.kind == "fc" and prev[0] * prev[1] * prev[2] == layer.in_size
        if want != prev and not implicit_flatten and want not in seen:
            return i, "in_size", (f"in_size {_fmt(want)} is not what feeds this layer: the layer before gives "
                                  f"{_fmt(prev)}, and no earlier layer (nor the network input) gives {_fmt(want)}")
        if layer.kind == "other" and layer.name in MULTI_INPUT_OPS:
            problem = _sources_problem(layer, out_of, position, i)
            if problem is not None:
                return i, "value", problem
        prev = _flat(layer.out_size)
        out_of[layer.id] = prev
        seen.add(prev)
    return None
