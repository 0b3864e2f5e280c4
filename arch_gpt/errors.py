"""The one base class for errors caused by user input (files, tables, arguments), not by bugs.

The CLI prints these as one line and exits 2, without a traceback. Each subclass is a ``ValueError``.
"""


class UserInputError(ValueError):
    """Bad input from the user: the message names the file, line/key and field to fix."""
