"""Every first-layer token the block space can ask the GPT for, and a few genomes that contain the ones a random
sample missed (so the all-spaces corpus has each of them as a training target).

A block unit's allowed tokens (:meth:`BlockSpace.units`) are the first-layer tokens of every valid replacement gene:
any kind, extra and stride (2 within the downsampling cap), any of the space's widths, at the unit's input channel
count (the stem's or one of the widths). Tokens hold no absolute sizes, so the set is finite and small
(:func:`block_choice_tokens`). :func:`coverage_genomes` chains the missing (input channels, gene) pairs into valid
genomes greedily, bridging channel counts with 1x1 convolutions and padding short genomes with BatchNorm blocks.
"""
from __future__ import annotations

from arch_gpt.search.spaces.block_modules import KINDS, keeps_channels
from arch_gpt.search.spaces.blocks import TOKEN_HW, BlockGene, BlockSpace, block_signature

Pair = tuple[int, BlockGene]  # (input channels, gene)


def block_choice_tokens(space: BlockSpace) -> dict[str, Pair]:
    """First-layer token → one (input channels, gene) that starts with it, over every gene a unit may hold."""
    tokens: dict[str, Pair] = {}
    for in_c in sorted({space.stem_channels, *space.widths}):
        for kind in space.kinds:
            spec = KINDS[kind]
            strides = (1, 2) if spec.can_downsample and space.max_downsamples > 0 else (1,)
            for stride in strides:
                for extra in spec.extras:
                    for width in ([in_c] if keeps_channels(kind, stride) else space.widths):
                        token = block_signature(kind, in_c, width, stride, extra, TOKEN_HW)[0]
                        tokens.setdefault(token, (in_c, BlockGene(kind, width, stride, extra)))
    return tokens


def _bridge(in_c: int, out_c: int) -> BlockGene:
    """A stride-1 block from ``in_c`` to ``out_c`` channels (a 1x1 convolution)."""
    return BlockGene("Conv", out_c, 1, 1) if "Conv" in KINDS else BlockGene("Conv2dNormActivation", out_c, 1, 1)


def coverage_genomes(space: BlockSpace, missing: dict[str, Pair]) -> list[tuple[BlockGene, ...]]:
    """Valid genomes of ``space`` that together contain every (input channels, gene) pair of ``missing``."""
    todo = dict(missing)
    genomes = []
    while todo:
        genes: list[BlockGene] = []
        c, downs = space.stem_channels, 0
        while len(genes) < space.max_blocks and todo:
            fits = [t for t, (in_c, g) in todo.items() if g.stride == 1 or downs < space.max_downsamples]
            if not fits:
                break
            here = next((t for t in fits if todo[t][0] == c), None)
            if here is None:
                if len(genes) + 2 > space.max_blocks or "Conv" not in space.kinds:
                    break
                c = todo[fits[0]][0]
                genes.append(_bridge(genes[-1].out_channels if genes else space.stem_channels, c))
                continue
            _, gene = todo.pop(here)
            genes.append(gene)
            downs += gene.stride == 2
            c = genes[-1].out_channels if not keeps_channels(gene.kind, gene.stride) else c
        if not genes:
            raise ValueError(f"blocks: cannot place the choices {sorted(todo)[:3]} in a genome of this space")
        filler = "BN" if "BN" in space.kinds else genes[-1].kind
        while len(genes) < space.min_blocks:
            genes.append(BlockGene(filler, c, 1, KINDS[filler].extras[0]))
        genomes.append(space.fit(genes))
    return genomes
