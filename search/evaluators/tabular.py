"""Tabular benchmarks: the trained accuracy of every architecture of a space, looked up instead of trained.

Two JSON formats are read, detected from the entries:

- NAS-Bench-201: ``{arch_str: {"val_acc_200": float, "test_acc_200": float, "rank": int}}``; the
  fitness is ``val_acc_200`` and ``test_acc_200`` is reported;
- NAS-Bench-Macro: ``{code: {"test_acc": [floats], "mean_acc": float, "std": float, "params": int,
  "flops": int}}``; no validation split, so the fitness and the reported accuracy are ``mean_acc``.

Any other table is read with a :func:`generic_format` naming its fields: JSON ``{key: {field: value}}`` or CSV
(a ``key`` column, or the first one, then one column per field), for any space whose keys it uses. A field
holding a list of runs (JSON list, or numbers joined by ``;`` in CSV) is averaged and its spread kept; cost fields
(params, flops, latency, ...) travel in ``FitnessRecord.extra["costs"]``. Values must be finite and >= 0, and at
most 100 in a field whose name says it is an accuracy (``acc``).

A table is loaded once (:meth:`TabularBenchmark.load`) and shared by every search on it. Test accuracy
is never used for selection: it travels in ``FitnessRecord.test_acc`` only.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from arch_gpt.errors import UserInputError
from arch_gpt.search.protocols import Candidate, FitnessRecord, ParsesKeys, SearchSpace


class TableError(UserInputError):
    """A malformed benchmark table, or a key the table lacks; the message names the file and the key."""


@dataclass(frozen=True)
class Entry:
    """One architecture's row: ``fitness`` drives selection, ``test_acc`` is only reported."""
    fitness: float
    test_acc: float | None
    params: int | None = None
    rank: int | None = None
    costs: dict = field(default_factory=dict)  # cost field -> value (the mean of a list of runs)
    spread: dict = field(default_factory=dict)  # field -> standard deviation, for fields holding runs


@dataclass(frozen=True)
class TableFormat:
    """How one benchmark's rows are read: which space they index and which fields are needed."""
    space: str | None  # None: a generic table, for any space whose keys it uses
    fitness_field: str
    test_field: str | None
    required: tuple[str, ...]
    cost_fields: tuple[str, ...] = ()


