"""The built-in search spaces; importing this package registers them.

``create_space(name, **kw)`` builds one by name, ``list_spaces()`` names them all (timm-style).
"""
from arch_gpt.search.registry import SPACES
from arch_gpt.search.spaces import blocks, macro, nasbench201  # noqa: F401  (registration)

create_space = SPACES.create
list_spaces = SPACES.names

__all__ = ["create_space", "list_spaces"]
