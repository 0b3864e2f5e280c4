"""The one base class for errors caused by user input (files, tables, arguments), not by bugs, and the one error
path every command-line entry point shares.

The CLI prints a :class:`UserInputError` as one line and exits 2, without a traceback. Each subclass is a
``ValueError``. Any other exception is a bug: one line, exit 1, and ``--debug`` (or ``ARCH_GPT_DEBUG=1``) shows
its traceback.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

EXIT_USER_ERROR, EXIT_INTERNAL_ERROR, EXIT_INTERRUPTED = 2, 1, 130


class UserInputError(ValueError):
    """Bad input from the user: the message names the file, line/key and field to fix."""


def run_entry_point(prog: str, body: Callable[[], int | None], debug: bool = False,
                    describe: Callable[[UserInputError], str] = str) -> int:
    """Run a command's ``body`` and turn every failure into one line on stderr and an exit code.

    ``describe`` renders a user error (the CLI maps parameter names to its flags there). With ``debug`` (or the
    environment variable ``ARCH_GPT_DEBUG=1``) unexpected errors propagate with their traceback.
    """
    debug = debug or os.environ.get("ARCH_GPT_DEBUG", "") not in ("", "0")
    try:
        return int(body() or 0)
    except UserInputError as err:
        print(f"{prog}: error: {describe(err)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except FileNotFoundError as err:
        print(f"{prog}: error: file not found: {err.filename or err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # a bug: say so in one line; --debug shows where
        if debug:
            raise
        first = str(err).splitlines()[0] if str(err) else ""
        print(f"{prog}: internal error: {type(err).__name__}: {first} (run with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL_ERROR
