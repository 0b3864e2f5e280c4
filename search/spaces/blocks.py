"""The block-based CNN space (GPT-NAS §3.4, AE-CNN-style encoding): a variable-length list of torchvision blocks.

A genome is a tuple of :class:`BlockGene` (kind, out_channels, stride, extra); the kinds and their rules are
in :mod:`arch_gpt.search.spaces.block_modules`. Widths and downsampling positions are genes. Every operator
returns a *fitted* genome: channel rules of each kind are applied along the chain (e.g. a BN block keeps its
input's channels) and at most ``max_downsamples`` blocks have stride 2 (later ones are set to stride 1), so
every genome builds. The network is stem → blocks → global pool → linear; its Architecture comes from
tracing the real module, so block labels are torchvision's class names.
"""
from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
from torch import nn

from arch_gpt.encoding import Architecture, ArchitectureError, Layer
from arch_gpt.errors import UserInputError
from arch_gpt.search.protocols import HasBlockClasses, HasConfig, ParsesKeys, SerializesGenomes, Unit
from arch_gpt.search.registry import register_space
from arch_gpt.tokenizer import layer_tokens
from arch_gpt.torch_io import from_module
from arch_gpt.search.spaces.checks import (
    MAX_CHANNELS, MAX_CLASSES, check_int, check_int_list, input_size_hwc,
)
from arch_gpt.search.spaces.block_modules import (
    CHANNEL_MULTIPLE, KINDS, BlockNetwork, keeps_channels, make_block, make_stem,
)

DEFAULT_WIDTHS = (16, 24, 32, 48, 64, 96, 128)
TOKEN_HW = (8, 8)  # input side for tracing single blocks into tokens
MAX_BLOCKS = 1000  # the longest genome a space may allow


class GenomeError(UserInputError):
    """A block genome (key or JSON) that does not describe valid blocks; names the block and field."""


@dataclass(frozen=True)
class BlockGene:
    """One block: torchvision class name, output channels, stride (2 = a downsampling position), kind extra."""
    kind: str
    out_channels: int
    stride: int = 1
    extra: int = 0

    def __str__(self) -> str:
        return f"{self.kind}-{self.out_channels}-s{self.stride}-x{self.extra}"


BlockGenome = tuple  # tuple[BlockGene, ...]


def parse_gene(text: str, where: str = "block") -> BlockGene:
    """Inverse of ``str(gene)``: ``Kind-<out>-s<stride>-x<extra>``."""
    parts = text.split("-")
    if len(parts) != 4 or not parts[2].startswith("s") or not parts[3].startswith("x"):
        raise GenomeError(f"{where}: expected 'Kind-<out>-s<stride>-x<extra>', got {text!r}")
    try:
        out, stride, extra = int(parts[1]), int(parts[2][1:]), int(parts[3][1:])
    except ValueError:
        raise GenomeError(f"{where}: out_channels, stride and extra must be integers in {text!r}") from None
    return check_gene(BlockGene(parts[0], out, stride, extra), where)


def check_gene(gene: BlockGene, where: str = "block") -> BlockGene:
    """Raise GenomeError unless ``gene`` is a known kind with a valid width, stride and extra."""
    if not isinstance(gene.kind, str) or gene.kind not in KINDS:
        raise GenomeError(f"{where}: field 'kind': unknown block kind {gene.kind!r}; choose from {', '.join(KINDS)}")
    if (isinstance(gene.out_channels, bool) or not isinstance(gene.out_channels, int)
            or not 0 < gene.out_channels <= MAX_CHANNELS or gene.out_channels % CHANNEL_MULTIPLE):
        raise GenomeError(f"{where}: field 'out_channels': must be a positive multiple of {CHANNEL_MULTIPLE} up to "
                          f"{MAX_CHANNELS}, got {gene.out_channels!r}")
    if gene.stride not in (1, 2):
        raise GenomeError(f"{where}: field 'stride': must be 1 or 2, got {gene.stride!r}")
    if gene.extra not in KINDS[gene.kind].extras:
        raise GenomeError(f"{where}: field 'extra': {gene.kind} allows {KINDS[gene.kind].extras}, got {gene.extra!r}")
    return gene


@lru_cache(maxsize=16384)
def block_signature(kind: str, in_c: int, out_c: int, stride: int, extra: int,
                    hw: tuple[int, int] = (8, 8)) -> tuple[str, int]:
    """The token of the first layer a block executes and its number of layers, from tracing the real
    block (cached; a block's layer count does not depend on the input's height and width)."""

    block = nn.Sequential(make_block(kind, in_c, out_c, stride, extra)).eval()  # a container, as in a network
    with torch.no_grad():
        arch = from_module(block, input_size=(in_c, *hw))
    return layer_tokens(arch)[0], len(arch.layers)


