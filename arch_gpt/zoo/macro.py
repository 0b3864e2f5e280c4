"""NAS-Bench-Macro networks (Su et al., "Prioritized Architecture Sampling with Monto-Carlo Tree Search",
CVPR 2021), as layers and as runnable ``nn.Module``s.

A code is 8 digits, one per searchable layer: ``0`` Identity (a 1x1 conv with stride s + BN where the
stride is 2 or the channels change), ``1`` InvertedResidual(expansion 3, kernel 3), ``2``
InvertedResidual(expansion 6, kernel 5). The network: conv3x3 stem (32 channels) + BN + ReLU; three
stages of 2, 3 and 3 searchable layers whose first layer has stride 2 and doubles the channels
(32 -> 64 -> 128 -> 256); conv1x1 to 1280 + BN + ReLU; global average pool; linear.
:func:`expand` and :class:`MacroNetwork` write the same layers in the same order.
"""
from __future__ import annotations

import re
from typing import Sequence

from arch_gpt.encoding import Size
from arch_gpt.errors import UserInputError
from arch_gpt.zoo.layer_chain import ExpandedNetwork, LayerChain

CHOICES = ("0", "1", "2")
OP_NAMES = ("id", "ir_3x3_t3", "ir_5x5_t6")  # the benchmark's names, indexed by digit
EXPANSION_KERNEL = {"1": (3, 3), "2": (6, 5)}  # digit -> (expansion, kernel) of the InvertedResidual
STAGES = (2, 3, 3)
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
LENGTH = sum(STAGES)
_CODE_RE = re.compile(f"[012]{{{LENGTH}}}")


def parse_code(code: str) -> str:
    """``code`` itself if it is a NAS-Bench-Macro code (8 digits from 0, 1, 2); else UserInputError."""
    if not isinstance(code, str) or _CODE_RE.fullmatch(code) is None:
        raise UserInputError(f"not a NAS-Bench-Macro code ({LENGTH} digits, each 0, 1 or 2): {code!r}")
    return code


def layer_plan(stages: Sequence[int] = STAGES, stem: int = STEM_CHANNELS) -> list[tuple[int, int, int]]:
    """(in channels, out channels, stride) of every searchable layer."""
    plan, c = [], stem
    for n in stages:
        for i in range(n):
            plan.append((c, c * 2, 2) if i == 0 else (c, c, 1))
            if i == 0:
                c *= 2
    return plan


# ----------------------------------------------------------------------------- layers

def _unit(chain: LayerChain, digit: str, c_in: int, c_out: int, stride: int) -> int:
    """Append one searchable layer; returns the index of its signature layer (its first layer)."""
    start = len(chain.layers)
    if digit == "0":
        chain.enter("Identity")
        if stride != 1 or c_in != c_out:
            chain.conv(c_out, 1, stride)
            chain.other("BN")
        else:
            chain.other("Identity")
        return start
    expansion, kernel = EXPANSION_KERNEL[digit]
    chain.enter("InvertedResidual")
    chain.inverted_residual(c_out, expansion, kernel, stride)
    return start


def expand(code: str, num_classes: int = 10, input_size: Size = (32, 32, 3)) -> ExpandedNetwork:
    """The whole network of a code as layers; unit i is searchable layer i, its signature its first layer
    (Identity, the stride-2 1x1 projection, or the expansion 1x1 conv whose channel ratio is 3 or 6)."""
    parse_code(code)
    chain = LayerChain(input_size)
    chain.conv(STEM_CHANNELS, 3)
    chain.other("BN")
    chain.other("ReLU")
    signatures = [_unit(chain, digit, *plan) for digit, plan in zip(code, layer_plan())]
    chain.enter(None)
    chain.conv(HEAD_CHANNELS, 1)
    chain.other("BN")
    chain.other("ReLU")
    chain.head(num_classes)
    return chain.build(signatures, name=code)


def unit_layer_indices(code: str) -> tuple[int, ...]:
    """Each searchable layer's signature-layer index in ``expand(code)``, computed without building the layers."""
    at, out = 3, []  # after the stem conv, BN and ReLU
    for digit, (c_in, c_out, stride) in zip(parse_code(code), layer_plan()):
        out.append(at)
        same = stride == 1 and c_in == c_out
        at += (1 if same else 2) if digit == "0" else 8 + same  # Identity | conv-BN | IR (+ its Add)
    return tuple(out)
