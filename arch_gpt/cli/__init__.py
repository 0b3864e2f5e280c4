"""The ``arch-gpt`` command line: a thin dispatcher over one module per subcommand.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and sets ``func`` to a
function taking the parsed args and returning an exit code. Subcommand modules only parse, call the library
and print; they import the heavy library modules inside ``run`` so that ``arch-gpt --help`` stays fast.
"""
from __future__ import annotations

import argparse
import sys

from arch_gpt import __version__
from arch_gpt.cli import ablation, bench, corpus, encode, export, retrain, search
from arch_gpt.errors import run_entry_point

COMMANDS = (encode, corpus, search, export, retrain, ablation, bench)
# library parameters whose option has another name
PARAMETER_ALIASES = {"output_dir": "output"}


def build_parser() -> argparse.ArgumentParser:
    """The ``arch-gpt`` parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="arch-gpt", description="GPT-NAS: architecture search helped by a GPT.")
    parser.add_argument("--version", action="version", version=f"arch-gpt {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def option_flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Parameter name → command-line flag, over every subcommand (``population`` → ``--population``)."""
    flags: dict[str, str] = {}
    for action in parser._actions:
        if action.option_strings:
            flags.setdefault(action.dest, max(action.option_strings, key=len))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                for dest, flag in option_flags(sub).items():
                    flags.setdefault(dest, flag)
    return flags


def as_flags(message: str, parser: argparse.ArgumentParser) -> str:
    """A library error names parameters (``population: must be ...``); the CLI user sees the flags."""
    head, sep, rest = message.partition(": ")
    names = [PARAMETER_ALIASES.get(n.strip(), n.strip()) for n in head.split(",")]
    flags = option_flags(parser)
    if sep and all(n in flags for n in names):
        return ", ".join(flags[n] for n in names) + sep + rest
    return message


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand: user errors print one line and exit 2, bugs one line and exit 1 (--debug: traceback)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    command = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
    return run_entry_point(f"arch-gpt {args.command}", lambda: args.func(args), debug=args.debug,
                           describe=lambda err: as_flags(str(err), command))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