def generic_format(fitness_field: str, test_field: str | None = None, cost_fields: Sequence[str] = ()
                   ) -> TableFormat:
    """The format of any table: which field is the fitness, which the reported test accuracy, which costs."""
    for name, value in (("fitness_field", fitness_field), ("test_field", test_field)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise TableError(f"{name}: expected a field name, got {value!r}")
    cost_fields = tuple(cost_fields)
    fields_ = (fitness_field, *([test_field] if test_field else []), *cost_fields)
    return TableFormat(None, fitness_field, test_field, tuple(dict.fromkeys(fields_)), cost_fields)


FORMATS = (
    TableFormat("nasbench201", "val_acc_200", "test_acc_200", ("val_acc_200", "test_acc_200")),
    TableFormat("nasbench-macro", "mean_acc", "mean_acc", ("mean_acc", "test_acc")),
)


def _number(value, path: str, key: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TableError(f"{path}: key {key!r}: field {field!r} must be a finite number, got {value!r}")
    return float(value)


def _percent(value, path: str, key: str, field: str) -> float:
    """An accuracy in percent: finite and within [0, 100] (a 1e308 or a -5 would silently become the optimum)."""
    number = _number(value, path, key, field)
    if not 0.0 <= number <= 100.0:
        raise TableError(f"{path}: key {key!r}: field {field!r} is an accuracy in percent and must be in "
                         f"[0, 100], got {value!r}")
    return number


def _measure(value, path: str, key: str, field: str) -> tuple[float, float | None]:
    """A field's value, or the mean and standard deviation of a list of runs; accuracies in [0, 100]."""
    check = _percent if "acc" in field.lower() else _nonnegative
    if isinstance(value, list):
        if not value:
            raise TableError(f"{path}: key {key!r}: field {field!r} is an empty list of runs")
        runs = [check(v, path, key, field) for v in value]
        mean = sum(runs) / len(runs)
        return mean, math.sqrt(sum((r - mean) ** 2 for r in runs) / len(runs))
    return check(value, path, key, field), None


def _nonnegative(value, path: str, key: str, field: str) -> float:
    number = _number(value, path, key, field)
    if number < 0:
        raise TableError(f"{path}: key {key!r}: field {field!r} must be >= 0, got {value!r}")
    return number


def _integer(value, path: str, key: str, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TableError(f"{path}: key {key!r}: field {field!r} must be an integer, got {value!r}")
    return value


def detect_format(data: Mapping, path: str) -> TableFormat:
    """The format whose required fields the first entry has; TableError naming the file and key if none."""
    if not isinstance(data, dict) or not data:
        raise TableError(f"{path}: expected a non-empty JSON object mapping architecture keys to results")
    key, row = next(iter(data.items()))
    if isinstance(row, dict):
        for fmt in FORMATS:
            if all(f in row for f in fmt.required):
                return fmt
    expected = " or ".join("{" + ", ".join(f.required) + "}" for f in FORMATS)
    raise TableError(f"{path}: key {key!r}: unknown table format, expected an object with fields {expected}")


@dataclass
class TabularBenchmark:
    """A loaded table: ``entries`` maps each architecture key to its :class:`Entry`."""
    path: str
    format: TableFormat
    entries: dict[str, Entry]

    @classmethod
    def load(cls, path: str | os.PathLike, fmt: TableFormat | None = None) -> "TabularBenchmark":
        """Read and check a table: JSON (NAS-Bench-201/Macro detected, or ``fmt``) or CSV (needs ``fmt``).
        TableError names the file, key (or CSV line) and field at fault."""
        path = str(path)
        if not Path(path).is_file():
            raise TableError(f"{path}: benchmark table not found")
        if path.lower().endswith(".csv"):
            if fmt is None:
                raise TableError(f"{path}: a CSV table needs fitness_field (--fitness-field) to say which column "
                                 f"is the fitness")
            return cls.from_dict(_read_csv(path), path, fmt)
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except json.JSONDecodeError as err:
            raise TableError(f"{path}: line {err.lineno}: not valid JSON: {err.msg}") from None
        except UnicodeDecodeError:
            raise TableError(f"{path}: not a UTF-8 JSON file") from None
        return cls.from_dict(data, path, fmt)

    @classmethod
    def from_dict(cls, data: Mapping, path: str = "<table>", fmt: TableFormat | None = None) -> "TabularBenchmark":
        """Check an already parsed table; ``path`` is only used in error messages."""
        if fmt is not None and fmt.space is None:
            return cls(path, fmt, _generic_entries(data, path, fmt))
        fmt = fmt or detect_format(data, path)
        entries = {}
        for key, row in data.items():
            if not isinstance(row, dict):
                raise TableError(f"{path}: key {key!r}: expected an object, got {type(row).__name__}")
            for field in fmt.required:
                if field not in row:
                    raise TableError(f"{path}: key {key!r}: missing field {field!r}")
            if fmt.space == "nasbench-macro":
                runs = row["test_acc"]
                if not isinstance(runs, list) or not runs:
                    raise TableError(f"{path}: key {key!r}: field 'test_acc' must be a non-empty list of numbers")
                for run in runs:
                    _percent(run, path, key, "test_acc")
            entries[key] = Entry(fitness=_percent(row[fmt.fitness_field], path, key, fmt.fitness_field),
                                 test_acc=_percent(row[fmt.test_field], path, key, fmt.test_field),
                                 params=_integer(row.get("params"), path, key, "params"),
                                 rank=_integer(row.get("rank"), path, key, "rank"))
        return cls(path, fmt, entries)

    @property
    def space(self) -> str:
        """The registered name of the space this table indexes."""
        return self.format.space

    @property
    def num_classes(self) -> int:
        """Classes of the table's dataset, read from its file name (``cifar100`` → 100, ``imagenet16-120`` →
        120, else 10): the tables carry no such field. ``num_classes=`` / ``--num-classes`` overrides it."""
        name = Path(self.path).name.lower().replace("_", "-")
        for pattern, classes in ((r"imagenet-?16-?120", 120), (r"cifar-?100", 100), (r"cifar-?10", 10)):
            if re.search(pattern, name):
                return classes
        return 10

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def lookup(self, key: str) -> Entry:
        """The row of ``key``; TableError naming the file and the key if the table lacks it."""
        entry = self.entries.get(key)
        if entry is None:
            raise TableError(f"{self.path}: key {key!r}: architecture not in the table "
                             f"({len(self.entries)} entries, {self.space} format)")
        return entry

    def optimum(self) -> tuple[str, Entry]:
        """The best-by-fitness architecture (ties: the first key in sorted order) and its row."""
        key = min(self.entries, key=lambda k: (-self.entries[k].fitness, k))
        return key, self.entries[key]

    def check_space(self, space: SearchSpace) -> None:
        """TableError unless this table indexes ``space`` and every key is one of the space's genomes."""
        name = space.name
        if not isinstance(space, ParsesKeys):
            raise TableError(f"{self.path}: space {name!r} cannot rebuild genomes from table keys (no parse)")
        for key in self.entries:  # any space whose keys the table uses (a spec space may re-express a table's)
            try:
                space.parse(key)
            except UserInputError as err:
                hint = f" (a {self.space} table: use --space {self.space})" if self.space not in (None, name) else ""
                raise TableError(f"{self.path}: key {key!r}: not a genome of the {name!r} space{hint}: {err}") \
                    from None


class TabularEvaluator:
    """Scores candidates by table lookup (cost 0). A key the table lacks raises :class:`TableError`: the
    table does not cover the space, which is an input error, not a failed candidate."""

    def __init__(self, table: TabularBenchmark):
        self.table = table

    def evaluate(self, candidates: Sequence[Candidate]) -> list[FitnessRecord]:
        records = []
        for cand in candidates:
            entry = self.table.lookup(cand.key)
            extra = {"rank": entry.rank} if entry.rank is not None else {}
            extra.update({"costs": dict(entry.costs)} if entry.costs else {})
            extra.update({"spread": dict(entry.spread)} if entry.spread else {})
            params = entry.params if entry.params is not None else entry.costs.get("params")
            records.append(FitnessRecord(cand.key, entry.fitness, test_acc=entry.test_acc,
                                         params=None if params is None else int(params), cost_s=0.0, extra=extra))
        return records


def _generic_entries(data: Mapping, path: str, fmt: TableFormat) -> dict[str, Entry]:
    """The rows of a generic table, every field of ``fmt`` checked."""
    if not isinstance(data, Mapping) or not data:
        raise TableError(f"{path}: expected a non-empty table mapping architecture keys to rows")
    entries = {}
    for key, row in data.items():
        if not isinstance(row, Mapping):
            raise TableError(f"{path}: key {key!r}: expected an object, got {type(row).__name__}")
        missing = [f for f in fmt.required if f not in row]
        if missing:
            raise TableError(f"{path}: key {key!r}: missing field {missing[0]!r}")
        values, spread = {}, {}
        for name in fmt.required:
            values[name], std = _measure(row[name], path, key, name)
            if std is not None:
                spread[name] = std
        entries[str(key)] = Entry(fitness=values[fmt.fitness_field],
                                  test_acc=values[fmt.test_field] if fmt.test_field else None,
                                  costs={f: values[f] for f in fmt.cost_fields}, spread=spread)
    return entries


def _read_csv(path: str) -> dict[str, dict]:
    """``{key: {column: value}}`` of a CSV table (a ``key`` column, or the first); ``a;b;c`` is a list of runs."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
    except UnicodeDecodeError:
        raise TableError(f"{path}: not a UTF-8 CSV file") from None
    if len(rows) < 2:
        raise TableError(f"{path}: expected a header line and at least one row")
    header = [h.strip() for h in rows[0]]
    key_col = header.index("key") if "key" in header else 0
    out: dict[str, dict] = {}
    for line, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise TableError(f"{path}: line {line}: {len(row)} columns, the header has {len(header)}")
        key = row[key_col].strip()
        if key in out:
            raise TableError(f"{path}: line {line}: key {key!r} appears twice")
        cells = {}
        for name, cell in zip(header, row):
            if name == header[key_col]:
                continue
            try:
                parts = [float(v) for v in cell.split(";")]
            except ValueError:
                raise TableError(f"{path}: line {line}: field {name!r}: not a number: {cell!r}") from None
            cells[name] = parts if ";" in cell else parts[0]
        out[key] = cells
    return out
