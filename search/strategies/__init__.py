"""The built-in search strategies; importing this package registers them.

``create_strategy(name, **kw)`` builds one by name, ``list_strategies()`` names them all (timm-style).
"""
from arch_gpt.search.registry import STRATEGIES
from arch_gpt.search.strategies import evolution, genetic, random  # noqa: F401  (registration)
from arch_gpt.search.strategies.base import Strategy

create_strategy = STRATEGIES.create
list_strategies = STRATEGIES.names

__all__ = ["Strategy", "create_strategy", "list_strategies"]
