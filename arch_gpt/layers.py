"""The layer level of the paper's architecture language (GPT-NAS §3.2, Table 1): four layer kinds and their text.

A layer is written as ``key:value`` pairs joined by ``;``; tuples are joined by ``-``; feature-map
sizes are ``H-W-C``; padding is four numbers in ``torch.nn.functional.pad`` order
(left-right-top-bottom); ``bias_used`` is ``Yes``/``No``. Examples from the paper::

    id:1;in_size:32-32-3;out_size:32-32-3;kernel:1-1;stride:1-1;padding:0-0-0-0;dilation:1;groups:1;bias_used:No
    id:2;type:Max;in_size:32-32-3;out_size:16-16-3;kernel:2-2;stride:2-2;padding:1-0-1-0;dilation:1;bias_used:No

FC sizes are feature counts (``id:9;in_size:512;out_size:10``). An ``other`` layer (BN, activations,
add, concat, flatten, ...) carries its parameter in ``value`` (``none`` when it has none; source
ids such as ``3-7`` for Add/Concat). Any layer may end with an optional ``block:<label>`` field,
e.g. ``block:Bottleneck#3``, which names the block that holds it (label classes: :data:`BLOCK_CLASSES`).
Every malformed input raises :class:`ArchitectureError`, a ``ValueError`` naming line, layer and field.
Whole architectures (ordered layers, files) live in :mod:`arch_gpt.encoding`; this module needs no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Union

from arch_gpt import shapes
from arch_gpt.errors import UserInputError

__all__ = [
    "BLOCK_CLASSES", "LAYER_BLOCKS", "LAYER_TYPES", "MODULE_BLOCKS", "MULTI_INPUT_OPS", "POOL_TYPES",
    "ArchitectureError", "ConvLayer", "FCLayer", "Layer", "OtherLayer", "PoolLayer", "Size",
    "block_class", "check_layer", "format_layer", "layer_fields", "parse_layer",
]

Size = tuple[int, int, int]  # (H, W, C)


class ArchitectureError(UserInputError):
    """Bad architecture input. The message names the source/line, the layer id and the field."""

    def __init__(self, message: str, *, field: str | None = None, layer_id: int | None = None,
                 line: int | None = None, source: str | None = None):
        self.reason, self.field, self.layer_id, self.line, self.source = message, field, layer_id, line, source
        where = []
        if source is not None or line is not None:
            where.append(f"{source or '<text>'}" + (f":{line}" if line is not None else ""))
        if layer_id is not None:
            where.append(f"layer id {layer_id}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)

    def located(self, *, line: int | None = None, source: str | None = None) -> "ArchitectureError":
        """Return a copy of this error with line/source filled in (keeps what is already set)."""
        return ArchitectureError(self.reason, field=self.field, layer_id=self.layer_id,
                                 line=self.line if self.line is not None else line,
                                 source=self.source if self.source is not None else source)


@dataclass(frozen=True)
class ConvLayer:
    """A 2-D convolution (Table 1: conv)."""
    kind: ClassVar[str] = "conv"
    id: int
    in_size: Size
    out_size: Size
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: int = 1
    groups: int = 1
    bias_used: bool = False
    block: str | None = field(default=None, compare=True)


@dataclass(frozen=True)
class PoolLayer:
    """A max or average pooling layer (Table 1: pool); ``type`` is ``Max`` or ``Avg``."""
    kind: ClassVar[str] = "pool"
    id: int
    type: str
    in_size: Size
    out_size: Size
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: int = 1
    bias_used: bool = False
    block: str | None = None


@dataclass(frozen=True)
class FCLayer:
    """A fully connected layer (Table 1: FC); sizes are feature counts."""
    kind: ClassVar[str] = "fc"
    id: int
    in_size: int
    out_size: int
    block: str | None = None


@dataclass(frozen=True)
class OtherLayer:
    """Any other layer (Table 1: other): BN, activations, dropout, add, concat, flatten, ...

    ``name`` says what it is, ``value`` carries its parameter as text (``none`` if it has none).
    A flattened vector of n features has size ``(1, 1, n)``.
    """
    kind: ClassVar[str] = "other"
    id: int
    name: str
    in_size: Size
    out_size: Size
    value: str = "none"
    block: str | None = None

    def source_ids(self) -> tuple[int, ...]:
        """Source layer ids of an Add/Concat/Mul (its ``value``), empty for other names."""
        if self.name not in MULTI_INPUT_OPS or self.value == "none":
            return ()
        return tuple(int(v) for v in self.value.split("-"))


Layer = Union[ConvLayer, PoolLayer, FCLayer, OtherLayer]
LAYER_TYPES: tuple[type, ...] = (ConvLayer, PoolLayer, FCLayer, OtherLayer)
MULTI_INPUT_OPS = frozenset({"Add", "Concat", "Mul"})
POOL_TYPES = ("Max", "Avg")

# Field order of the text form, per kind (Table 1). ``block`` is optional and always last.
_KEYS: dict[type, tuple[str, ...]] = {
    ConvLayer: ("id", "in_size", "out_size", "kernel", "stride", "padding", "dilation", "groups", "bias_used"),
    PoolLayer: ("id", "type", "in_size", "out_size", "kernel", "stride", "padding", "dilation", "bias_used"),
    FCLayer: ("id", "in_size", "out_size"),
    OtherLayer: ("id", "name", "in_size", "out_size", "value"),
}
_ARITY = {"in_size": 3, "out_size": 3, "kernel": 2, "stride": 2, "padding": 4}


# ----------------------------------------------------------------------------- parse / format

def _fmt_value(value: Any) -> str:
    """One field's text: ``Yes``/``No`` for booleans, ``-``-joined tuples, ``str`` otherwise."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, tuple):
        return "-".join(str(v) for v in value)
    return str(value)


