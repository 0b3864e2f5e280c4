"""Tests of ``arch-gpt encode``: canonical printing of files, one-line errors (exit 2), tracing model names."""
from __future__ import annotations

import subprocess
import sys

import pytest

from arch_gpt.cli import main
from arch_gpt.encoding import Architecture

PAPER = (
    "id:1;in_size:32-32-3;out_size:32-32-3;kernel:1-1;stride:1-1;padding:0-0-0-0;dilation:1;groups:1;bias_used:No\n"
    "id:2;type:Max;in_size:32-32-3;out_size:16-16-3;kernel:2-2;stride:2-2;padding:1-0-1-0;dilation:1;bias_used:No\n"
)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["encode", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_paper_examples_come_back_byte_identical(tmp_path, capsys):
    path = tmp_path / "paper.arch"
    path.write_text(PAPER)
    code, out, err = _run(capsys, str(path))
    assert (code, out, err) == (0, PAPER, "")


def test_spaces_after_semicolons_are_canonicalised(tmp_path, capsys):
    path = tmp_path / "spaced.arch"
    path.write_text("# from the paper's printing\n" + PAPER.replace(";", "; "))
    code, out, _ = _run(capsys, str(path))
    assert (code, out) == (0, PAPER)


def test_json_file_is_printed_as_text(tmp_path, capsys):
    path = tmp_path / "paper.json"
    Architecture.from_text(PAPER).save(path)
    code, out, _ = _run(capsys, str(path))
    assert (code, out) == (0, PAPER)


BAD_FILES = [
    ("kernel arity", PAPER.replace("kernel:2-2", "kernel:2-2-2"), 2, "kernel"),
    ("unknown key", PAPER.replace("groups:1", "groupz:1"), 1, "groupz"),
    ("inconsistent out_size", PAPER.replace("out_size:16-16-3", "out_size:15-16-3"), 2, "out_size"),
    ("not an integer", PAPER.replace("dilation:1;groups", "dilation:one;groups"), 1, "dilation"),
    ("bad pool type", PAPER.replace("type:Max", "type:Min"), 2, "type"),
    ("duplicate id", PAPER.replace("id:2;", "id:1;"), 2, "id"),
]


@pytest.mark.parametrize("label,text,line,field", BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_bad_file_exits_2_with_line_and_field(tmp_path, capsys, label, text, line, field):
    path = tmp_path / "bad.arch"
    path.write_text(text)
    code, out, err = _run(capsys, str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"bad.arch:{line}" in err and f"field '{field}'" in err


def test_empty_file_is_not_an_architecture(tmp_path, capsys):
    path = tmp_path / "empty.arch"
    path.write_text("# nothing here\n")
    code, _, err = _run(capsys, str(path))
    assert code == 2 and "not an architecture" in err


def test_unknown_name_exits_2(capsys):
    code, out, err = _run(capsys, "no_such_model_or_file")
    assert code == 2 and out == "" and "no_such_model_or_file" in err and err.count("\n") == 1


def test_directory_exits_2(tmp_path, capsys):
    code, _, err = _run(capsys, str(tmp_path))
    assert code == 2 and "directory" in err


def test_bad_input_size_exits_2(capsys):
    code, _, err = _run(capsys, "resnet18", "--input-size", "0")
    assert code == 2 and "--input-size" in err


def test_model_name_prints_traced_layers(tmp_path, capsys):
    saved = tmp_path / "resnet18.arch"
    code, out, _ = _run(capsys, "resnet18", "--output", str(saved))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "# name: resnet18" and len(lines) == 1 + 69
    assert lines[1].startswith("id:1;in_size:32-32-3;out_size:16-16-64;kernel:7-7;stride:2-2;")
    assert lines[-1] == "id:69;in_size:512;out_size:1000;block:Linear#1"
    arch = Architecture.from_text(out)
    assert Architecture.load(saved) == arch
    code, again, _ = _run(capsys, str(saved))  # a printed model is a valid file that prints back identically
    assert (code, again) == (0, out)


def test_input_size_option(capsys):
    code, out, _ = _run(capsys, "resnet18", "--input-size", "64")
    assert code == 0 and out.splitlines()[1].startswith("id:1;in_size:64-64-3;out_size:32-32-64;")


def test_console_entry_point_in_a_subprocess(tmp_path):
    """One real process (the CLI imports every subcommand, so this costs seconds): exit 2, one line, no traceback."""
    bad = tmp_path / "bad.arch"
    bad.write_text(BAD_FILES[0][1])
    run = subprocess.run([sys.executable, "-m", "arch_gpt.cli", "encode", str(bad)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 2 and run.stdout == ""
    assert "Traceback" not in run.stderr and run.stderr.count("\n") == 1
    assert "bad.arch:2" in run.stderr and "layer id 2" in run.stderr and "field 'kernel'" in run.stderr


# ----------------------------------------------------------------------------- --output and --overwrite
def test_output_refuses_an_existing_file_and_overwrite_replaces_it(tmp_path, capsys):
    src, out = tmp_path / "paper.arch", tmp_path / "out.arch"
    src.write_text(PAPER)
    out.write_text("my earlier result\n")
    code, _, err = _run(capsys, str(src), "-o", str(out))
    assert code == 2 and "--overwrite" in err and out.read_text() == "my earlier result\n"
    code, printed, _ = _run(capsys, str(src), "-o", str(out), "--overwrite")
    assert code == 0 and out.read_text() == PAPER == printed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.arch", "paper.arch"]  # no temporary file left


def test_overwrite_replaces_a_symlink_not_its_target(tmp_path, capsys):
    src, target, link = tmp_path / "paper.arch", tmp_path / "target.txt", tmp_path / "link.arch"
    src.write_text(PAPER)
    target.write_text("not yours\n")
    link.symlink_to(target)
    assert _run(capsys, str(src), "-o", str(link))[0] == 2
    assert _run(capsys, str(src), "-o", str(link), "--overwrite")[0] == 0
    assert target.read_text() == "not yours\n" and not link.is_symlink() and link.read_text() == PAPER


def test_output_in_a_new_folder_is_made(tmp_path, capsys):
    src = tmp_path / "paper.arch"
    src.write_text(PAPER)
    code, _, _ = _run(capsys, str(src), "-o", str(tmp_path / "a" / "b" / "p.json"))
    assert code == 0 and Architecture.load(tmp_path / "a" / "b" / "p.json") == Architecture.from_text(PAPER)


def test_refused_output_is_checked_before_the_target(tmp_path, capsys):
    """The output is refused first: a bad target is not even looked at (nothing is traced or read)."""
    code, _, err = _run(capsys, "no_such_model", "-o", str(tmp_path))
    assert code == 2 and "--output" in err and "directory" in err and "no_such_model" not in err


def test_model_whose_trace_does_not_connect_exits_2(capsys):
    """ConvNeXt's channels-last permutes and layer norms are not recorded, so its layers cannot be written."""
    code, out, err = _run(capsys, "convnext_tiny")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "do not connect" in err and "field 'in_size'" in err
