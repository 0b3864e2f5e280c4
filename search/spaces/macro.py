"""NAS-Bench-Macro as a search space: genomes are 8-digit codes such as ``01201201``.

The network is :mod:`arch_gpt.zoo.macro`'s. Each searchable layer is a unit whose signature is its first
layer: the Identity (or, where the shape changes, the stride-2 1x1 projection) for ``0``, and the 1x1
expansion conv, with channel ratio 3 or 6, for ``1`` and ``2``.
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from arch_gpt.zoo import macro as zoo
from arch_gpt.zoo.macro_module import MacroNetwork
from arch_gpt.search.registry import register_space
from arch_gpt.search.spaces.categorical import CategoricalSpace
from arch_gpt.zoo.layer_chain import ExpandedNetwork


@register_space("nasbench-macro")
class MacroSpace(CategoricalSpace):
    """The 3^8 = 6,561 networks of NAS-Bench-Macro. ``build_module(...).units`` are the 8 searchable layers."""
    name = "nasbench-macro"
    choices = zoo.CHOICES
    length = zoo.LENGTH

    def split(self, genome: str) -> tuple[str, ...]:
        return tuple(zoo.parse_code(genome))

    def join(self, choices: Sequence[str]) -> str:
        return zoo.parse_code("".join(choices))

    def expand_choices(self, choices: Sequence[str]) -> ExpandedNetwork:
        return zoo.expand("".join(choices), self.num_classes, self.input_size)

    def unit_layers(self, choices: Sequence[str]) -> tuple[int, ...]:
        return zoo.unit_layer_indices("".join(choices))

    def build_module(self, genome: str, num_classes: int | None = None) -> nn.Module:
        """A runnable NAS-Bench-Macro network for this code."""
        return MacroNetwork(zoo.parse_code(genome), num_classes or self.num_classes,
                                in_channels=self.input_size[2])
