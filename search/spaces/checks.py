"""Validation of a space's constructor arguments, shared by the built-in spaces.

A space's config also comes from files (``best_genome.json``, an exported ``config.json``), so every argument is
checked for its type and range before anything is built; a bad value is a :class:`UserInputError` naming the
parameter (``channels: must be ...``). The limits keep a typo from allocating gigabytes:

* ``MAX_CLASSES``: classes of the classifier head;
* ``MAX_SIDE``: image height, width and channels of ``input_size``;
* ``MAX_CHANNELS``: the width of any block or stage.
"""
from __future__ import annotations

import numbers
from typing import Sequence

from arch_gpt.errors import UserInputError
from arch_gpt.search.datasets import MAX_INPUT_SIZE

MAX_CLASSES = 100_000
MAX_SIDE = MAX_INPUT_SIZE  # the data's limit: a space can take any image the data can be
MAX_CHANNELS = 4096


def check_int(name: str, value: object, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int in ``minimum..maximum`` (a bool or a float is refused); UserInputError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UserInputError(f"{name}: must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"{minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise UserInputError(f"{name}: must be {bound}, got {value}")
    return int(value)


def check_int_list(name: str, values: object, minimum: int = 1, maximum: int | None = None) -> list[int]:
    """A non-empty list (or tuple) of ints in range; UserInputError naming ``name``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise UserInputError(f"{name}: must be a non-empty list of integers, got {values!r}")
    return [check_int(f"{name}[{i}]", v, minimum, maximum) for i, v in enumerate(values)]


def input_size_hwc(input_size: object, name: str = "input_size") -> tuple[int, int, int]:
    """(H, W, C) from an int side (3 channels) or a 3-sequence of positive ints up to ``MAX_SIDE``."""
    if isinstance(input_size, numbers.Integral) and not isinstance(input_size, bool):
        input_size = (input_size, input_size, 3)
    if isinstance(input_size, (str, bytes)) or not isinstance(input_size, Sequence) or len(input_size) != 3:
        raise UserInputError(f"{name}: expected (H, W, C) positive integers or an int, got {input_size!r}")
    h, w, c = (check_int(name, v, 1, MAX_SIDE) for v in input_size)
    return h, w, c
