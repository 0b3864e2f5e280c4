"""The built-in search spaces; importing this package registers them.

``create_space(name, **kw)`` builds one by name, ``list_spaces()`` names them all (timm-style). A spec file
(``*.yaml``, ``*.yml``, ``*.json``) or a spec dict goes where a name does: ``create_space("my_space.yaml")`` is
``create_space("spec", spec="my_space.yaml")`` (see :mod:`arch_gpt.search.spaces.spec`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from arch_gpt.search.registry import SPACES
from arch_gpt.search.spaces import blocks, macro, nasbench201, spec  # noqa: F401  (registration)
from arch_gpt.search.spaces.spec_format import is_spec_path

list_spaces = SPACES.names


def create_space(name: str | Path | Mapping, **kwargs: Any):
    """The registered space ``name``, or the space of a spec file or dict."""
    if isinstance(name, Mapping) or is_spec_path(name):
        return spec.SpecSpace(spec=name, **kwargs)
    return SPACES.create(name, **kwargs)


__all__ = ["create_space", "list_spaces"]
