"""arch_gpt.io: atomic writes leave no temporary file and keep the target whole; readers name file and line."""
import json
import os
import stat

import pytest

from arch_gpt.errors import UserInputError
from arch_gpt.io import append_jsonl, atomic_path, atomic_write_text, read_json, read_jsonl, write_json


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "a.json"
    write_json(path, {"a": 1})
    write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_written_files_get_the_usual_permissions(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_read_json_names_file_and_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n"a": }')
    with pytest.raises(UserInputError, match=r"bad.json: line 2: not valid JSON"):
        read_json(path)
    with pytest.raises(UserInputError, match="not found"):
        read_json(tmp_path / "missing.json")


def test_jsonl_append_and_read_back(tmp_path):
    path = tmp_path / "rows.jsonl"
    append_jsonl(path, [{"a": 1}, {"a": 2}])
    append_jsonl(path, [{"a": 3}])
    assert [row for _, row in read_jsonl(path)] == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_jsonl_cut_last_line_is_dropped_only_when_asked(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n{"a": ')
    assert read_jsonl(path, skip_partial_last=True) == [(1, {"a": 1})]
    with pytest.raises(UserInputError, match="rows.jsonl: line 2"):
        read_jsonl(path)
    path.write_text('{"a": \n{"a": 1}\n')
    with pytest.raises(UserInputError, match="rows.jsonl: line 1"):
        read_jsonl(path, skip_partial_last=True)
