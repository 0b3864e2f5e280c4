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

Limits (:func:`check_layer`): every number of a layer (id, sizes, kernel, stride, padding, dilation, groups)
is an integer of at most :data:`MAX_SIZE` (2**24); ``name``, ``value`` and ``block`` are non-empty text without
``;``, line breaks or leading/trailing spaces (an architecture's name: without line breaks), so the text form
reads back the same layers; Add/Concat/Mul sources (``value``) are layer ids joined by ``-`` (0 = the network
input).
Whole architectures (ordered layers, files) live in :mod:`arch_gpt.encoding`; this module needs no torch.
"""
from __future__ import annotations

import numbers
import re
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Iterable, Union

from arch_gpt import shapes
from arch_gpt.errors import UserInputError

__all__ = [
    "BLOCK_CLASSES", "LAYER_BLOCKS", "LAYER_TYPES", "MAX_SIZE", "MODULE_BLOCKS", "MULTI_INPUT_OPS", "POOL_TYPES",
    "ArchitectureError", "ConvLayer", "FCLayer", "Layer", "OtherLayer", "PoolLayer", "Size",
    "block_class", "check_layer", "check_text", "format_layer", "layer_fields", "parse_layer",
]

Size = tuple[int, int, int]  # (H, W, C)
_MAX_MESSAGE = 300  # characters of an error's reason (a pasted megabyte of digits is not repeated back)
MAX_SIZE = 2 ** 24  # the largest number a layer field may hold: sizes, features, kernel, stride, padding, ids, ...
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")  # where str.splitlines splits


class ArchitectureError(UserInputError):
    """Bad architecture input. The message (one line, quoted input cut to a readable length) names the
    source/line, the layer id and the field."""

    def __init__(self, message: str, *, field: str | None = None, layer_id: int | None = None,
                 line: int | None = None, source: str | None = None):
        message = " ".join(str(message).splitlines())
        if len(message) > _MAX_MESSAGE:
            message = message[:_MAX_MESSAGE - 5] + " ...]"
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
        """Source layer ids of an Add/Concat/Mul (its ``value``; 0 = the network input), empty for other names.

        A value that is not ids joined by ``-`` raises ArchitectureError (field ``value``)."""
        if self.name not in MULTI_INPUT_OPS or self.value == "none":
            return ()
        parts = self.value.split("-") if isinstance(self.value, str) else [""]
        if not all(p.isascii() and p.isdigit() and len(p) <= 9 for p in parts):
            raise ArchitectureError(f"{self.name} sources must be layer ids joined by '-' (0 = the network input), "
                                    f"got {self.value!r}", field="value", layer_id=self.id)
        return tuple(int(p) for p in parts)


Layer = Union[ConvLayer, PoolLayer, FCLayer, OtherLayer]
LAYER_TYPES: tuple[type, ...] = (ConvLayer, PoolLayer, FCLayer, OtherLayer)
MULTI_INPUT_OPS = shapes.MULTI_INPUT_OPS  # {"Add", "Concat", "Mul"}
POOL_TYPES = ("Max", "Avg")

# Field order of the text form, per kind (Table 1). ``block`` is optional and always last.
_KEYS: dict[type, tuple[str, ...]] = {
    ConvLayer: ("id", "in_size", "out_size", "kernel", "stride", "padding", "dilation", "groups", "bias_used"),
    PoolLayer: ("id", "type", "in_size", "out_size", "kernel", "stride", "padding", "dilation", "bias_used"),
    FCLayer: ("id", "in_size", "out_size"),
    OtherLayer: ("id", "name", "in_size", "out_size", "value"),
}
_INTEGER = re.compile(r"-?[0-9]{1,30}")
_FIELD_NAMES = {kind: tuple(f.name for f in fields(kind)) for kind in LAYER_TYPES}
_LAYER_BAD = re.compile("[;\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")  # ';' and where str.splitlines splits
_NAME_BAD = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
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
    """The canonical text of one layer (paper format, plus ``;block:...`` when labelled).

    The layer is checked first (:func:`check_layer`), so the text always parses back to the same layer."""
    check_layer(layer)
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
    digits = text.strip()
    if not _INTEGER.fullmatch(digits):
        raise ArchitectureError(f"expected an integer, got {text!r}", field=key, layer_id=layer_id)
    value = int(digits)
    if positive and value <= 0:
        raise ArchitectureError(f"must be positive, got {value}", field=key, layer_id=layer_id)
    if value < 0:
        raise ArchitectureError(f"must not be negative, got {value}", field=key, layer_id=layer_id)
    if value > MAX_SIZE:
        raise ArchitectureError(f"must be at most {MAX_SIZE} (2**24), got {value}", field=key, layer_id=layer_id)
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
    if key in ("name", "value", "block"):
        check_text(text, key, layer_id)
    return text


def parse_layer(text: str) -> Layer:
    """Parse one layer line (spaces after ``;`` are tolerated) and check it (:func:`check_layer`)."""
    if not isinstance(text, str):
        raise ArchitectureError(f"expected the text of one layer (a str), got {type(text).__name__}")
    if _LINE_BREAKS.intersection(text.strip()):
        raise ArchitectureError("one layer is one line: the text contains a line break")
    pairs: list[tuple[str, str]] = []
    for chunk in text.strip().split(";"):
        chunk = chunk.strip()
        if not chunk:
            continue
        key, sep, value = chunk.partition(":")
        if not sep:
            raise ArchitectureError(f"expected 'key:value' pairs joined by ';', got {chunk!r}",
                                    field=key if key.isidentifier() else None)
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
    block = _parse_field(kind, "block", raw["block"], layer_id) if "block" in raw else None
    layer = kind(**values, block=block)
    check_layer(layer)
    return layer


def check_text(value: Any, key: str, layer_id: int | None = None, *, in_layer: bool = True) -> None:
    """Raise ArchitectureError unless ``value`` is text the layer format can hold: a non-empty str without
    line breaks, leading/trailing whitespace or (``in_layer``: a layer field) ``;``, so a save and load gives it
    back."""
    if (type(value) is str and value and not value[0].isspace() and not value[-1].isspace()
            and not (_LAYER_BAD if in_layer else _NAME_BAD).search(value)):
        return  # the common case, quickly
    problem = None
    if not isinstance(value, str):
        problem = f"expected text, got {type(value).__name__} {value!r}"
    elif not value:
        problem = "must not be empty" + (" (write 'none')" if key == "value" else "")
    elif _LINE_BREAKS.intersection(value):
        problem = f"must not contain a line break, got {value!r}"
    elif in_layer and ";" in value:
        problem = f"must not contain ';' (it separates the fields of a layer), got {value!r}"
    elif value != value.strip():
        problem = f"must not start or end with whitespace, got {value!r}"
    if problem:
        raise ArchitectureError(problem, field=key, layer_id=layer_id)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _number_problem(value: Any, minimum: int) -> str | None:
    if type(value) is int and minimum <= value <= MAX_SIZE:
        return None
    if not _is_int(value):
        return f"expected an integer, got {type(value).__name__} {value!r}"
    if not minimum <= value <= MAX_SIZE:
        return f"must be between {minimum} and {MAX_SIZE} (2**24), got {value}"
    return None


def _field_problem(layer: Layer, key: str, value: Any) -> str | None:
    """Why one field of ``layer`` has the wrong type or range (None when it is fine); text fields aside."""
    if key == "type":
        return None if value in POOL_TYPES else f"expected one of {', '.join(POOL_TYPES)}, got {value!r}"
    if key == "bias_used":
        return None if isinstance(value, bool) else f"expected True or False, got {value!r}"
    minimum = 0 if key == "padding" else 1
    if key in ("id", "dilation", "groups") or (layer.kind == "fc" and key in ("in_size", "out_size")):
        return _number_problem(value, minimum)
    arity = _ARITY[key]
    if (type(value) is tuple and len(value) == arity
            and all(type(v) is int and minimum <= v <= MAX_SIZE for v in value)):
        return None
    if not isinstance(value, tuple) or len(value) != arity:
        return f"expected a tuple of {arity} integers, got {value!r}"
    return next((p for p in (_number_problem(v, minimum) for v in value) if p), None)


def check_layer(layer: Layer) -> None:
    """Raise ArchitectureError (naming the field) unless ``layer`` is one of the four layer kinds whose fields have
    their types, lie within 1..:data:`MAX_SIZE` (padding from 0), hold text the format can carry
    (:func:`check_text`), name Add/Concat/Mul sources as ids, and whose out_size agrees with its own parameters."""
    if not isinstance(layer, LAYER_TYPES):
        raise ArchitectureError(f"not a layer: {type(layer).__name__}")
    if layer.__dict__.get("_checked"):
        return  # layers are frozen: one that passed stays valid
    layer_id = layer.id if _is_int(layer.id) else None
    for name in _FIELD_NAMES[type(layer)]:
        value = getattr(layer, name)
        if name in ("name", "value") or (name == "block" and value is not None):
            check_text(value, name, layer_id)
        elif name != "block":
            problem = _field_problem(layer, name, value)
            if problem is not None:
                raise ArchitectureError(problem, field=name, layer_id=layer_id)
    if isinstance(layer, OtherLayer):
        layer.source_ids()
    problem = shapes.layer_inconsistency(layer)
    if problem is not None:
        fld, message = problem
        raise ArchitectureError(message, field=fld, layer_id=layer.id)
    object.__setattr__(layer, "_checked", True)  # not a field: equality, hashing and repr ignore it


def sequence_argument(value: object, name: str) -> Iterable:
    """``value`` itself (never copied: generators stay lazy), or an ArchitectureError naming ``name`` when it is
    not an iterable of items (None, a str or bytes are not)."""
    if value is None or isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ArchitectureError(f"expected a sequence, got {type(value).__name__}", field=name)
    return value


def size_argument(size: object, name: str) -> Size:
    """An (H, W, C) size, or a feature count n as (1, 1, n), of positive integers up to MAX_SIZE; else an
    ArchitectureError naming ``name``."""
    if type(size) is tuple and len(size) == 3 and all(type(v) is int and 1 <= v <= MAX_SIZE for v in size):
        return size  # the common case, quickly
    flat = (1, 1, size) if isinstance(size, numbers.Integral) else size
    if (not isinstance(flat, (tuple, list)) or len(flat) != 3 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and 1 <= v <= MAX_SIZE for v in flat)):
        raise ArchitectureError(f"expected (H, W, C) positive integers up to {MAX_SIZE}, got {size!r}", field=name)
    return tuple(int(v) for v in flat)


def layer_fields(layer: Layer) -> dict[str, Any]:
    """The layer's fields as a plain dict (for JSON-like consumers); ``kind`` included."""
    if not isinstance(layer, LAYER_TYPES):
        raise ArchitectureError(f"not a layer: {type(layer).__name__}")
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
    if not isinstance(label, str):
        raise ArchitectureError(f"expected a block label (text) or None, got {type(label).__name__}", field="block")
    return label.split("#", 1)[0]
