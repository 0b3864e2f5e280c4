"""Search-space spec files: read (YAML, JSON, or the same as a dict) and checked into a :class:`SpaceSpec`.

A spec is a fixed skeleton and searchable slots::

    name: my-space                  # optional title
    input_size: [32, 32, 3]         # optional default (H, W, C); a search uses its data's size
    stem: [{op: conv, kernel: 3, width: 32}]          # fixed ops before the slots (optional)
    stages:                                           # required: the slots, grouped
      - {width: 64, stride: 2, slots: 2}              # 2 slots s1b1, s1b2; the first one has stride 2
      - name: deep
        width: 128
        slots:                                        # or a list of slots, each with its own fields
          - {name: d1, stride: 2}
          - {name: d2, choices: [{code: a, op: identity}, {code: b, op: basic}]}
    choices:                                          # the choices of every slot without its own
      - {code: "0", op: identity}
      - {code: "1", op: inverted_residual, expansion: 3, kernel: 3}
    head: [{op: conv, kernel: 1, width: 1280}]        # fixed ops after the slots (optional)

Then global average pooling, flatten and a linear classifier. The ops are :mod:`arch_gpt.zoo.spec_ops`'s
(``conv``, ``sep_conv``, ``inverted_residual``, ``basic``, ``bottleneck``, ``identity``, ``max_pool``, ``avg_pool``,
``zero``); their fields ``kernel`` (odd, default 3), ``expansion`` (inverted_residual, required), ``groups`` (conv,
default 1) and ``reduction`` (bottleneck, default 4), like ``op`` itself, may be set on the spec, a stage or a slot
as defaults for the choices below it (a default that does not apply to a choice's op is not used; a choice's own
field that does not apply is an error). A choice's ``width`` is a channel count, its ``width_mult`` a multiple of
the slot's base width (the slot's or its stage's ``width``, rounded to the nearest integer); without either the
choice takes the slot's width, and without one of those it keeps its input's channels. ``stride``: a choice's own,
else its slot's, else its stage's for the stage's first slot, else 1. Each choice's ``code`` (a string of 1 to 16
characters without spaces; no code of a slot may begin another one) is its part of the genome's key: the slots'
codes concatenated in order. Every error is one :class:`SpecError` naming the file, the slot (or stage, stem or
head entry), the choice and the field.
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NoReturn, Sequence

from arch_gpt.encoding import Size
from arch_gpt.errors import UserInputError
from arch_gpt.search.spaces.checks import MAX_CHANNELS, input_size_hwc
from arch_gpt.zoo.spec_ops import KINDS, REQUIRED, Op, out_size, problem

SPEC_SUFFIXES = (".yaml", ".yml", ".json")
MAX_SPEC_BYTES = 1 << 20
MAX_SLOTS, MAX_CHOICES, MAX_CODE, MAX_SIZES = 1000, 256, 16, 4096
OP_FIELDS = ("op", "kernel", "expansion", "groups", "reduction")  # inherited as defaults by the choices below
INT_LIMITS = {"kernel": (1, 15), "stride": (1, 8), "expansion": (1, 16), "groups": (1, MAX_CHANNELS),
              "reduction": (1, 64), "width": (1, MAX_CHANNELS)}
TOP_FIELDS = ("name", "description", "input_size", "stem", "stages", "choices", "head") + OP_FIELDS
STAGE_FIELDS = ("name", "width", "stride", "slots", "choices") + OP_FIELDS
SLOT_FIELDS = ("name", "width", "stride", "choices") + OP_FIELDS
CHOICE_FIELDS = ("code", "width", "width_mult", "stride") + OP_FIELDS
FIXED_FIELDS = ("width", "stride") + OP_FIELDS


class SpecError(UserInputError):
    """A bad search-space spec; the message names the file, the slot (or other part), the choice and the field."""


@dataclass(frozen=True)
class Choice:
    """One choice of a slot: its key code and its resolved op."""
    code: str
    op: Op


@dataclass(frozen=True)
class Slot:
    """A searchable position: a name and its choices (codes prefix-free)."""
    name: str
    choices: tuple[Choice, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.choices)


@dataclass(frozen=True)
class SpaceSpec:
    """A checked spec: where it came from, its title and default input size, and the network's parts."""
    source: str
    title: str | None
    input_size: Size | None
    stem: tuple[Op, ...]
    slots: tuple[Slot, ...]
    head: tuple[Op, ...]


