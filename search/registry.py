"""timm-style registries: ``@register_space`` / ``create_space(name, **kw)`` / ``list_spaces()``.

Registries hold factories, never built objects; this module imports nothing of the search. The built-ins
register when their package is imported: ``arch_gpt.search.spaces`` (which also offers ``create_space`` /
``list_spaces``) and ``arch_gpt.search.strategies`` (``create_strategy`` / ``list_strategies``).
"""
from __future__ import annotations

from typing import Callable, TypeVar

from arch_gpt.errors import UserInputError

F = TypeVar("F", bound=Callable)


class Registry:
    """A name → factory table with errors that say how to fix the call."""

    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, Callable] = {}

    def register(self, name: str) -> Callable[[F], F]:
        def deco(factory: F) -> F:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._factories[name] = factory
            return factory
        return deco

    def create(self, name: str, **kwargs):
        if name not in self._factories:
            raise UserInputError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}")
        return self._factories[name](**kwargs)

    def names(self) -> list[str]:
        return sorted(self._factories)


SPACES = Registry("search space")
STRATEGIES = Registry("strategy")

register_space = SPACES.register
register_strategy = STRATEGIES.register
