"""NAS-Bench-201 networks (Dong & Yang, ICLR 2020), as layers and as runnable ``nn.Module``s.

A cell has nodes s0..s3 and 6 edges in arch-string order ``|e0~0|+|e1~0|e2~1|+|e3~0|e4~1|e5~2|``:
``s1 = e0(s0)``, ``s2 = e1(s0) + e2(s1)``, ``s3 = e3(s0) + e4(s1) + e5(s2)``; each edge is one of
``none`` (zeroize), ``skip_connect``, ``nor_conv_1x1`` / ``nor_conv_3x3`` (ReLU-Conv-BN) and
``avg_pool_3x3`` (stride 1, padding 1). The network: conv3x3 stem (16 channels) + BN; 3 stages of 5 cells
(16, 32, 64 channels) with a stride-2 residual reduction block between stages; BN, ReLU, global average
pool, linear. :func:`expand` and :class:`NB201Network` write the same layers in the same order.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

from arch_gpt.encoding import Size
from arch_gpt.errors import UserInputError
from arch_gpt.zoo.layer_chain import ExpandedNetwork, LayerChain

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to node, from node), arch-string order
_ARCH_RE = re.compile(r"\|([a-z_0-9]+)~0\|\+\|([a-z_0-9]+)~0\|([a-z_0-9]+)~1\|\+"
                      r"\|([a-z_0-9]+)~0\|([a-z_0-9]+)~1\|([a-z_0-9]+)~2\|")


@lru_cache(maxsize=32768)
def parse_arch_str(text: str) -> tuple[str, ...]:
    """The 6 edge ops of an arch string; UserInputError if it is not one."""
    m = _ARCH_RE.fullmatch(text) if isinstance(text, str) else None
    if m is None or any(op not in OPS for op in m.groups()):
        raise UserInputError(f"not a NAS-Bench-201 arch string |op~0|+|op~0|op~1|+|op~0|op~1|op~2| with ops "
                             f"from {', '.join(OPS)}: {text!r}")
    return tuple(m.groups())


def arch_str(ops: Sequence[str]) -> str:
    """The arch string of 6 edge ops (checked)."""
    if len(ops) != len(EDGES) or any(op not in OPS for op in ops):
        raise UserInputError(f"a NAS-Bench-201 cell has {len(EDGES)} ops from {', '.join(OPS)}, got {tuple(ops)!r}")
    o = tuple(ops)
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


# ----------------------------------------------------------------------------- layers

def _edge(chain: LayerChain, op: str) -> tuple[int, int]:
    """Append one edge; returns (index of its signature layer, id of its output layer)."""
    if op in ("nor_conv_1x1", "nor_conv_3x3"):
        chain.other("ReLU")
        conv = chain.conv(chain.size[2], 1 if op == "nor_conv_1x1" else 3)
        return conv - 1, chain.other("BN")
    if op == "avg_pool_3x3":
        out = chain.pool("Avg", 3, 1, 1)
    else:
        out = chain.other("Zero" if op == "none" else "Identity")
    return out - 1, out


def _cell(chain: LayerChain, ops: Sequence[str]) -> list[int]:
    """Append one cell (input: the last layer written); returns each edge's signature-layer index."""
    size = chain.size
    incoming: dict[int, list[int]] = {1: [], 2: [], 3: []}
    signatures = []
    for (to, _), op in zip(EDGES, ops):  # the source node is implicit in the layer order
        chain.size = size  # every edge reads a node of the cell's own size
        signature, out = _edge(chain, op)
        signatures.append(signature)
        incoming[to].append(out)
        if to > 1 and len(incoming[to]) == to:  # after the node's last incoming edge: sum them
            chain.add(incoming[to])
    return signatures


def _reduction(chain: LayerChain, out_c: int) -> None:
    """ResNetBasicblock, stride 2: ReLU-Conv3x3(s2)-BN, ReLU-Conv3x3-BN; shortcut AvgPool2d(2) + Conv1x1; add."""
    block_in = chain.size
    chain.other("ReLU")
    chain.conv(out_c, 3, stride=2)
    chain.other("BN")
    chain.other("ReLU")
    chain.conv(out_c, 3)
    main = chain.other("BN")
    chain.size = block_in
    chain.pool("Avg", 2, 2, 0)
    shortcut = chain.conv(out_c, 1)
    chain.add([main, shortcut])


def expand(ops: Sequence[str], num_classes: int = 10, input_size: Size = (32, 32, 3), channels: int = 16,
           cells_per_stage: int = 5) -> ExpandedNetwork:
    """The whole network of a cell as layers; the units are the 6 edges of the FIRST cell.

    Signature layers: the conv of ReLU-Conv-BN, the AvgPool, the Identity (skip) or the Zero (none).
    """
    name = arch_str(ops)
    chain = LayerChain(input_size)
    chain.conv(channels, 3)
    chain.other("BN")
    signatures: list[int] = []
    for stage in range(3):
        if stage:
            chain.enter("ResNetBasicblock")
            _reduction(chain, channels * 2 ** stage)
        for _ in range(cells_per_stage):
            chain.enter("InferCell")
            sigs = _cell(chain, ops)
            signatures = signatures or sigs
    chain.enter(None)
    chain.other("BN")
    chain.other("ReLU")
    chain.head(num_classes)
    return chain.build(signatures, name=name)


def unit_layer_indices(ops: Sequence[str]) -> tuple[int, ...]:
    """Each edge's signature-layer index in ``expand(ops)``, computed without building the layers."""
    at, out = 2, []  # after the stem conv and BN
    for i, op in enumerate(ops):
        conv = op in ("nor_conv_1x1", "nor_conv_3x3")
        out.append(at + 1 if conv else at)  # ReLU-Conv-BN: the conv
        at += 3 if conv else 1
        if i in (2, 5):  # the Add of node 2, of node 3
            at += 1
    return tuple(out)