class _At:
    """Where in the spec a check is (``my.yaml: slot 'b3': choice 'x'``); ``fail`` raises the located error."""

    def __init__(self, source: str, parts: tuple[str, ...] = ()):
        self.source, self.parts = source, parts

    def sub(self, part: str) -> "_At":
        return _At(self.source, self.parts + (part,))

    def fail(self, field: str | None, message: str) -> NoReturn:
        where = ": ".join((self.source, *self.parts, *([f"field {field!r}"] if field else [])))
        raise SpecError(f"{where}: {message}")


# ----------------------------------------------------------------------------- files

def is_spec_path(value: object) -> bool:
    """Whether ``value`` names a spec file (a str or Path ending .yaml, .yml or .json)."""
    return isinstance(value, (str, Path)) and str(value).lower().endswith(SPEC_SUFFIXES)


def read_spec(value: str | Path | Mapping) -> tuple[dict, str]:
    """The spec's data and its source name (the file, or ``<spec>`` for a dict)."""
    if isinstance(value, Mapping):
        return dict(value), "<spec>"
    path = Path(value)
    source = str(value)
    if not is_spec_path(path):
        raise SpecError(f"{source}: a spec file ends with {', '.join(SPEC_SUFFIXES)}")
    if not path.is_file():
        raise SpecError(f"{source}: spec file not found")
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise SpecError(f"{source}: larger than {MAX_SPEC_BYTES >> 20} MiB; is it a spec?")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{source}: not UTF-8 text") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SpecError(f"{source}: line {err.lineno}: not valid JSON: {err.msg}") from None
    else:
        import yaml
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line = f"line {mark.line + 1}: " if mark is not None else ""
            raise SpecError(f"{source}: {line}not valid YAML: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a spec is a mapping (stem, stages, head, ...), got {type(data).__name__}")
    return data, source


# ----------------------------------------------------------------------------- fields

def _mapping(value: object, at: _At, allowed: Sequence[str]) -> Mapping:
    if not isinstance(value, Mapping):
        at.fail(None, f"expected a mapping of fields, got {_shown(value)}")
    for key in value:
        if key not in allowed:
            at.fail(str(key), f"unknown field; allowed: {', '.join(allowed)}")
    return value


def _int(value: object, at: _At, field: str) -> int:
    low, high = INT_LIMITS[field]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        at.fail(field, f"must be an integer, got {_shown(value)}")
    if not low <= value <= high:
        at.fail(field, f"must be {low} to {high}, got {value}")
    if field == "kernel" and value % 2 == 0:
        at.fail(field, f"must be odd (the padding is kernel // 2 on each side), got {value}")
    return int(value)


def _name(value: object, at: _At, field: str = "name") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        at.fail(field, f"must be a non-empty string of at most 64 characters, got {_shown(value)}")
    return value


def _list(value: object, at: _At, field: str, empty: bool = False) -> list:
    if not isinstance(value, list) or (not value and not empty):
        at.fail(field, f"must be a {'' if empty else 'non-empty '}list, got {_shown(value)}")
    return value


def _shown(value: object) -> str:
    text = repr(value)
    return f"{text[:60]}... ({type(value).__name__})" if len(text) > 60 else f"{text} ({type(value).__name__})"


def _defaults(obj: Mapping, at: _At, inherited: Mapping[str, Any]) -> dict:
    """``inherited`` updated with this level's op fields (each checked here)."""
    out = dict(inherited)
    for field in OP_FIELDS:
        if field in obj:
            value = obj[field]
            if field == "op" and value not in KINDS:
                at.fail(field, f"unknown op {_shown(value)}; choose one of: {', '.join(KINDS)}")
            out[field] = value if field == "op" else _int(value, at, field)
    return out


def _op(own: Mapping, defaults: Mapping[str, Any], at: _At, width: int | None, stride: int) -> Op:
    """The op of a choice or skeleton entry: ``own`` fields over ``defaults`` (own fields must apply)."""
    kind = defaults.get("op")
    if kind is None:
        at.fail("op", f"missing: name one of: {', '.join(KINDS)}")
    applicable = KINDS[kind][1]
    for field in OP_FIELDS[1:]:
        if field in own and field not in applicable:
            at.fail(field, f"does not apply to op {kind!r} (its fields: {', '.join(applicable) or 'none'})")
    values = {f: defaults[f] for f in applicable if f in defaults}
    for field in REQUIRED.get(kind, ()):
        if field not in values:
            at.fail(field, f"missing: op {kind!r} needs it")
    return Op(kind, width, stride, **values)


