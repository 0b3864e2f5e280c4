"""NAS-Bench-201 as a search space: genomes are arch strings ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

The network is :mod:`arch_gpt.zoo.nasbench201`'s. The GPT's units are the 6 edges of the first cell:
its context is then the stem and that cell's earlier edges. Signature layers, whose tokens tell the 5
ops apart: the conv of ReLU-Conv-BN (1x1 or 3x3), the AvgPool, the Identity (skip) and the Zero (none).
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from arch_gpt.encoding import Architecture
from arch_gpt.errors import UserInputError
from arch_gpt.zoo import nasbench201 as zoo
from arch_gpt.zoo.nasbench201_module import NB201Network
from arch_gpt.search.protocols import HasContextArchitecture
from arch_gpt.search.registry import register_space
from arch_gpt.search.spaces.categorical import CategoricalSpace
from arch_gpt.search.spaces.checks import check_int
from arch_gpt.zoo.layer_chain import ExpandedNetwork


@register_space("nasbench201")
class NASBench201Space(CategoricalSpace, HasContextArchitecture):
    """The 15,625 cells of NAS-Bench-201 (5 ops on each of 6 edges) in the 16/32/64-channel skeleton.

    ``channels`` (the first stage's width; the stages double it) is 1 to ``MAX_CHANNELS``, ``cells_per_stage``
    1 to ``MAX_CELLS_PER_STAGE``."""
    name = "nasbench201"
    choices = zoo.OPS
    length = len(zoo.EDGES)
    MAX_CHANNELS = 256  # the last stage has 4x this
    MAX_CELLS_PER_STAGE = 32

    def __init__(self, num_classes: int = 10, input_size: int | Sequence[int] = (32, 32, 3), channels: int = 16,
                 cells_per_stage: int = 5, cache_size: int = 4096):
        super().__init__(num_classes, input_size, cache_size)
        self.channels = check_int("channels", channels, 1, self.MAX_CHANNELS)
        self.cells_per_stage = check_int("cells_per_stage", cells_per_stage, 1, self.MAX_CELLS_PER_STAGE)
        h, w, _ = self.input_size
        if h % 4 or w % 4:  # two stride-2 reductions: the residual's two paths must meet at the same size
            raise UserInputError(f"input_size: NAS-Bench-201 networks halve the image twice, so its height and "
                                 f"width must be multiples of 4, got {h}x{w}")

    def config(self) -> dict:
        return {**super().config(), "channels": self.channels, "cells_per_stage": self.cells_per_stage}

    def split(self, genome: str) -> tuple[str, ...]:
        return zoo.parse_arch_str(genome)

    def join(self, choices: Sequence[str]) -> str:
        return zoo.arch_str(choices)

    def expand_choices(self, choices: Sequence[str]) -> ExpandedNetwork:
        return zoo.expand(choices, self.num_classes, self.input_size, self.channels, self.cells_per_stage)

    def unit_layers(self, choices: Sequence[str]) -> tuple[int, ...]:
        return zoo.unit_layer_indices(choices)

    def context_ends(self, choices: Sequence[str], layers: Sequence[int]) -> list[int | None]:
        """A conv edge is ReLU-Conv-BN and only convs have that ReLU: its context ends before it, so the GPT
        predicts the edge from the earlier edges, not from the edge's own first layer."""
        return [at - 1 if op.startswith("nor_conv") else None for op, at in zip(choices, layers)]

    def context_architecture(self, genome: str) -> Architecture:
        """The same network with one cell per stage: its layers up to the end of the first cell (all the units
        and their contexts) equal the full network's, at about a third of the expansion cost."""
        return zoo.expand(self.split(genome), self.num_classes, self.input_size, self.channels, 1).architecture

    def build_module(self, genome: str, num_classes: int | None = None) -> nn.Module:
        """A runnable NAS-Bench-201 network for this cell."""
        return NB201Network(self.split(genome), num_classes or self.num_classes, self.channels,
                                self.cells_per_stage, in_channels=self.input_size[2])
