"""PyTorch conversion: trace an ``nn.Module`` into an Architecture, and build a runnable module from one.

:func:`from_module` follows the real forward pass (``torch.fx`` with real shapes; forward hooks on leaf
modules when a model does not trace) and gives layers in execution order with ids 1..n. Residual adds,
SE products and concatenations become ``other`` layers (Add/Mul/Concat) whose value names their source
ids (0 = the network input). Each layer's block label is ``<Class>#<k>``: the outermost enclosing
torchvision block class (:data:`MODULE_BLOCKS`), or for a layer outside any block its own category
(:data:`LAYER_BLOCKS`); k counts instances of that class from 1 in execution order.
:func:`to_module` builds the inverse for chains and for Add/Mul/Concat graphs whose inputs resolve.
torch is imported lazily, so importing this module (for :data:`BLOCK_CLASSES`) stays cheap.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from arch_gpt.encoding import Architecture, ArchitectureError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

# torchvision block classes used as labels (the outermost one enclosing a layer wins).
MODULE_BLOCKS: tuple[str, ...] = (
    "BasicBlock", "Bottleneck", "InvertedResidual", "MBConv", "FusedMBConv", "Conv2dNormActivation",
    "SqueezeExcitation", "ResBottleneckBlock", "SimpleStemIN", "Inception", "BasicConv2d",
)
# Labels of layers outside any block, by what the layer is.
LAYER_BLOCKS: tuple[str, ...] = ("Conv", "BN", "ReLU", "MaxPool", "AvgPool", "Linear", "Other")
BLOCK_CLASSES: tuple[str, ...] = MODULE_BLOCKS + LAYER_BLOCKS


def block_class(label: str | None) -> str | None:
    """The block class of a label: ``'Bottleneck#3' -> 'Bottleneck'`` (None stays None)."""
    if label is None:
        return None
    return label.split("#", 1)[0]


def from_module(module: "nn.Module", input_size: Sequence[int] = (3, 32, 32), name: str | None = None) -> Architecture:
    """Trace ``module`` on a zero input of shape ``(1, *input_size)`` (C, H, W) into a block-labelled Architecture."""
    if len(tuple(input_size)) != 3 or not all(isinstance(v, int) and v > 0 for v in input_size):
        raise ArchitectureError(f"expected (channels, height, width) of positive integers, got {tuple(input_size)!r}",
                                field="input_size")
    from arch_gpt.torch_trace import trace_layers

    return Architecture(tuple(trace_layers(module, tuple(input_size))), name=name)


def to_module(arch: Architecture) -> "nn.Module":
    """A runnable ``nn.Module`` executing ``arch``'s layers in order (see :class:`arch_gpt.torch_build.ArchitectureModule`)."""
    from arch_gpt.torch_build import ArchitectureModule

    return ArchitectureModule(arch)