# ----------------------------------------------------------------------------- the spec

def parse_spec(data: Mapping, source: str = "<spec>") -> SpaceSpec:
    """Check a spec's data (see the module docstring); SpecError names the part and field at fault."""
    at = _At(source)
    top = _mapping(data, at, TOP_FIELDS)
    title = _name(top["name"], at) if "name" in top else None
    if "description" in top and not isinstance(top["description"], str):
        at.fail("description", f"must be a string, got {_shown(top['description'])}")
    input_size = None
    if "input_size" in top:
        try:
            input_size = input_size_hwc(top["input_size"], "input_size")
        except UserInputError as err:
            at.fail(None, str(err))
    defaults = _defaults(top, at, {})
    if "stages" not in top:
        at.fail("stages", "missing: a spec needs at least one stage of searchable slots")
    slots: list[Slot] = []
    for i, stage in enumerate(_list(top["stages"], at, "stages")):
        slots += _stage(stage, i, at, defaults, top.get("choices"))
    if len(slots) > MAX_SLOTS:
        at.fail("stages", f"{len(slots)} slots; at most {MAX_SLOTS}")
    names = [s.name for s in slots]
    for slot in slots:
        if names.count(slot.name) > 1:
            at.sub(f"slot {slot.name!r}").fail("name", "two slots have this name; slot names must be unique")
    if all(len(s.choices) < 2 for s in slots):
        at.fail("stages", "no slot has two choices: there is nothing to search")
    return SpaceSpec(source, title, input_size, _fixed(top, "stem", at), tuple(slots), _fixed(top, "head", at))


def _fixed(top: Mapping, part: str, at: _At) -> tuple[Op, ...]:
    """The skeleton's fixed ops (``stem`` or ``head``); they inherit nothing."""
    ops = []
    for i, entry in enumerate(_list(top.get(part, []), at, part, empty=True)):
        where = at.sub(f"{part}[{i}]")
        obj = _mapping(entry, where, FIXED_FIELDS)
        width = _int(obj["width"], where, "width") if "width" in obj else None
        stride = _int(obj["stride"], where, "stride") if "stride" in obj else 1
        ops.append(_op(obj, _defaults(obj, where, {}), where, width, stride))
    return tuple(ops)


def _stage(stage: object, i: int, at: _At, defaults: Mapping, choices: object) -> list[Slot]:
    obj = _mapping(stage, at.sub(f"stages[{i}]"), STAGE_FIELDS)
    name = _name(obj["name"], at.sub(f"stages[{i}]")) if "name" in obj else f"s{i + 1}"
    where = at.sub(f"stage {name!r}")
    width = _int(obj["width"], where, "width") if "width" in obj else None
    stride = _int(obj["stride"], where, "stride") if "stride" in obj else 1
    defaults = _defaults(obj, where, defaults)
    choices = obj.get("choices", choices)
    if "slots" not in obj:
        where.fail("slots", "missing: a number of slots or a list of slots")
    entries = obj["slots"]
    if isinstance(entries, numbers.Integral) and not isinstance(entries, bool):
        if not 1 <= entries <= MAX_SLOTS:
            where.fail("slots", f"must be 1 to {MAX_SLOTS}, got {entries}")
        entries = [{}] * int(entries)
    elif not isinstance(entries, list) or not entries:
        where.fail("slots", f"must be a number of slots or a non-empty list of slots, got {_shown(entries)}")
    return [_slot(entry, j, name, where, at, defaults, width, stride if j == 0 else 1, choices)
            for j, entry in enumerate(entries)]