@register_space("blocks")
class BlockSpace(ParsesKeys, HasConfig, SerializesGenomes, HasBlockClasses):
    """Variable-length lists of torchvision blocks (Table 2 kinds), ``min_blocks``..``max_blocks`` long."""
    name = "blocks"

    def __init__(self, num_classes: int = 10, input_size: int | Sequence[int] = (32, 32, 3),
                 min_blocks: int = 10, max_blocks: int = 20, widths: Sequence[int] = DEFAULT_WIDTHS,
                 stem_channels: int | None = None, max_downsamples: int | None = None,
                 kinds: Sequence[str] | None = None, cache_size: int = 2048):
        size = input_size_hwc(input_size)
        min_blocks = check_int("min_blocks", min_blocks, 1, MAX_BLOCKS)
        max_blocks = check_int("max_blocks", max_blocks, 1, MAX_BLOCKS)
        if min_blocks > max_blocks:
            raise UserInputError(f"min_blocks, max_blocks: need min_blocks <= max_blocks, "
                                 f"got {min_blocks}, {max_blocks}")
        widths = tuple(sorted(set(check_int_list("widths", widths, 1, MAX_CHANNELS))))
        if any(w % CHANNEL_MULTIPLE for w in widths):
            raise UserInputError(f"widths: must be positive multiples of {CHANNEL_MULTIPLE}, got {widths}")
        if kinds is not None and (isinstance(kinds, str) or not isinstance(kinds, Sequence)
                                  or not all(isinstance(k, str) for k in kinds)):
            raise UserInputError(f"kinds: must be a list of block kinds, got {kinds!r}")
        self.kinds = tuple(kinds) if kinds is not None else tuple(KINDS)
        self.block_classes = self.kinds  # labels the block classifier may answer (see the reconstructor)
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise UserInputError(f"kinds: unknown {unknown}; choose from {', '.join(KINDS)}")
        self.num_classes, self.input_size = check_int("num_classes", num_classes, 1, MAX_CLASSES), size
        self.min_blocks, self.max_blocks, self.widths = min_blocks, max_blocks, widths
        self.stem_channels = (check_int("stem_channels", stem_channels, 1, MAX_CHANNELS)
                              if stem_channels is not None else widths[0])
        if self.stem_channels % CHANNEL_MULTIPLE:
            raise UserInputError(f"stem_channels: must be a multiple of {CHANNEL_MULTIPLE}, got {stem_channels}")
        if max_downsamples is not None:
            max_downsamples = check_int("max_downsamples", max_downsamples, 0, MAX_BLOCKS)
        self.stem_stride = 2 if min(size[:2]) >= 64 else 1
        side = min(size[:2]) // self.stem_stride
        self.max_downsamples = (max_downsamples if max_downsamples is not None
                                else max(0, min(5, int(math.log2(max(side, 1))) - 1)))
        self._cache: OrderedDict[str, Architecture] = OrderedDict()
        self._stem_layers: int | None = None
        self.cache_size = cache_size

    def config(self) -> dict:
        """Constructor arguments that rebuild this space (written beside exported genomes)."""
        return {"num_classes": self.num_classes, "input_size": list(self.input_size),
                "min_blocks": self.min_blocks, "max_blocks": self.max_blocks, "widths": list(self.widths),
                "stem_channels": self.stem_channels, "max_downsamples": self.max_downsamples,
                "kinds": list(self.kinds)}

    # --- fitting ------------------------------------------------------------------------------
    def fit(self, genes: Sequence[BlockGene]) -> BlockGenome:
        """Apply each kind's channel rule along the chain and cap the stride-2 blocks at ``max_downsamples``."""
        c, downs, out = self.stem_channels, 0, []
        for gene in genes:
            spec = KINDS[gene.kind]
            stride = gene.stride if spec.can_downsample else 1
            if stride == 2:
                if downs >= self.max_downsamples:
                    stride = 1
                else:
                    downs += 1
            width = c if keeps_channels(gene.kind, stride) else gene.out_channels
            extra = gene.extra if gene.extra in spec.extras else spec.extras[0]
            out.append(BlockGene(gene.kind, width, stride, extra))
            c = width
        return tuple(out)

    def in_channels(self, genome: BlockGenome) -> list[int]:
        """The input channel count of every block."""
        return [self.stem_channels] + [g.out_channels for g in genome[:-1]]

    def spatial_sizes(self, genome: BlockGenome) -> list[tuple[int, int]]:
        """The input (H, W) of every block (all strided ops use padding k//2, so H -> ceil(H / 2))."""
        h, w = (-(-s // self.stem_stride) for s in self.input_size[:2])
        sizes = []
        for gene in genome:
            sizes.append((h, w))
            if gene.stride == 2:
                h, w = -(-h // 2), -(-w // 2)
        return sizes

    # --- operators ----------------------------------------------------------------------------
    def random_gene(self, rng: np.random.Generator, width: int | None = None) -> BlockGene:
        """A uniformly random kind with a random extra, stride (2 with probability 1/4) and width."""
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        spec = KINDS[kind]
        extra = spec.extras[int(rng.integers(len(spec.extras)))]
        stride = 2 if spec.can_downsample and rng.random() < 0.25 else 1
        width = width if width is not None else self.widths[int(rng.integers(len(self.widths)))]
        return BlockGene(kind, width, stride, extra)

    def sample(self, rng: np.random.Generator) -> BlockGenome:
        """A random length in [min, max]; widths drawn then sorted so channels grow with depth."""
        n = int(rng.integers(self.min_blocks, self.max_blocks + 1))
        widths = sorted(self.widths[i] for i in rng.integers(len(self.widths), size=n))
        return self.fit([self.random_gene(rng, w) for w in widths])

    def mutate(self, genome: BlockGenome, rng: np.random.Generator) -> BlockGenome:
        """AE-CNN mutation: add a random block, remove one, or replace one (lengths stay in bounds)."""
        genes = list(genome)
        ops = ["replace"] + (["add"] if len(genes) < self.max_blocks else []) + \
              (["remove"] if len(genes) > self.min_blocks else [])
        op = ops[int(rng.integers(len(ops)))]
        if op == "add":
            genes.insert(int(rng.integers(len(genes) + 1)), self.random_gene(rng))
        elif op == "remove":
            del genes[int(rng.integers(len(genes)))]
        else:
            genes[int(rng.integers(len(genes)))] = self.random_gene(rng)
        return self.fit(genes)

    def crossover(self, a: BlockGenome, b: BlockGenome, rng: np.random.Generator) -> tuple[BlockGenome, BlockGenome]:
        """One-point crossover on block lists with a cut in each parent; children's lengths stay in bounds."""
        la, lb = len(a), len(b)
        pairs = [(i, j) for i in range(1, la) for j in range(1, lb)
                 if self.min_blocks <= i + lb - j <= self.max_blocks and self.min_blocks <= j + la - i <= self.max_blocks]
        if not pairs:
            return self.fit(a), self.fit(b)
        i, j = pairs[int(rng.integers(len(pairs)))]
        return self.fit(list(a[:i]) + list(b[j:])), self.fit(list(b[:j]) + list(a[i:]))

    # --- identity and serialisation -----------------------------------------------------------
    def key(self, genome: BlockGenome) -> str:
        """A stable string: the genes joined by ``_`` (``Kind-<out>-s<stride>-x<extra>``)."""
        return "_".join(str(g) for g in genome)

    def parse(self, key: str) -> BlockGenome:
        """The genome of a key; GenomeError names the bad block."""
        genes = [parse_gene(t, f"block {i}") for i, t in enumerate(key.split("_"))] if key else []
        return self.check(genes)

    def check(self, genes: Sequence[BlockGene]) -> BlockGenome:
        """Validate length, kinds and widths; return the fitted genome."""
        if not self.min_blocks <= len(genes) <= self.max_blocks:
            raise GenomeError(f"genome: has {len(genes)} blocks, the space allows {self.min_blocks}..{self.max_blocks}")
        for i, gene in enumerate(genes):
            check_gene(gene, f"block {i}")
            if gene.kind not in self.kinds:
                raise GenomeError(f"block {i}: field 'kind': {gene.kind!r} is not in this space's kinds")
        return self.fit(genes)

    def genome_to_json(self, genome: BlockGenome) -> dict:
        """A JSON-ready dict: ``{"blocks": [{kind, out_channels, stride, extra}, ...]}``."""
        return {"blocks": [asdict(g) for g in genome]}

    def genome_from_json(self, data: dict | str) -> BlockGenome:
        """Inverse of :meth:`genome_to_json` (also accepts the JSON text); GenomeError names block and field."""
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as err:
                raise GenomeError(f"genome JSON: {err}") from None
        blocks = data.get("blocks") if isinstance(data, dict) else None
        if not isinstance(blocks, list):
            raise GenomeError("genome JSON: key 'blocks' must be a list of blocks")
        genes = []
        for i, item in enumerate(blocks):
            if not isinstance(item, dict) or set(item) - {"kind", "out_channels", "stride", "extra"} \
                    or not {"kind", "out_channels"} <= set(item):
                raise GenomeError(f"genome JSON: blocks[{i}]: needs keys kind, out_channels[, stride, extra]")
            genes.append(BlockGene(item["kind"], item["out_channels"], item.get("stride", 1), item.get("extra", 0)))
        return self.check(genes)

    # --- networks -----------------------------------------------------------------------------
    def build_module(self, genome: BlockGenome, num_classes: int | None = None) -> nn.Module:
        """Stem → blocks (torchvision classes) → global average pool → linear."""
        ins = self.in_channels(genome)
        blocks = [make_block(g.kind, c, g.out_channels, g.stride, g.extra) for g, c in zip(genome, ins)]
        last = genome[-1].out_channels if genome else self.stem_channels
        return BlockNetwork(make_stem(self.input_size[2], self.stem_channels, self.stem_stride), blocks, last,
                            num_classes or self.num_classes)

    def to_architecture(self, genome: BlockGenome) -> Architecture:
        """The whole network as block-labelled layers with real sizes, traced from the module (LRU-cached)."""
        key = self.key(genome)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit

        h, w, c = self.input_size
        with torch.no_grad():
            arch = from_module(self.build_module(genome).eval(), input_size=(c, h, w), name=key)
        self._cache[key] = arch
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return arch

    # --- GPT units ----------------------------------------------------------------------------
    def choices(self, genome: BlockGenome, index: int) -> list[BlockGene]:
        """Every gene valid at block ``index``: any kind/extra, stride 2 only within the downsampling cap,
        width kept, equal to the input, or doubled (within the space's widths)."""
        ins = self.in_channels(genome)
        in_c, gene = ins[index], genome[index]
        others_down = sum(g.stride == 2 for k, g in enumerate(genome) if k != index)
        widths = sorted({gene.out_channels, in_c, min(2 * in_c, self.widths[-1])})
        out = []
        for kind in self.kinds:
            spec = KINDS[kind]
            strides = (1, 2) if spec.can_downsample and others_down < self.max_downsamples else (1,)
            for stride in strides:
                for extra in spec.extras:
                    for width in ([in_c] if keeps_channels(kind, stride) else widths):
                        out.append(BlockGene(kind, width, stride, extra))
        return out

    def choice_tokens(self, genome: BlockGenome, index: int) -> dict[BlockGene, str]:
        """The first-layer token of each valid choice at block ``index`` (tokens hold no absolute sizes, so
        blocks are traced at a fixed 8x8 input, which keeps the cache small)."""
        in_c = self.in_channels(genome)[index]
        return {g: block_signature(g.kind, in_c, g.out_channels, g.stride, g.extra, TOKEN_HW)[0]
                for g in self.choices(genome, index)}

    def layer_starts(self, genome: BlockGenome) -> list[int]:
        """The index of every block's first layer in ``to_architecture(genome)``, from per-block layer counts
        (so units need no trace of the whole network)."""
        if self._stem_layers is None:
            h, w, c = self.input_size
            with torch.no_grad():
                stem = from_module(nn.Sequential(make_stem(c, self.stem_channels, self.stem_stride)).eval(),
                                   input_size=(c, h, w))
            self._stem_layers = len(stem.layers)
        starts, at = [], self._stem_layers
        for gene, in_c in zip(genome, self.in_channels(genome)):
            starts.append(at)
            at += block_signature(gene.kind, in_c, gene.out_channels, gene.stride, gene.extra, TOKEN_HW)[1]
        return starts

    def units(self, genome: BlockGenome) -> list[Unit]:
        """One unit per block; ``layer_start`` is its first traced layer, tokens those of all valid choices."""
        starts = self.layer_starts(genome)
        return [Unit(i, starts[i], frozenset(self.choice_tokens(genome, i).values())) for i in range(len(genome))]

    def fill_unit(self, genome: BlockGenome, unit: Unit, predicted: Layer | str | None, block_label: str | None,
                  rng: np.random.Generator) -> BlockGenome:
        """Replace block ``unit.index`` by a block of the classifier's class ``block_label`` whose first-layer
        token is the predicted one; else any block of that class (its width/stride kept where allowed); else
        a block of any kind with that token. With none of these, the genome is returned unchanged."""
        token = predicted if predicted is None or isinstance(predicted, str) else _layer_token(predicted)
        tokens = self.choice_tokens(genome, unit.index)
        kind = block_label.split("#")[0] if block_label else None
        by_token = [g for g, t in tokens.items() if t == token]
        pool = [g for g in by_token if g.kind == kind]
        if not pool and kind in self.kinds:
            current = genome[unit.index]
            same_kind = [g for g in tokens if g.kind == kind]
            pool = [g for g in same_kind if g.stride == current.stride and g.out_channels == current.out_channels] \
                or same_kind
        pool = pool or by_token
        if not pool:
            return genome
        genes = list(genome)
        genes[unit.index] = pool[int(rng.integers(len(pool)))]
        return self.fit(genes)


def _layer_token(layer: Layer) -> str | None:
    """The token of one predicted layer out of context (None if it cannot stand alone, e.g. an Add)."""

    try:
        return layer_tokens(Architecture((layer,)))[0]
    except ArchitectureError:
        return None
