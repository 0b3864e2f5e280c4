"""Layer-structure tokens: one token per layer, without id and absolute sizes (GPT-NAS §3.3).

A token is ``<kind>:<part>:<part>...`` with no spaces. Channel changes are written as the ratio
out/in of channels (or FC features) as a reduced fraction ``r<p>`` or ``r<p>/<q>``, so the same
structure at another width gives the same token. Canonical forms, one per kind::

    conv:k3x3:s1x1:p1-1-1-1:d1:g1:b0:r2      kernel, stride, padding (left-right-top-bottom), dilation,
                                             groups, bias (b0/b1), channel ratio out/in
    conv:k3x3:s2x2:p1-1-1-1:d1:gdw:b0:r1     groups: g1, gdw (groups == in channels), else g<groups>
    pool:Max:k3x3:s2x2:p1-1-1-1:d1:b0        channels unchanged; ``:ceil`` is added when the trace
    pool:Max:k3x3:s2x2:p0-0-0-0:d1:b0:ceil   used ceil_mode (its out_size is not the floor formula's)
    fc:r125/64                               features out/in (512 -> 1000); decoding multiplies the known
                                             in-features by it, so the class count comes back exactly
    other:ReLU                               name only, when value is ``none`` and nothing follows
    other:Dropout:0.2                        name and value
    other:AdaptiveAvgPool:1-1                value gives the output H-W; channels unchanged
    other:Add:-1,-4                          Add/Mul/Concat sources as offsets to this layer's position
    other:Concat:-9,-6,-2,-1                 (``in`` = the network input, id 0); Concat's channels are
                                             the sum of its sources' channels
    other:Chunk:2:r1/2                       any other size change: ``r<channel ratio>`` (always, when the
    other:Shrink:none:r1:s1/2x1/2            out size is not derived) and ``s<h ratio>x<w ratio>`` vs in_size

Out sizes of Flatten (1-1-HWC), AdaptiveAvgPool/AdaptiveMaxPool (value) and Concat (sources) are
derived; other names keep in_size. For ``other`` the value is always the third part when any part
follows (``none`` if it has none). A name or value containing ``:`` or whitespace cannot be a token.

Input edge. Conv/pool layers name no input (execution order is implicit). When a layer's in_size is
not the previous layer's out_size (a branch, e.g. a ResNet downsample conv or an Inception branch),
its token ends with ``:@-k`` (the most recent earlier layer whose out_size is that in_size) or ``:@in``
(the network input), e.g. ``conv:k1x1:s2x2:p0-0-0-0:d1:g1:b0:r2:@-7``, ``other:ReLU:none:@-3``.
Decoding is therefore exact: for every architecture whose layers each take the network input or an
earlier output (all traces), ``tokens_to_architecture(layer_tokens(a), a.input_size)`` gives the same
layers and sizes as ``a.renumbered()`` without block labels.
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Iterable, NamedTuple, Sequence

from arch_gpt import shapes
from arch_gpt.encoding import (
    MAX_SIZE, MULTI_INPUT_OPS, POOL_TYPES, Architecture, ArchitectureError, ConvLayer, FCLayer, Layer, OtherLayer,
    PoolLayer, Size, check_layer,
)
from arch_gpt.layers import sequence_argument, size_argument

NETWORK_INPUT_ID = 0  # source id of the network input in Add/Mul/Concat values
_ADAPTIVE_POOLS = frozenset({"AdaptiveAvgPool", "AdaptiveMaxPool"})
_FORBIDDEN = frozenset(":") | frozenset(" \t\r\n\f\v")


class TokenError(ArchitectureError):
    """A token string that is not a valid layer token, or that does not fit its context; names token and field."""

    def __init__(self, token: str, field: str | None, message: str, layer_id: int | None = None):
        self.token = token
        super().__init__(f"token {token!r}: {message}", field=field, layer_id=layer_id)


# ----------------------------------------------------------------------------- layers -> tokens

def _flat(size) -> Size:
    """Sizes as (H, W, C); an FC feature count n is (1, 1, n)."""
    return (1, 1, size) if isinstance(size, int) else tuple(size)


@lru_cache(maxsize=4096)
def _ratio(num: int, den: int) -> str:
    f = Fraction(num, den)
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


@lru_cache(maxsize=65536)
def _conv_token(in_c, out_c, kernel, stride, padding, dilation, groups, bias) -> str:
    g = "1" if groups == 1 else ("dw" if groups == in_c else str(groups))
    return (f"conv:k{kernel[0]}x{kernel[1]}:s{stride[0]}x{stride[1]}:p{padding[0]}-{padding[1]}-{padding[2]}-"
            f"{padding[3]}:d{dilation}:g{g}:b{int(bias)}:r{_ratio(out_c, in_c)}")


@lru_cache(maxsize=65536)
def _pool_token(type_, kernel, stride, padding, dilation, bias, in_hw, out_hw) -> str:
    ceil = shapes.conv_out_hw(in_hw, kernel, stride, padding, dilation) != out_hw
    return (f"pool:{type_}:k{kernel[0]}x{kernel[1]}:s{stride[0]}x{stride[1]}:p{padding[0]}-{padding[1]}-"
            f"{padding[2]}-{padding[3]}:d{dilation}:b{int(bias)}" + (":ceil" if ceil else ""))


def _derived_out(name: str, value: str, in_size: Size, source_channels: int | None) -> Size | None:
    """The out_size an ``other`` layer has without size parts (None when its value does not parse)."""
    h, w, c = in_size
    if name == "Flatten":
        return (1, 1, h * w * c)
    if name in _ADAPTIVE_POOLS:
        parts = value.split("-")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            return None
        return (int(parts[0]), int(parts[1]), c)
    if name == "Concat" and source_channels is not None:
        return (h, w, source_channels)
    return in_size


@lru_cache(maxsize=65536)
def _other_token(name: str, value: str, in_size: Size, out_size: Size, source_channels: int | None) -> str:
    if _FORBIDDEN.intersection(name) or _FORBIDDEN.intersection(value) or not name:
        raise ArchitectureError("name and value of a tokenized layer must not contain ':' or whitespace",
                                field="value" if name and not _FORBIDDEN.intersection(name) else "name")
    parts = ["other", name] + ([value] if value != "none" else [])
    if _derived_out(name, value, in_size, source_channels) != out_size:
        if len(parts) == 2:
            parts.append("none")
        parts.append(f"r{_ratio(out_size[2], in_size[2])}")
        if out_size[:2] != in_size[:2]:
            parts.append(f"s{_ratio(out_size[0], in_size[0])}x{_ratio(out_size[1], in_size[1])}")
    return ":".join(parts)


def _relative_sources(layer: OtherLayer, position: dict[int, int], i: int) -> tuple[str, list[int | None]]:
    """``value`` with source ids as offsets; also the source positions (None = network input)."""
    offsets, where = [], []
    for sid in layer.source_ids():
        if sid == NETWORK_INPUT_ID:
            offsets.append("in")
            where.append(None)
        elif position.get(sid, i) < i:
            offsets.append(str(position[sid] - i))
            where.append(position[sid])
        else:
            raise ArchitectureError(f"source {sid} is not an earlier layer", field="value", layer_id=layer.id)
    return ",".join(offsets), where


def layer_tokens(arch: Architecture) -> list[str]:
    """One canonical token per layer of ``arch`` (see the module docstring for the form)."""
    if not isinstance(arch, Architecture):
        raise ArchitectureError(f"expected an Architecture, got {type(arch).__name__}", field="arch")
    layers = arch.layers
    if not layers:
        return []
    net_in = _flat(arch.input_size)
    position = {layer.id: i for i, layer in enumerate(layers)}
    outs: list[Size] = []
    last_at: dict[Size, int] = {}
    tokens = []
    prev = net_in
    for i, layer in enumerate(layers):
        kind = layer.kind
        if kind == "conv":
            token = _conv_token(layer.in_size[2], layer.out_size[2], layer.kernel, layer.stride, layer.padding,
                                layer.dilation, layer.groups, layer.bias_used)
        elif kind == "pool":
            token = _pool_token(layer.type, layer.kernel, layer.stride, layer.padding, layer.dilation,
                                layer.bias_used, layer.in_size[:2], layer.out_size[:2])
        elif kind == "fc":
            token = f"fc:r{_ratio(layer.out_size, layer.in_size)}"
        else:
            value, channels = layer.value, None
            try:
                if layer.name in MULTI_INPUT_OPS and value != "none":
                    value, where = _relative_sources(layer, position, i)
                    if layer.name == "Concat":
                        channels = sum((net_in if j is None else outs[j])[2] for j in where)
                token = _other_token(layer.name, value, layer.in_size, layer.out_size, channels)
            except (ArchitectureError, ValueError) as err:
                field = err.field if isinstance(err, ArchitectureError) else "value"
                raise ArchitectureError(getattr(err, "reason", str(err)), field=field, layer_id=layer.id) from None
        in_size = _flat(layer.in_size)
        if in_size != prev and not (kind == "fc" and prev[0] * prev[1] * prev[2] == layer.in_size):
            j = last_at.get(in_size)
            ref = f"@{j - i}" if j is not None else ("@in" if in_size == net_in else "")
            if ref:
                token += (":none:" if kind == "other" and token.count(":") == 1 else ":") + ref
        tokens.append(token)
        prev = _flat(layer.out_size)
        outs.append(prev)
        last_at[prev] = i
    return tokens


# ----------------------------------------------------------------------------- tokens -> layers

class _Spec(NamedTuple):
    """A parsed token: kind-specific fields, out/in channel ratio, H/W ratios, input reference."""
    kind: str
    fields: tuple
    ratio: Fraction | None = None
    hw: tuple[Fraction, Fraction] | None = None
    ref: int | str | None = None  # negative offset, 'in', or None (previous layer)


def _tag(token: str, part: str, prefix: str, field: str) -> str:
    if not part.startswith(prefix) or len(part) == len(prefix):
        raise TokenError(token, field, f"expected '{prefix}...' for {field}, got {part!r}")
    return part[len(prefix):]


def _int(token: str, text: str, field: str, minimum: int = 1) -> int:
    if not text.isdigit() or int(text) < minimum:
        raise TokenError(token, field, f"expected an integer >= {minimum}, got {text!r}")
    return int(text)


def _ints(token: str, text: str, sep: str, n: int, field: str, minimum: int) -> tuple[int, ...]:
    parts = text.split(sep)
    if len(parts) != n:
        raise TokenError(token, field, f"expected {n} numbers joined by {sep!r}, got {text!r}")
    return tuple(_int(token, p, field, minimum) for p in parts)


def _frac(token: str, text: str, field: str) -> Fraction:
    num, _, den = text.partition("/")
    return Fraction(_int(token, num, field), _int(token, den, field) if den else 1)


def _parse_ref(token: str, part: str) -> int | str:
    body = _tag(token, part, "@", "input")
    if body != "in" and not body.startswith("-"):
        raise TokenError(token, "input", f"expected '@in' or '@-<k>', got {part!r}")
    return "in" if body == "in" else -_int(token, body[1:], "input")


def _extras(token: str, parts: list[str], allowed: str) -> dict[str, str]:
    """Optional trailing parts: ``r..``, ``s..``, ``@..``, ``ceil``, each at most once and in this order."""
    found: dict[str, str] = {}
    order = "rs@c"
    for part in parts:
        key = "c" if part == "ceil" else part[:1]
        if key not in allowed or key in found or any(order.index(k) > order.index(key) for k in found):
            raise TokenError(token, "token", f"unexpected part {part!r}")
        found[key] = part
    return found


def _parse_offset(token: str, text: str) -> int | str:
    """One Add/Mul/Concat source: ``in`` or a negative offset ``-k``."""
    if text == "in":
        return "in"
    if not text.startswith("-"):
        raise TokenError(token, "value", f"a source is 'in' or a negative offset '-<k>', got {text!r}")
    return -_int(token, text[1:], "value")


@lru_cache(maxsize=65536)
def _parse_token(token: str) -> _Spec:
    if not isinstance(token, str) or not token or _FORBIDDEN.difference(":").intersection(token):
        raise TokenError(str(token), "token", "a token is a non-empty string without whitespace")
    parts = token.split(":")
    kind = parts[0]
    if kind == "conv":
        if len(parts) < 8:
            raise TokenError(token, "token", "a conv token has k, s, p, d, g, b and r parts")
        kernel = _ints(token, _tag(token, parts[1], "k", "kernel"), "x", 2, "kernel", 1)
        stride = _ints(token, _tag(token, parts[2], "s", "stride"), "x", 2, "stride", 1)
        padding = _ints(token, _tag(token, parts[3], "p", "padding"), "-", 4, "padding", 0)
        dilation = _int(token, _tag(token, parts[4], "d", "dilation"), "dilation")
        g = _tag(token, parts[5], "g", "groups")
        groups = g if g == "dw" else _int(token, g, "groups")
        bias = _int(token, _tag(token, parts[6], "b", "bias_used"), "bias_used", 0)
        if bias > 1:
            raise TokenError(token, "bias_used", f"expected b0 or b1, got {parts[6]!r}")
        ratio = _frac(token, _tag(token, parts[7], "r", "ratio"), "ratio")
        extra = _extras(token, parts[8:], "@")
        return _Spec("conv", (kernel, stride, padding, dilation, groups, bool(bias)), ratio,
                     ref=_parse_ref(token, extra["@"]) if "@" in extra else None)
    if kind == "pool":
        if len(parts) < 7:
            raise TokenError(token, "token", "a pool token has type, k, s, p, d and b parts")
        if parts[1] not in POOL_TYPES:
            raise TokenError(token, "type", f"expected one of {', '.join(POOL_TYPES)}, got {parts[1]!r}")
        kernel = _ints(token, _tag(token, parts[2], "k", "kernel"), "x", 2, "kernel", 1)
        stride = _ints(token, _tag(token, parts[3], "s", "stride"), "x", 2, "stride", 1)
        padding = _ints(token, _tag(token, parts[4], "p", "padding"), "-", 4, "padding", 0)
        dilation = _int(token, _tag(token, parts[5], "d", "dilation"), "dilation")
        bias = _int(token, _tag(token, parts[6], "b", "bias_used"), "bias_used", 0)
        if bias > 1:
            raise TokenError(token, "bias_used", f"expected b0 or b1, got {parts[6]!r}")
        extra = _extras(token, parts[7:], "c@")
        return _Spec("pool", (parts[1], kernel, stride, padding, dilation, bool(bias), "c" in extra),
                     ref=_parse_ref(token, extra["@"]) if "@" in extra else None)
    if kind == "fc":
        if len(parts) < 2:
            raise TokenError(token, "token", "an fc token has an r part")
        ratio = _frac(token, _tag(token, parts[1], "r", "ratio"), "ratio")
        extra = _extras(token, parts[2:], "@")
        return _Spec("fc", (), ratio, ref=_parse_ref(token, extra["@"]) if "@" in extra else None)
    if kind == "other":
        if len(parts) < 2 or not parts[1]:
            raise TokenError(token, "name", "an other token has a name")
        name, value = parts[1], parts[2] if len(parts) > 2 else "none"
        if not value:
            raise TokenError(token, "value", "empty value (write 'none')")
        extra = _extras(token, parts[3:], "rs@")
        ratio = _frac(token, extra["r"][1:], "ratio") if "r" in extra else None
        hw = None
        if "s" in extra:
            h_text, sep, w_text = extra["s"][1:].partition("x")
            if not sep:
                raise TokenError(token, "size_ratio", f"expected 's<h ratio>x<w ratio>', got {extra['s']!r}")
            hw = (_frac(token, h_text, "size_ratio"), _frac(token, w_text, "size_ratio"))
        sources: tuple = ()
        if name in MULTI_INPUT_OPS and value != "none":
            sources = tuple(_parse_offset(token, s) for s in value.split(","))
        return _Spec("other", (name, value, sources), ratio, hw,
                     ref=_parse_ref(token, extra["@"]) if "@" in extra else None)
    raise TokenError(token, "kind", f"expected conv, pool, fc or other, got {kind!r}")


def check_token(token: str) -> None:
    """Raise :class:`TokenError` unless ``token`` is a well-formed layer token (sizes are checked on decoding)."""
    _parse_token(token)


def _earlier_size(token: str, offset: int | str, previous: Sequence[Layer], network_input, field: str,
                  layer_id: int) -> tuple[int, Size]:
    """(id, out_size) of the layer ``offset`` positions back, or (0, input size) for ``in``."""
    if offset == "in":
        if network_input is None:
            raise TokenError(token, field, "refers to the network input, which was not given", layer_id)
        return NETWORK_INPUT_ID, _flat(network_input)
    pos = len(previous) + offset
    if pos < 0:
        raise TokenError(token, field, f"refers {-offset} layers back, but only {len(previous)} precede it",
                         layer_id)
    return previous[pos].id, _flat(previous[pos].out_size)


def _scaled(token: str, n: int, ratio: Fraction, field: str, layer_id: int) -> int:
    value = n * ratio
    if value.denominator != 1:
        raise TokenError(token, field, f"ratio {ratio} of {n} is not a whole number", layer_id)
    return int(value)


def token_to_layer(token: str, in_size: Size | int, layer_id: int, previous: Sequence[Layer] = (),
                   network_input: Size | None = None, block: str | None = None) -> Layer:
    """The concrete layer a token denotes, its sizes inferred from ``in_size`` (the previous layer's output).

    ``previous`` holds the layers before it in order (for ``@-k`` inputs and Add/Mul/Concat sources, whose
    ids it supplies); ``network_input`` is the architecture's input size (for ``@in``/``in``).
    Raises :class:`TokenError` (an ArchitectureError) naming the token and field.
    """
    spec = _parse_token(token)
    if isinstance(layer_id, bool) or not isinstance(layer_id, int) or not 1 <= layer_id <= MAX_SIZE:
        raise ArchitectureError(f"must be a positive integer, got {layer_id!r}", field="layer_id")
    in_size = size_argument(in_size, "in_size")
    if isinstance(previous, (str, bytes)) or not isinstance(previous, Sequence):
        raise ArchitectureError(f"expected the earlier layers in order, got {type(previous).__name__}",
                                field="previous")
    if network_input is not None:
        network_input = size_argument(network_input, "network_input")
    if spec.ref is not None:
        in_size = _earlier_size(token, spec.ref, previous, network_input, "input", layer_id)[1]
    h, w, c = _flat(in_size)
    if spec.kind == "conv":
        kernel, stride, padding, dilation, groups, bias = spec.fields
        out_hw = shapes.conv_out_hw((h, w), kernel, stride, padding, dilation)
        layer = ConvLayer(layer_id, (h, w, c), (*out_hw, _scaled(token, c, spec.ratio, "ratio", layer_id)), kernel,
                          stride, padding, dilation, c if groups == "dw" else groups, bias, block)
    elif spec.kind == "pool":
        type_, kernel, stride, padding, dilation, bias, ceil = spec.fields
        out_hw = shapes.conv_out_hw((h, w), kernel, stride, padding, dilation, ceil_mode=ceil)
        layer = PoolLayer(layer_id, type_, (h, w, c), (*out_hw, c), kernel, stride, padding, dilation, bias, block)
    elif spec.kind == "fc":
        layer = FCLayer(layer_id, h * w * c, _scaled(token, h * w * c, spec.ratio, "ratio", layer_id), block)
    else:
        name, value, sources = spec.fields
        channels = None
        if sources:
            found = [_earlier_size(token, s, previous, network_input, "value", layer_id) for s in sources]
            value = "-".join(str(sid) for sid, _ in found)
            channels = sum(size[2] for _, size in found)
        if spec.ratio is not None:
            sh, sw = spec.hw or (1, 1)
            out = (_scaled(token, h, sh, "size_ratio", layer_id), _scaled(token, w, sw, "size_ratio", layer_id),
                   _scaled(token, c, spec.ratio, "ratio", layer_id))
        else:
            out = _derived_out(name, value, (h, w, c), channels if name == "Concat" else None)
            if out is None:
                raise TokenError(token, "value", f"{name} needs an output size 'H-W', got {value!r}", layer_id)
        layer = OtherLayer(layer_id, name, (h, w, c), out, value, block)
    out_size = _flat(layer.out_size)
    if min(out_size) < 1:
        raise TokenError(token, "in_size", f"gives an empty output {out_size} for input {(h, w, c)}", layer_id)
    try:
        check_layer(layer)
    except ArchitectureError as err:
        raise TokenError(token, err.field, err.reason, layer_id) from None
    return layer


def tokens_to_architecture(tokens: Iterable[str], input_size: Size | int, name: str | None = None) -> Architecture:
    """Rebuild a concrete Architecture (ids 1..n) from layer tokens by shape inference from ``input_size`` (H, W, C)."""
    net_in = size_argument(input_size, "input_size")
    tokens = sequence_argument(tokens, "tokens")
    layers: list[Layer] = []
    current = net_in
    for i, token in enumerate(tokens):
        try:
            layer = token_to_layer(token, current, i + 1, layers, net_in)
        except ArchitectureError as err:
            raise err.located(line=i + 1, source="tokens") from None
        layers.append(layer)
        current = _flat(layer.out_size)
    return Architecture(tuple(layers), name=name)
