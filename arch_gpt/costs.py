"""Parameters and multiply-adds (FLOPs as NAS papers count them) of an Architecture, from its layers alone.

Every layer carries its sizes, so the counts are exact for what ``Architecture.to_module`` builds:

* conv: ``kh*kw*(C_in/groups)*C_out`` weights (+ ``C_out`` biases when ``bias_used``); multiply-adds: the weights
  times the output's ``H*W``;
* FC: ``in*out`` weights + ``out`` biases (the language has no bias flag for FC; torch's ``Linear`` default);
  multiply-adds ``in*out``;
* BN: ``2*C`` parameters (scale and shift; the running statistics are buffers, not parameters), no multiply-adds;
* every other layer (activations, pooling, Add, Concat, Flatten, Dropout, ...): none.

A traced network holds only what its forward pass runs: the auxiliary heads of a torchvision GoogLeNet, used only
in training, are not in it (nor counted). Biases, BN and additions are not counted as multiply-adds, the convention of NAS-Bench-Macro's ``flops`` field
and of most NAS papers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from arch_gpt.layers import ConvLayer, FCLayer, Layer, OtherLayer

if TYPE_CHECKING:  # pragma: no cover
    from arch_gpt.encoding import Architecture


@dataclass(frozen=True)
class Costs:
    """What an architecture costs: trainable parameters and multiply-adds for one input."""
    params: int
    macs: int

    def __add__(self, other: "Costs") -> "Costs":
        return Costs(self.params + other.params, self.macs + other.macs)


def layer_costs(layer: Layer) -> Costs:
    """The parameters and multiply-adds of one layer (see the module docstring)."""
    if isinstance(layer, ConvLayer):
        kh, kw = layer.kernel
        c_in, c_out = layer.in_size[2], layer.out_size[2]
        weights = kh * kw * (c_in // layer.groups) * c_out
        return Costs(weights + (c_out if layer.bias_used else 0), weights * layer.out_size[0] * layer.out_size[1])
    if isinstance(layer, FCLayer):
        return Costs(layer.in_size * layer.out_size + layer.out_size, layer.in_size * layer.out_size)
    if isinstance(layer, OtherLayer) and layer.name == "BN":
        return Costs(2 * layer.in_size[2], 0)
    return Costs(0, 0)


def costs(arch: "Architecture") -> Costs:
    """The sum over the architecture's layers."""
    total = Costs(0, 0)
    for layer in arch.layers:
        total = total + layer_costs(layer)
    return total
