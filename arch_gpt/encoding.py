"""The paper's architecture language (GPT-NAS §3.2, Table 1) at the level of whole networks.

An :class:`Architecture` is an ordered list of layers (execution order) with a text form (one layer per
line, ``#`` comments, an optional ``# name:`` line), a JSON form and atomic file save/load. Constructing one
checks each layer (:func:`check_layer`); parsing, loading, saving and tracing also check continuity
(:meth:`Architecture.check`: each layer's input exists, see :func:`arch_gpt.shapes.continuity_problem`), so a
saved file always loads back. The layer level — the four layer kinds, their ``key:value`` text, shape checks,
:class:`ArchitectureError` — lives in :mod:`arch_gpt.layers` and is re-exported here, so
``from arch_gpt.encoding import ConvLayer`` works.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from arch_gpt import shapes
from arch_gpt.io import atomic_write_text
from arch_gpt.layers import (
    LAYER_TYPES, MAX_SIZE, MULTI_INPUT_OPS, POOL_TYPES, ArchitectureError, ConvLayer, FCLayer, Layer, OtherLayer,
    PoolLayer, Size, check_layer, check_text, format_layer, layer_fields, parse_layer,
)

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

MAX_FILE_BYTES = 64 * 2 ** 20  # the largest architecture file :meth:`Architecture.load` reads (traces are ~100 kB)

__all__ = [
    "Architecture", "LAYER_TYPES", "MAX_SIZE", "MULTI_INPUT_OPS", "POOL_TYPES", "ArchitectureError", "ConvLayer",
    "FCLayer", "Layer", "OtherLayer", "PoolLayer", "Size", "check_layer", "check_text", "format_layer", "layer_fields",
    "parse_layer",
]


# ----------------------------------------------------------------------------- architectures

@dataclass(frozen=True)
class Architecture:
    """An ordered list of layers (execution order), optionally named; block labels live on layers."""
    layers: tuple[Layer, ...]
    name: str | None = None

    def __post_init__(self) -> None:
        """Freeze ``layers`` as a tuple; every item must be a valid layer (:func:`check_layer`), ids unique, and
        ``name`` None or one line of text (an empty name is None). Continuity is :meth:`check`'s."""
        if isinstance(self.layers, (str, bytes)) or not isinstance(self.layers, Iterable):
            raise ArchitectureError(f"expected a sequence of layers, got {type(self.layers).__name__}",
                                    field="layers")
        object.__setattr__(self, "layers", tuple(self.layers))
        if self.name == "":
            object.__setattr__(self, "name", None)
        if self.name is not None:
            check_text(self.name, "name", in_layer=False)
        seen: set[int] = set()
        for layer in self.layers:
            check_layer(layer)
            if layer.id in seen:
                raise ArchitectureError("duplicate layer id", field="id", layer_id=layer.id)
            seen.add(layer.id)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, i: int | slice) -> Any:
        """A layer (or a tuple of layers for a slice), as on ``layers``."""
        return self.layers[i]

    @property
    def blocks(self) -> tuple[str | None, ...]:
        """The block label of each layer (None where unlabelled)."""
        return tuple(layer.block for layer in self.layers)

    @property
    def input_size(self) -> Size | None:
        """The network input as ``(H, W, C)``: the first layer's in_size (``(1, 1, n)`` for an FC); None if empty."""
        first = self.layers[0] if self.layers else None
        if first is None:
            return None
        return (1, 1, first.in_size) if isinstance(first, FCLayer) else first.in_size

    def with_blocks(self, labels: Iterable[str | None]) -> "Architecture":
        """A copy whose layers carry ``labels`` as block labels (one per layer)."""
        if isinstance(labels, str) or not isinstance(labels, Iterable):
            raise ArchitectureError(f"expected one block label (or None) per layer, got {type(labels).__name__}",
                                    field="block")
        labels = list(labels)
        if len(labels) != len(self.layers):
            raise ArchitectureError(f"{len(labels)} block labels for {len(self.layers)} layers", field="block")
        return replace(self, layers=tuple(replace(l, block=b) for l, b in zip(self.layers, labels)))

    def renumbered(self, start: int = 1) -> "Architecture":
        """Ids 1..n in order; Add/Concat/Mul source ids are remapped to match."""
        if isinstance(start, bool) or not isinstance(start, int) or start < 1:
            raise ArchitectureError(f"must be a positive integer, got {start!r}", field="start")
        mapping = {layer.id: start + i for i, layer in enumerate(self.layers)}
        new = []
        for layer in self.layers:
            kw = {"id": mapping[layer.id]}
            if isinstance(layer, OtherLayer) and layer.source_ids():
                kw["value"] = "-".join(str(mapping.get(s, s)) for s in layer.source_ids())
            new.append(replace(layer, **kw))
        return replace(self, layers=tuple(new))

    def check(self) -> "Architecture":
        """Raise ArchitectureError (naming the layer and field) unless every layer's input exists: see
        :func:`arch_gpt.shapes.continuity_problem` for the rules. Returns ``self``."""
        problem = shapes.continuity_problem(self.layers)
        if problem is not None:
            pos, fld, message = problem
            raise ArchitectureError(message, field=fld, layer_id=self.layers[pos].id)
        return self

    # --- text ---------------------------------------------------------------------------
    def to_text(self) -> str:
        """One layer per line; a ``# name: ...`` comment first when the architecture has a name."""
        head = [f"# name: {self.name}"] if self.name else []
        return "\n".join(head + [format_layer(l) for l in self.layers]) + "\n"

    @classmethod
    def from_text(cls, text: str, source: str | None = None) -> "Architecture":
        """Parse and :meth:`check` the text form. Blank lines and ``#`` comments are skipped."""
        _require_str(text, "from_text", source)
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
        arch = cls(tuple(layers), name=name)
        try:
            return arch.check()
        except ArchitectureError as err:
            raise err.located(line=seen[err.layer_id], source=source) from None

    # --- json ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"name": ..., "layers": [layer text, ...]}``."""
        return {"name": self.name, "layers": [format_layer(l) for l in self.layers]}

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> "Architecture":
        """Parse and :meth:`check` the JSON form (as loaded); errors name ``source`` and the index into ``layers``."""
        if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
            raise ArchitectureError("expected a JSON object with a 'layers' list", field="layers", source=source)
        if data.get("name") is not None and not isinstance(data["name"], str):
            raise ArchitectureError(f"expected text or null, got {type(data['name']).__name__}", field="name",
                                    source=source)
        layers = []
        for i, text in enumerate(data["layers"], start=1):
            if not isinstance(text, str):
                raise ArchitectureError(f"layer {i} is not a string", field="layers", source=source)
            try:
                layers.append(parse_layer(text))
            except ArchitectureError as err:
                raise err.located(line=i, source=f"{source or '<json>'} layers[{i - 1}]") from None
        try:
            arch = cls(tuple(layers), name=data.get("name"))
        except ArchitectureError as err:
            raise err.located(source=source) from None
        try:
            return arch.check()
        except ArchitectureError as err:
            i = next(i for i, layer in enumerate(layers) if layer.id == err.layer_id)
            raise err.located(line=i + 1, source=f"{source or '<json>'} layers[{i}]") from None

    @classmethod
    def from_json(cls, text: str, source: str | None = None) -> "Architecture":
        """Parse JSON text (see :meth:`from_dict`); invalid JSON is an ArchitectureError naming the line."""
        _require_str(text, "from_json", source)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ArchitectureError(f"not valid JSON ({err.msg})", line=err.lineno, source=source) from None
        return cls.from_dict(data, source=source)

    # --- PyTorch: arch_gpt.torch_trace / torch_build import only arch_gpt.layers, never this module ---------
    @classmethod
    def from_module(cls, module: "nn.Module", input_size: Sequence[int] = (3, 32, 32),
                    name: str | None = None) -> "Architecture":
        """Trace ``module`` on a zero input of shape ``(1, *input_size)`` (C, H, W) into a block-labelled, checked
        Architecture with ids 1..n (see :func:`arch_gpt.torch_trace.trace_layers`)."""
        from torch import nn

        from arch_gpt.torch_trace import trace_layers  # lazy only because torch is heavy: `import arch_gpt` stays light

        if not isinstance(module, nn.Module):
            raise ArchitectureError(f"expected a torch.nn.Module to trace, got {type(module).__name__}", field="module")
        if isinstance(input_size, (str, bytes)) or not isinstance(input_size, Sequence):
            raise ArchitectureError(f"expected (channels, height, width), got {input_size!r}", field="input_size")
        arch = cls(tuple(trace_layers(module, input_size)), name=name)
        try:
            return arch.check()
        except ArchitectureError as err:  # an op the tracer does not record (e.g. a permute) changed the layout
            raise ArchitectureError(f"the layers traced from {type(module).__name__} do not connect, so this model "
                                    f"cannot be written in the language ({err.reason})", field=err.field,
                                    layer_id=err.layer_id) from None

    def to_module(self) -> "nn.Module":
        """A runnable ``nn.Module`` executing these layers in order
        (see :class:`arch_gpt.torch_build.ArchitectureModule`)."""
        from arch_gpt.torch_build import ArchitectureModule  # lazy only because torch is heavy

        return ArchitectureModule(self)

    # --- files --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """:meth:`check`, then write atomically (missing parent folders are made); ``.json`` files get JSON,
        anything else the text form. A path that cannot be written is an ArchitectureError naming it."""
        if not isinstance(path, (str, os.PathLike)):
            raise ArchitectureError(f"expected a file path, got {type(path).__name__}", field="path")
        path = Path(path)
        if path.is_dir():
            raise ArchitectureError("is a directory; give a file name to write the architecture to",
                                    source=str(path))
        blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise ArchitectureError(f"{blocking} is a file, not a folder", source=str(path))
        self.check()
        text = self.to_json() if path.suffix == ".json" else self.to_text()
        try:
            atomic_write_text(path, text)
        except OSError as err:
            raise ArchitectureError(f"cannot write the architecture here ({err.strerror or err})",
                                    source=str(path)) from None
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Architecture":
        """Read and :meth:`check` a file written by :meth:`save`: JSON for ``.json`` or text starting with ``{``/``[``,
        else the text form. A missing, unreadable, binary or over-large (:data:`MAX_FILE_BYTES`) file is an
        ArchitectureError naming it."""
        if not isinstance(path, (str, os.PathLike)):
            raise ArchitectureError(f"expected a file path, got {type(path).__name__}", field="path")
        path = Path(path)
        if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
            raise ArchitectureError(f"{path.stat().st_size} bytes: too large to be an architecture (the limit is "
                                    f"{MAX_FILE_BYTES} bytes)", source=str(path))
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ArchitectureError("not a text file: this is not an architecture", source=str(path)) from None
        except FileNotFoundError:
            raise ArchitectureError("file not found", source=str(path)) from None
        except IsADirectoryError:
            raise ArchitectureError("is a directory, not an architecture file", source=str(path)) from None
        except OSError as err:
            raise ArchitectureError(f"cannot read the file ({err.strerror or err})", source=str(path)) from None
        if "\x00" in text:
            raise ArchitectureError("not a text file (it holds NUL bytes): this is not an architecture",
                                    source=str(path))
        if path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "[")):
            return cls.from_json(text, source=str(path))
        return cls.from_text(text, source=str(path))


def _require_str(text: Any, method: str, source: str | None) -> None:
    """An ArchitectureError unless ``text`` is a str (bytes must be decoded first; files go through ``load``)."""
    if not isinstance(text, str):
        hint = " (decode bytes first, or use Architecture.load for a file)" if isinstance(text, bytes) else ""
        raise ArchitectureError(f"Architecture.{method} expects a str, got {type(text).__name__}{hint}",
                                field="text", source=source)
