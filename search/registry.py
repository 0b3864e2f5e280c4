"""timm-style registries: ``@register_space`` / ``create_space(name, **kw)`` / ``list_spaces()``.

Registries hold factories, never built objects. The same pattern serves strategies.
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
        _load_builtins()
        if name not in self._factories:
            raise UserInputError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}")
        return self._factories[name](**kwargs)

    def names(self) -> list[str]:
        _load_builtins()
        return sorted(self._factories)


SPACES = Registry("search space")
STRATEGIES = Registry("strategy")

register_space = SPACES.register
create_space = SPACES.create
list_spaces = SPACES.names
register_strategy = STRATEGIES.register
create_strategy = STRATEGIES.create
list_strategies = STRATEGIES.names

# Modules whose import registers the built-in spaces and strategies (missing ones are skipped).
_BUILTIN_MODULES = (
    "arch_gpt.search.spaces.blocks",
    "arch_gpt.search.spaces.nasbench201",
    "arch_gpt.search.spaces.macro",
    "arch_gpt.search.strategies.genetic",
    "arch_gpt.search.strategies.random",
    "arch_gpt.search.strategies.evolution",
)
_loaded = False


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib
    for name in _BUILTIN_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
