"""The paper's architecture language (GPT-NAS §3.2, Table 1): four layer kinds and their text form.

A layer is written as ``key:value`` pairs joined by ``;``; tuples are joined by ``-``; feature-map
sizes are ``H-W-C``; padding is four numbers in ``torch.nn.functional.pad`` order
(left-right-top-bottom); ``bias_used`` is ``Yes``/``No``. Examples from the paper::

    id:1;in_size:32-32-3;out_size:32-32-3;kernel:1-1;stride:1-1;padding:0-0-0-0;dilation:1;groups:1;bias_used:No
    id:2;type:Max;in_size:32-32-3;out_size:16-16-3;kernel:2-2;stride:2-2;padding:1-0-1-0;dilation:1;bias_used:No

FC sizes are feature counts (``id:9;in_size:512;out_size:10``). An ``other`` layer (BN, activations,
add, concat, flatten, ...) carries its parameter in ``value`` (``none`` when it has none; source
ids such as ``3-7`` for Add/Concat). Any layer may end with an optional ``block:<label>`` field,
e.g. ``block:Bottleneck#3``, which names the block that holds it.
Every malformed input raises :class:`ArchitectureError`, a ``ValueError`` naming line, layer and field.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import ClassVar, Iterable, Iterator, Union

from arch_gpt import shapes
from arch_gpt.errors import UserInputError

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

def _fmt_value(key: str, value) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, tuple):
        return "-".join(str(v) for v in value)
    return str(value)


def format_layer(layer: Layer) -> str:
    """The canonical text of one layer (paper format, plus ``;block:...`` when labelled)."""
    keys = _KEYS[type(layer)]
    text = ";".join(f"{k}:{_fmt_value(k, getattr(layer, k))}" for k in keys)
    return text + (f";block:{layer.block}" if layer.block else "")


def _kind_of(keys: set[str]) -> type:
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
    try:
        value = int(text.strip())
    except ValueError:
        raise ArchitectureError(f"expected an integer, got {text!r}", field=key, layer_id=layer_id) from None
    if positive and value <= 0:
        raise ArchitectureError(f"must be positive, got {value}", field=key, layer_id=layer_id)
    if value < 0:
        raise ArchitectureError(f"must not be negative, got {value}", field=key, layer_id=layer_id)
    return value


def _parse_field(kind: type, key: str, text: str, layer_id: int | None):
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


# ----------------------------------------------------------------------------- architectures

@dataclass(frozen=True)
class Architecture:
    """An ordered list of layers (execution order), optionally named; block labels live on layers."""
    layers: tuple[Layer, ...]
    name: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        seen: set[int] = set()
        for layer in self.layers:
            if not isinstance(layer, LAYER_TYPES):
                raise ArchitectureError(f"not a layer: {type(layer).__name__}")
            if layer.id in seen:
                raise ArchitectureError("duplicate layer id", field="id", layer_id=layer.id)
            seen.add(layer.id)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    @property
    def blocks(self) -> tuple[str | None, ...]:
        """The block label of each layer (None where unlabelled)."""
        return tuple(layer.block for layer in self.layers)

    @property
    def input_size(self) -> Size | None:
        first = self.layers[0] if self.layers else None
        if first is None:
            return None
        return (1, 1, first.in_size) if isinstance(first, FCLayer) else first.in_size

    def with_blocks(self, labels: Iterable[str | None]) -> "Architecture":
        labels = list(labels)
        if len(labels) != len(self.layers):
            raise ArchitectureError(f"{len(labels)} block labels for {len(self.layers)} layers", field="block")
        return replace(self, layers=tuple(replace(l, block=b) for l, b in zip(self.layers, labels)))

    def renumbered(self, start: int = 1) -> "Architecture":
        """Ids 1..n in order; Add/Concat/Mul source ids are remapped to match."""
        mapping = {layer.id: start + i for i, layer in enumerate(self.layers)}
        new = []
        for layer in self.layers:
            kw = {"id": mapping[layer.id]}
            if isinstance(layer, OtherLayer) and layer.source_ids():
                kw["value"] = "-".join(str(mapping.get(s, s)) for s in layer.source_ids())
            new.append(replace(layer, **kw))
        return replace(self, layers=tuple(new))

    # --- text ---------------------------------------------------------------------------
    def to_text(self) -> str:
        """One layer per line; a ``# name: ...`` comment first when the architecture has a name."""
        head = [f"# name: {self.name}"] if self.name else []
        return "\n".join(head + [format_layer(l) for l in self.layers]) + "\n"

    @classmethod
    def from_text(cls, text: str, source: str | None = None) -> "Architecture":
        """Parse the text form. Blank lines and ``#`` comments are skipped."""
        layers, name = [], None
        seen: dict[int, int] = {}
        for lineno, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith("#"):
                body = stripped.lstrip("#").strip()
                if body.startswith("name:") and name is None:
                    name = body[len("name:"):].strip() or None
                continue
            try:
                layer = parse_layer(stripped)
            except ArchitectureError as err:
                raise err.located(line=lineno, source=source) from None
            if layer.id in seen:
                raise ArchitectureError(f"duplicate layer id (first used on line {seen[layer.id]})",
                                        field="id", layer_id=layer.id, line=lineno, source=source)
            seen[layer.id] = lineno
            layers.append(layer)
        if not layers:
            raise ArchitectureError("no layers found: this is not an architecture", source=source)
        return cls(tuple(layers), name=name)

    # --- json ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"name": self.name, "layers": [format_layer(l) for l in self.layers]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict, source: str | None = None) -> "Architecture":
        if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
            raise ArchitectureError("expected a JSON object with a 'layers' list", field="layers", source=source)
        layers = []
        for i, text in enumerate(data["layers"], start=1):
            if not isinstance(text, str):
                raise ArchitectureError(f"layer {i} is not a string", field="layers", source=source)
            try:
                layers.append(parse_layer(text))
            except ArchitectureError as err:
                raise err.located(line=i, source=f"{source or '<json>'} layers[{i - 1}]") from None
        try:
            return cls(tuple(layers), name=data.get("name"))
        except ArchitectureError as err:
            raise err.located(source=source) from None

    @classmethod
    def from_json(cls, text: str, source: str | None = None) -> "Architecture":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ArchitectureError(f"not valid JSON ({err.msg})", line=err.lineno, source=source) from None
        return cls.from_dict(data, source=source)

    # --- PyTorch (thin delegations to arch_gpt.torch_io, imported lazily: torch is heavy) -------------
    @classmethod
    def from_module(cls, module, input_size: tuple[int, int, int] = (3, 32, 32),
                    name: str | None = None) -> "Architecture":
        """Trace an ``nn.Module`` (see :func:`arch_gpt.torch_io.from_module`)."""
        from arch_gpt.torch_io import from_module

        return from_module(module, input_size=input_size, name=name)

    def to_module(self):
        """A runnable ``nn.Module`` for this architecture (see :func:`arch_gpt.torch_io.to_module`)."""
        from arch_gpt.torch_io import to_module

        return to_module(self)

    # --- files --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically; ``.json`` files get JSON, anything else the text form."""
        path = Path(path)
        text = self.to_json() if path.suffix == ".json" else self.to_text()
        atomic_write_text(path, text)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Architecture":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ArchitectureError("not a text file: this is not an architecture", source=str(path)) from None
        if text.lstrip().startswith("{"):
            return cls.from_json(text, source=str(path))
        return cls.from_text(text, source=str(path))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a file through a temporary file and an atomic rename, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def layer_fields(layer: Layer) -> dict:
    """The layer's fields as a plain dict (for JSON-like consumers); ``kind`` included."""
    out = {"kind": layer.kind}
    out.update({f.name: getattr(layer, f.name) for f in fields(layer)})
    return out