def _slot(entry: object, j: int, stage: str, at: _At, root: _At, defaults: Mapping, width: int | None, stride: int,
          choices: object) -> Slot:
    """Slot ``j`` of stage ``stage`` (located at ``at`` until it has a name, then by its name alone)."""
    obj = _mapping(entry, at.sub(f"slots[{j}]"), SLOT_FIELDS)
    name = _name(obj["name"], at.sub(f"slots[{j}]")) if "name" in obj else f"{stage}b{j + 1}"
    where = root.sub(f"slot {name!r}")
    width = _int(obj["width"], where, "width") if "width" in obj else width
    stride = _int(obj["stride"], where, "stride") if "stride" in obj else stride
    defaults = _defaults(obj, where, defaults)
    choices = obj.get("choices", choices)
    if choices is None:
        where.fail("choices", "missing: give the slot, its stage or the spec a list of choices")
    entries = _list(choices, where, "choices")
    if len(entries) > MAX_CHOICES:
        where.fail("choices", f"{len(entries)} choices; at most {MAX_CHOICES}")
    out: list[Choice] = []
    for k, entry in enumerate(entries):
        choice = _choice(entry, k, where, defaults, width, stride)
        for other in out:
            if choice.code == other.code:
                where.sub(f"choice {choice.code!r}").fail("code", "duplicate: two choices of this slot have it")
            if choice.code.startswith(other.code) or other.code.startswith(choice.code):
                where.sub(f"choice {choice.code!r}").fail(
                    "code", f"begins or is the beginning of code {other.code!r}: the codes of a slot must not "
                            f"begin one another, so that every key splits one way")
        out.append(choice)
    return Slot(name, tuple(out))


def _choice(entry: object, k: int, at: _At, defaults: Mapping, base: int | None, stride: int) -> Choice:
    first = at.sub(f"choices[{k}]")
    if not isinstance(entry, Mapping):
        first.fail(None, f"expected a mapping of fields, got {_shown(entry)}")
    if "code" not in entry:
        first.fail("code", "missing: each choice declares its code (its part of the genome's key)")
    code = entry["code"]
    if not isinstance(code, str):
        hint = f'; quote it in YAML: code: "{code}"' if isinstance(code, numbers.Number) else ""
        first.fail("code", f"must be a string, got {_shown(code)}{hint}")
    if not 1 <= len(code) <= MAX_CODE or any(ch.isspace() for ch in code):
        first.fail("code", f"must be 1 to {MAX_CODE} characters without spaces, got {code!r}")
    where = at.sub(f"choice {code!r}")
    obj = _mapping(entry, where, CHOICE_FIELDS)
    width = base
    if "width" in obj and "width_mult" in obj:
        where.fail("width_mult", "give width or width_mult, not both")
    if "width" in obj:
        width = _int(obj["width"], where, "width")
    elif "width_mult" in obj:
        width = _multiplied(obj["width_mult"], base, where)
    stride = _int(obj["stride"], where, "stride") if "stride" in obj else stride
    return Choice(code, _op(obj, _defaults(obj, where, defaults), where, width, stride))


def _multiplied(mult: object, base: int | None, at: _At) -> int:
    if isinstance(mult, bool) or not isinstance(mult, numbers.Real) or not math.isfinite(mult) or not 0 < mult <= 64:
        at.fail("width_mult", f"must be a number in (0, 64], got {_shown(mult)}")
    if base is None:
        at.fail("width_mult", "needs a base width: give the slot or its stage a 'width'")
    width = int(round(base * float(mult)))
    if not 1 <= width <= MAX_CHANNELS:
        at.fail("width_mult", f"{mult} x width {base} gives {width} channels; must be 1 to {MAX_CHANNELS}")
    return width


# ----------------------------------------------------------------------------- shapes

def slot_inputs(spec: SpaceSpec, input_size: Size) -> list[tuple[Size, ...]]:
    """Every input size each slot can get (over all genomes), after checking that every op of every genome runs
    on every size it can get; SpecError names the part, choice and field that cannot."""
    at = _At(spec.source)
    network = f"(network input {'x'.join(map(str, input_size))})"
    sizes = {tuple(input_size)}

    def step(op: Op, where: _At, sizes: set) -> set:
        for size in sorted(sizes):
            bad = problem(op, size)
            if bad is not None:
                where.fail(bad[0], f"{bad[1]} {network}")
        return {out_size(op, s) for s in sizes}

    for i, op in enumerate(spec.stem):
        sizes = step(op, at.sub(f"stem[{i}]"), sizes)
    inputs = []
    for slot in spec.slots:
        inputs.append(tuple(sorted(sizes)))
        sizes = set().union(*(step(c.op, at.sub(f"slot {slot.name!r}").sub(f"choice {c.code!r}"), sizes)
                              for c in slot.choices))
        if len(sizes) > MAX_SIZES:
            at.sub(f"slot {slot.name!r}").fail("choices", f"its outputs can have more than {MAX_SIZES} sizes")
    for i, op in enumerate(spec.head):
        sizes = step(op, at.sub(f"head[{i}]"), sizes)
    return inputs
