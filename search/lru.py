"""A small least-recently-used cache (an ``OrderedDict`` with a size), shared by the spaces and the reconstructor."""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class LRU(OrderedDict, Generic[V]):
    """At most ``size`` entries; a hit moves its key to the recent end, an insert drops the oldest beyond ``size``."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        """The cached value of ``key``, or ``make()`` remembered under it."""
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()
        self.remember(key, value)
        return value

    def remember(self, key: Hashable, value: V) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)
