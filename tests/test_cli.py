"""arch_gpt.cli: the one error path (user errors: one line, exit 2 with flags named; bugs: one line, exit 1)."""
import argparse

import pytest

from arch_gpt.cli import as_flags, build_parser, main
from arch_gpt.errors import UserInputError, run_entry_point


def test_parameters_are_shown_as_flags():
    parser = build_parser()
    assert as_flags("population: must be positive", parser) == "--population: must be positive"
    assert as_flags("budget, generations: one", parser) == "--budget, --generations: one"
    assert as_flags("max_steps_per_epoch: bad", parser) == "--max-steps: bad"
    assert as_flags("/tmp/x.json: line 2: bad", parser) == "/tmp/x.json: line 2: bad"


def test_a_bug_is_one_line_and_exit_1(capsys):
    def body():
        raise ZeroDivisionError("division by zero")
    assert run_entry_point("arch-gpt x", body) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ZeroDivisionError" in err and "--debug" in err and "Traceback" not in err


def test_debug_shows_the_traceback():
    def body():
        raise ZeroDivisionError("division by zero")
    with pytest.raises(ZeroDivisionError):
        run_entry_point("arch-gpt x", body, debug=True)


def test_debug_from_the_environment(monkeypatch):
    monkeypatch.setenv("ARCH_GPT_DEBUG", "1")
    with pytest.raises(KeyError):
        run_entry_point("arch-gpt x", lambda: {}["k"])


def test_user_error_and_interrupt(capsys):
    def bad():
        raise UserInputError("seed: must be >= 0, got -1")
    assert run_entry_point("arch-gpt x", bad) == 2
    assert capsys.readouterr().err == "arch-gpt x: error: seed: must be >= 0, got -1\n"

    def stop():
        raise KeyboardInterrupt
    assert run_entry_point("arch-gpt x", stop) == 130


def test_no_subcommand_prints_help(capsys):
    assert main([]) == 2 and "COMMAND" in capsys.readouterr().out


def test_every_subcommand_is_registered():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == {"encode", "corpus", "search", "export", "retrain", "ablation", "bench"}


def _parsers(parser, path=()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


@pytest.mark.parametrize("path", [p for p, _ in _parsers(build_parser())], ids=lambda p: " ".join(p) or "arch-gpt")
def test_help_has_no_markup_and_every_option_explained(path):
    parser = dict(_parsers(build_parser()))[path]
    text = parser.format_help()
    assert "``" not in text and ":mod:" not in text and ":func:" not in text and "issue " not in text
    for action in parser._actions:
        if action.option_strings and not isinstance(action, argparse._HelpAction):
            assert action.help, f"{' '.join(path)} {action.option_strings[0]} has no help"


def test_defaults_are_shown():
    search = dict(_parsers(build_parser()))[("search",)]
    assert "(default: blocks)" in search.format_help() and "(default: 2)" in search.format_help()
