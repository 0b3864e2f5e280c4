"""``arch-gpt encode MODEL_OR_FILE``: print a torchvision model's layers, or validate an architecture file.

A file (text or JSON) is parsed and printed back in canonical text form, so the paper's examples come
back byte-identical; its first error (line, layer id, field) ends the command with exit code 2.
Anything that is not an existing file is taken as a torchvision model name, traced with random weights.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from arch_gpt.encoding import Architecture
from arch_gpt.errors import UserInputError


class EncodeInputError(UserInputError):
    """A target that is neither a file nor a torchvision model name, a directory, or a bad ``--input-size``."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``encode`` subcommand."""
    parser = subparsers.add_parser(
        "encode", help="print a torchvision model's layer strings, or validate and canonicalise an architecture file",
        description="Print a torchvision model's layer strings, or validate an architecture file and print it "
                    "back in canonical form (first error: line, layer id and field; exit code 2).")
    parser.add_argument("target", metavar="MODEL_OR_FILE",
                        help="a torchvision model name (e.g. resnet18) or an architecture file (.arch text or .json)")
    parser.add_argument("--input-size", type=int, default=32, metavar="N",
                        help="height and width of the RGB input a model is traced with (default: 32, CIFAR)")
    parser.add_argument("--output", "-o", metavar="FILE", default=None,
                        help="also write the architecture to FILE (text, or JSON when FILE ends in .json)")
    parser.set_defaults(func=run)


def encode(target: str, input_size: int = 32) -> Architecture:
    """The Architecture of ``target``: a file is loaded and validated, anything else traced as a model name."""
    path = Path(target)
    if path.is_dir():
        raise EncodeInputError(f"{target}: is a directory, not an architecture file")
    if path.is_file():
        return Architecture.load(path)
    if input_size < 1:
        raise EncodeInputError(f"--input-size: must be a positive integer, got {input_size}")
    from arch_gpt.torch_io import from_module
    from arch_gpt.zoo.torchvision_models import UnknownModelError, build_torchvision_model

    try:
        module = build_torchvision_model(target)
    except UnknownModelError as err:
        raise EncodeInputError(f"{target}: no such file, and {err}") from None
    return from_module(module, input_size=(3, input_size, input_size), name=target)


def run(args: argparse.Namespace) -> int:
    """Print the canonical text of the architecture (and save it with ``--output``)."""
    arch = encode(args.target, args.input_size)
    if args.output:
        arch.save(args.output)
    sys.stdout.write(arch.to_text())
    return 0