def format_layer(layer: Layer) -> str:
    """The canonical text of one layer (paper format, plus ``;block:...`` when labelled)."""
    keys = _KEYS[type(layer)]
    text = ";".join(f"{k}:{_fmt_value(getattr(layer, k))}" for k in keys)
    return text + (f";block:{layer.block}" if layer.block else "")


def _kind_of(keys: set[str]) -> type:
    """Which layer class a set of keys describes (the text form has no explicit kind field)."""
    if "kernel" in keys and "type" in keys:
        return PoolLayer
    if "kernel" in keys or "groups" in keys:
        return ConvLayer
    if "name" in keys or "value" in keys:
        return OtherLayer
    if "type" in keys:
        return PoolLayer
    return FCLayer


def _parse_int(text: str, key: str, layer_id: int | None, *, positive: bool) -> int:
    """An integer field (positive, or at least non-negative), else an ArchitectureError naming the field."""
    try:
        value = int(text.strip())
    except ValueError:
        raise ArchitectureError(f"expected an integer, got {text!r}", field=key, layer_id=layer_id) from None
    if positive and value <= 0:
        raise ArchitectureError(f"must be positive, got {value}", field=key, layer_id=layer_id)
    if value < 0:
        raise ArchitectureError(f"must not be negative, got {value}", field=key, layer_id=layer_id)
    return value


def _parse_field(kind: type, key: str, text: str, layer_id: int | None) -> Any:
    """The typed value of one ``key:text`` pair of a ``kind`` layer (int, tuple, bool or str)."""
    if key in ("id", "dilation", "groups") or (kind is FCLayer and key in ("in_size", "out_size")):
        return _parse_int(text, key, layer_id, positive=True)
    if key in _ARITY:
        parts = text.split("-")
        if len(parts) != _ARITY[key]:
            raise ArchitectureError(f"expected {_ARITY[key]} numbers joined by '-', got {text!r}",
                                    field=key, layer_id=layer_id)
        return tuple(_parse_int(p, key, layer_id, positive=key != "padding") for p in parts)
    if key == "bias_used":
        if text not in ("Yes", "No"):
            raise ArchitectureError(f"expected Yes or No, got {text!r}", field=key, layer_id=layer_id)
        return text == "Yes"
    if key == "type" and text not in POOL_TYPES:
        raise ArchitectureError(f"expected one of {', '.join(POOL_TYPES)}, got {text!r}", field=key, layer_id=layer_id)
    if key in ("name", "block") and not text:
        raise ArchitectureError("must not be empty", field=key, layer_id=layer_id)
    return text


def parse_layer(text: str) -> Layer:
    """Parse one layer line (spaces after ``;`` are tolerated) and check its shapes."""
    pairs: list[tuple[str, str]] = []
    for chunk in text.strip().split(";"):
        chunk = chunk.strip()
        if not chunk:
            continue
        key, sep, value = chunk.partition(":")
        if not sep:
            raise ArchitectureError(f"expected 'key:value', got {chunk!r}", field=key or None)
        pairs.append((key.strip(), value.strip()))
    if not pairs:
        raise ArchitectureError("empty layer")
    raw = dict(pairs)
    layer_id = None
    if "id" in raw:
        layer_id = _parse_int(raw["id"], "id", None, positive=True)
    if len(raw) != len(pairs):
        dup = next(k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i]))
        raise ArchitectureError("key given twice", field=dup, layer_id=layer_id)
    kind = _kind_of(set(raw))
    keys = _KEYS[kind]
    for key in raw:
        if key not in keys and key != "block":
            raise ArchitectureError(f"unknown key for a {kind.kind} layer (expected {', '.join(keys)})",
                                    field=key, layer_id=layer_id)
    for key in keys:
        if key not in raw:
            raise ArchitectureError(f"missing key for a {kind.kind} layer", field=key, layer_id=layer_id)
    values = {k: _parse_field(kind, k, raw[k], layer_id) for k in keys}
    layer = kind(**values, block=raw.get("block"))
    check_layer(layer)
    return layer


def check_layer(layer: Layer) -> None:
    """Raise ArchitectureError if the layer's out_size disagrees with its own parameters."""
    problem = shapes.layer_inconsistency(layer)
    if problem is not None:
        fld, message = problem
        raise ArchitectureError(message, field=fld, layer_id=layer.id)


def layer_fields(layer: Layer) -> dict[str, Any]:
    """The layer's fields as a plain dict (for JSON-like consumers); ``kind`` included."""
    out: dict[str, Any] = {"kind": layer.kind}
    out.update({f.name: getattr(layer, f.name) for f in fields(layer)})
    return out


# ----------------------------------------------------------------------------- block labels

# torchvision block classes used as labels by the tracer (the outermost one enclosing a layer wins).
MODULE_BLOCKS: tuple[str, ...] = (
    "BasicBlock", "Bottleneck", "InvertedResidual", "MBConv", "FusedMBConv", "Conv2dNormActivation",
    "SqueezeExcitation", "ResBottleneckBlock", "SimpleStemIN", "Inception", "BasicConv2d",
)
# Labels of layers outside any block, by what the layer is.
LAYER_BLOCKS: tuple[str, ...] = ("Conv", "BN", "ReLU", "MaxPool", "AvgPool", "Linear", "Other")
BLOCK_CLASSES: tuple[str, ...] = MODULE_BLOCKS + LAYER_BLOCKS


def block_class(label: str | None) -> str | None:
    """The block class of a label: ``'Bottleneck#3' -> 'Bottleneck'`` (None stays None)."""
    if label is None:
        return None
    return label.split("#", 1)[0]
