"""``arch-gpt encode MODEL_OR_FILE``: print a torchvision model's layers, or validate an architecture file.

A file (text or JSON) is parsed, checked (every layer's fields and sizes, and that each layer's input exists:
:meth:`arch_gpt.encoding.Architecture.check`) and printed back in canonical text form, so the paper's examples
come back byte-identical; its first error (line, layer id, field) ends the command with exit code 2.
Anything that is not an existing file is taken as a torchvision model name, traced with random weights on an
``--input-size`` square RGB input (1 to :data:`MAX_INPUT_SIZE`). ``--output FILE`` also writes the architecture
(atomically; missing parent folders are made) and refuses an existing FILE unless ``--overwrite`` is given; the
output is checked before anything is traced or written, so a refused command changes nothing.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from arch_gpt.encoding import Architecture
from arch_gpt.errors import UserInputError
from arch_gpt.cli.help import HelpFormatter

MAX_INPUT_SIZE = 1024  # a trace runs the model once on a zero image of this side; larger ones exhaust memory


class EncodeInputError(UserInputError):
    """A target that is neither a file nor a torchvision model name, a directory, a bad ``--input-size`` or an
    ``--output`` that cannot be written (a folder, under a file, or an existing file without ``--overwrite``)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``encode`` subcommand."""
    parser = subparsers.add_parser(
        "encode", formatter_class=HelpFormatter,
        help="print a torchvision model's layer strings, or validate and canonicalise an architecture file",
        description="Print a torchvision model's layer strings, or validate an architecture file and print it "
                    "back in canonical form (first error: line, layer id and field; exit code 2).")
    parser.add_argument("target", metavar="MODEL_OR_FILE",
                        help="a torchvision model name (e.g. resnet18) or an architecture file (.arch text or .json)")
    parser.add_argument("--input-size", type=int, default=32, metavar="N",
                        help=f"height and width of the RGB input a model is traced with, 1 to {MAX_INPUT_SIZE} "
                             "(default: 32, CIFAR)")
    parser.add_argument("--output", "-o", metavar="FILE", default=None,
                        help="also write the architecture to FILE (text, or JSON when FILE ends in .json); "
                             "an existing FILE is refused unless --overwrite")
    parser.add_argument("--overwrite", action="store_true", help="let --output replace an existing file")
    parser.set_defaults(func=run)


def check_output(output: str | os.PathLike, overwrite: bool = False) -> Path:
    """The path ``--output`` names, refused (EncodeInputError naming it) when it is empty, a folder, under a
    file, or an existing file without ``overwrite``."""
    text = os.fspath(output)
    if not text.strip():
        raise EncodeInputError("output: empty file name")
    path = Path(text)
    if path.is_dir():
        raise EncodeInputError(f"output: {path} is a directory; give a file name to write the architecture to")
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise EncodeInputError(f"output: {path} exists; pass --overwrite to replace it")
        if not path.is_file():
            raise EncodeInputError(f"output: {path} exists and is not a regular file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise EncodeInputError(f"output: {parent} is a file, not a folder, so {path} cannot be written")
            break
    return path


def encode(target: str, input_size: int = 32) -> Architecture:
    """The checked Architecture of ``target``: a file is loaded, anything else traced as a torchvision model name."""
    if not isinstance(target, str) or not target.strip():
        raise EncodeInputError(f"MODEL_OR_FILE: expected a torchvision model name or an architecture file, got "
                               f"{target!r}")
    path = Path(target)
    if path.is_dir():
        raise EncodeInputError(f"{target}: is a directory, not an architecture file")
    if path.is_file():
        return Architecture.load(path)
    if not isinstance(input_size, int) or not 1 <= input_size <= MAX_INPUT_SIZE:
        raise EncodeInputError(f"input_size: must be an integer from 1 to {MAX_INPUT_SIZE}, got {input_size!r}")
    from arch_gpt.torch_io import from_module
    from arch_gpt.zoo.torchvision_models import UnknownModelError, build_torchvision_model

    try:
        module = build_torchvision_model(target)
    except UnknownModelError as err:
        raise EncodeInputError(f"{target}: no such file, and {err}") from None
    return from_module(module, input_size=(3, input_size, input_size), name=target)


def run(args: argparse.Namespace) -> int:
    """Print the canonical text of the architecture (and save it with ``--output``)."""
    output = check_output(args.output, args.overwrite) if args.output is not None else None
    arch = encode(args.target, args.input_size)
    if output is not None:
        arch.save(output)
    sys.stdout.write(arch.to_text())
    return 0
