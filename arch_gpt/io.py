"""The one place files are written: atomic writes (temp file + rename) and JSON / JSON-lines helpers.

A crash never leaves half a file: every writer goes through a temporary file in the same folder that is
renamed over the target only when complete. Readers raise :class:`UserInputError` naming the file and line.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from arch_gpt.errors import UserInputError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a library that writes by file name (safetensors,
    ``torch.save``, ``Figure.savefig``); renamed over ``path`` when the block ends without an error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a written file gets the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, data: Any, indent: int | None = 2) -> None:
    """Write ``data`` as JSON (a trailing newline) atomically."""
    atomic_write_text(path, json.dumps(data, indent=indent) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; a missing file or bad JSON is a UserInputError naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise UserInputError(f"{path}: not a UTF-8 text file") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UserInputError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from None


def write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> None:
    """Write one JSON value per line, atomically (the whole file)."""
    atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


def append_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> None:
    """Append one JSON value per line and flush to disk; each line is written whole."""
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if text:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())


def read_jsonl(path: str | os.PathLike, skip_partial_last: bool = False) -> list[tuple[int, Any]]:
    """``(line number, value)`` for every non-empty line. A bad line is a UserInputError naming the file and
    line, except a bad *last* line when ``skip_partial_last`` (a write cut by a crash), which is dropped."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    last = max((i for i, line in enumerate(lines, 1) if line.strip()), default=0)
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except json.JSONDecodeError as err:
            if skip_partial_last and number == last:
                break
            raise UserInputError(f"{path}: line {number}: not valid JSON ({err.msg})") from None
    return out
