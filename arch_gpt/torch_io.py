"""PyTorch conversion as plain functions: trace an ``nn.Module`` into an Architecture, and build one back.

:func:`from_module` follows the real forward pass (``torch.fx`` with real shapes; forward hooks on leaf
modules when a model does not trace) and gives layers in execution order with ids 1..n. Residual adds,
SE products and concatenations become ``other`` layers (Add/Mul/Concat) whose value names their source
ids (0 = the network input). Each layer's block label is ``<Class>#<k>``: the outermost enclosing
torchvision block class (:data:`MODULE_BLOCKS`), or for a layer outside any block its own category
(:data:`LAYER_BLOCKS`); k counts instances of that class from 1 in execution order.
:func:`to_module` builds the inverse for chains and for Add/Mul/Concat graphs whose inputs resolve.
Both are thin functions over :meth:`Architecture.from_module` / :meth:`Architecture.to_module` (the code is
in :mod:`arch_gpt.torch_trace` and :mod:`arch_gpt.torch_build`); torch loads only when they are called, so
importing this module (e.g. for :data:`BLOCK_CLASSES`, defined in :mod:`arch_gpt.layers`) stays cheap.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from arch_gpt.encoding import Architecture
from arch_gpt.layers import BLOCK_CLASSES, LAYER_BLOCKS, MODULE_BLOCKS, block_class

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["BLOCK_CLASSES", "LAYER_BLOCKS", "MODULE_BLOCKS", "block_class", "from_module", "to_module"]


def from_module(module: "nn.Module", input_size: Sequence[int] = (3, 32, 32), name: str | None = None) -> Architecture:
    """Trace ``module`` on a zero input of shape ``(1, *input_size)`` (C, H, W) into a block-labelled Architecture."""
    return Architecture.from_module(module, input_size=input_size, name=name)


def to_module(arch: Architecture) -> "nn.Module":
    """A runnable ``nn.Module`` executing ``arch``'s layers in order (see :meth:`Architecture.to_module`)."""
    return arch.to_module()
