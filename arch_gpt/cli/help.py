"""Help text a person reads: module docstrings without Sphinx markup, and every option's default shown."""
from __future__ import annotations

import argparse
import re

_ROLE = re.compile(r":(?:mod|func|class|data|meth|attr):`~?([^`]+)`")


def plain(doc: str | None) -> str:
    """``x`` → x and :mod:`a.b` → a.b, so argparse shows no reStructuredText."""
    text = _ROLE.sub(r"\1", doc or "")
    return text.replace("``", "")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks and appends ``(default: X)`` to an option's help when it has a
    default worth showing and its help does not already state one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (action.option_strings and "default" not in text and default not in (None, False, argparse.SUPPRESS)
                and not isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            shown = ",".join(map(str, default)) if isinstance(default, (tuple, list)) else default
            text += f" (default: {shown})"
        return text


def add_command(subparsers: argparse._SubParsersAction, name: str, doc: str | None, help: str
                ) -> argparse.ArgumentParser:
    """A subcommand parser whose description is ``doc`` in plain text."""
    return subparsers.add_parser(name, help=help, description=plain(doc), formatter_class=HelpFormatter)
