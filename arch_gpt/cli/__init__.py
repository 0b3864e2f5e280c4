"""The ``arch-gpt`` command line: a thin dispatcher over subcommand modules.

Each module listed in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which adds its
parser(s) and sets ``func`` to a function taking the parsed args and returning an exit code.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from arch_gpt.errors import UserInputError

COMMAND_MODULES = (
    "arch_gpt.commands.encode",
    "arch_gpt.commands.corpus",
    "arch_gpt.search.commands",
    "arch_gpt.search.export",
    "arch_gpt.search.retrain",
    "arch_gpt.search.ablations",
    "arch_gpt.search.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arch-gpt", description="GPT-NAS: architecture search helped by a GPT.")
    from arch_gpt import __version__
    parser.add_argument("--version", action="version", version=f"arch-gpt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:  # a subcommand module not written yet must not break the others
            if err.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserInputError as err:
        print(f"arch-gpt {args.command}: error: {err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"arch-gpt {args.command}: error: file not found: {err.filename or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"arch-gpt {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
