"""A search space from a spec file (YAML or JSON) or dict: a fixed skeleton and searchable slots.

The format is :mod:`arch_gpt.search.spaces.spec_format`'s, the ops :mod:`arch_gpt.zoo.spec_ops`'s. A genome is its
key: the slots' codes concatenated in order (so a spec can reproduce a table's key format). From the spec alone
the space has everything the search needs: uniform sampling, one-slot mutation, one-point crossover, the
``Architecture`` (language layers, for the GPT), a runnable module whose ``units`` are the slots' modules, and
one GPT unit per slot whose allowed tokens are the first-layer tokens of the slot's choices at the slot's input
(they depend on the widths chosen before it). Where several choices of a slot start with the same layer (a conv
and a basic block of the same kernel and width), the block classifier's label picks among them, else the rng.

``create_space("spec", spec=PATH_OR_DICT)`` builds one; so do ``create_space(PATH)`` and ``--space PATH``.
Without ``spec``, the bundled NAS-Bench-Macro spec (``specs/nasbench-macro.yaml``) is used.
"""
from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from torch import nn

from arch_gpt.encoding import Architecture, Layer, Size
from arch_gpt.errors import UserInputError
from arch_gpt.search.lru import LRU
from arch_gpt.search.protocols import HasBlockClasses, HasConfig, ParsesKeys, Unit
from arch_gpt.search.registry import register_space
from arch_gpt.search.spaces.checks import MAX_CLASSES, check_int, input_size_hwc
from arch_gpt.search.spaces.spec_format import SpaceSpec, parse_spec, read_spec, slot_inputs
from arch_gpt.tokenizer.tokenization import layer_tokens
from arch_gpt.zoo.layer_chain import ExpandedNetwork, LayerChain
from arch_gpt.zoo.spec_ops import Op, SpecNetwork, expand, out_size, write_op

SPECS_DIR = Path(__file__).resolve().parent / "specs"
DEFAULT_INPUT_SIZE = (32, 32, 3)


def example_spec(name: str) -> Path:
    """The bundled example spec ``name`` (``nasbench-macro``, ``widths``)."""
    path = SPECS_DIR / f"{name}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in SPECS_DIR.glob("*.yaml"))
        raise UserInputError(f"spec: no bundled example {name!r}; choose one of: {', '.join(names)}")
    return path


@register_space("spec")
class SpecSpace(ParsesKeys, HasConfig, HasBlockClasses):
    """The networks of a spec (see the module docstring). ``input_size`` (H, W, C) overrides the spec's."""
    name = "spec"

    def __init__(self, spec: str | Path | Mapping | None = None, num_classes: int = 10,
                 input_size: int | Sequence[int] | None = None, cache_size: int = 4096):
        data, source = read_spec(example_spec("nasbench-macro") if spec is None else spec)
        self.data = copy.deepcopy(data)
        self.spec: SpaceSpec = parse_spec(self.data, source)
        self.num_classes = check_int("num_classes", num_classes, 1, MAX_CLASSES)
        self.input_size: Size = input_size_hwc(input_size) if input_size is not None else \
            (self.spec.input_size or DEFAULT_INPUT_SIZE)
        self.slot_inputs = slot_inputs(self.spec, self.input_size)  # checks that every genome builds
        self.slots = self.spec.slots
        self.length = len(self.slots)
        self.block_classes = tuple(sorted({c.op.label for s in self.slots for c in s.choices}))
        self._mutable = [i for i, s in enumerate(self.slots) if len(s.choices) > 1]
        self._ops = [{c.code: c.op for c in s.choices} for s in self.slots]
        self.cache_size = cache_size
        self._cache: LRU[ExpandedNetwork] = LRU(self.cache_size)
        self._tokens: dict[tuple[int, Size], dict[str, str]] = {}
        self.unmatched_predictions: Counter = Counter()  # predicted tokens that matched no choice (unit kept)

    def config(self) -> dict:
        """Constructor arguments that rebuild this space (the spec itself, not its file)."""
        return {"spec": copy.deepcopy(self.data), "num_classes": self.num_classes,
                "input_size": list(self.input_size)}

    def __repr__(self) -> str:
        return f"SpecSpace({self.spec.source!r}, {self.length} slots)"

    # --- genomes and keys ---------------------------------------------------------------------
    def split(self, genome: str) -> tuple[str, ...]:
        """The slots' codes of a key (UserInputError if it is not one of this space's keys)."""
        if not isinstance(genome, str):
            raise UserInputError(f"{self.spec.source}: a key is a string of the slots' codes, got {genome!r}")
        codes, at = [], 0
        for slot in self.slots:
            code = next((c for c in slot.codes if genome.startswith(c, at)), None)
            if code is None:
                raise UserInputError(f"{self.spec.source}: key {genome!r}: at character {at + 1}, slot "
                                     f"{slot.name!r} expects one of the codes {', '.join(map(repr, slot.codes))}")
            codes.append(code)
            at += len(code)
        if at != len(genome):
            raise UserInputError(f"{self.spec.source}: key {genome!r}: {len(genome) - at} characters left after "
                                 f"the last slot")
        return tuple(codes)

    def join(self, codes: Sequence[str]) -> str:
        return "".join(codes)

    def key(self, genome: str) -> str:
        return self.join(self.split(genome))

    def parse(self, key: str) -> str:
        """The genome of a key (UserInputError if ``key`` is not one)."""
        return self.key(key)

    def ops(self, genome: str) -> list[Op]:
        """The op of each slot in ``genome``."""
        return [table[code] for table, code in zip(self._ops, self.split(genome))]

    # --- operators --------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> str:
        """Every slot uniformly from its choices."""
        return self.join([s.codes[int(rng.integers(len(s.codes)))] for s in self.slots])

    def mutate(self, genome: str, rng: np.random.Generator) -> str:
        """One random slot (of those with two or more choices) changed to another of its choices."""
        codes = list(self.split(genome))
        i = self._mutable[int(rng.integers(len(self._mutable)))]
        others = [c for c in self.slots[i].codes if c != codes[i]]
        codes[i] = others[int(rng.integers(len(others)))]
        return self.join(codes)

    def crossover(self, a: str, b: str, rng: np.random.Generator) -> tuple[str, str]:
        """One-point crossover: a cut in 1..length-1, the tails swapped (a one-slot space swaps nothing)."""
        x, y = self.split(a), self.split(b)
        if self.length < 2:
            return self.join(x), self.join(y)
        cut = int(rng.integers(1, self.length))
        return self.join(x[:cut] + y[cut:]), self.join(y[:cut] + x[cut:])

    # --- the network --------------------------------------------------------------------------
    def expand(self, genome: str) -> ExpandedNetwork:
        """The network's layers and each slot's signature (first) layer index (cached per genome)."""
        return self._cache.get_or_make(genome, lambda: expand(self.spec.stem, self.ops(genome), self.spec.head,
                                                              self.num_classes, self.input_size,
                                                              name=self.key(genome)))

    def clear_cache(self) -> None:
        """Forget the expanded networks."""
        self._cache.clear()

    def to_architecture(self, genome: str) -> Architecture:
        """The whole network as layers with real sizes."""
        return self.expand(genome).architecture

    def build_module(self, genome: str, num_classes: int | None = None) -> nn.Module:
        """The runnable network; ``units[i]`` is slot i's module."""
        return SpecNetwork(self.spec.stem, self.ops(genome), self.spec.head, num_classes or self.num_classes,
                           in_channels=self.input_size[2])

    # --- the GPT units ------------------------------------------------------------------------
    def inputs(self, genome: str) -> list[Size]:
        """Each slot's input size in ``genome``."""
        size = tuple(self.input_size)
        for op in self.spec.stem:
            size = out_size(op, size)
        sizes = []
        for op in self.ops(genome):
            sizes.append(size)
            size = out_size(op, size)
        return sizes

    def choice_tokens(self, index: int, in_size: Size) -> dict[str, str]:
        """Slot ``index``'s choices → the token of their first layer on an input of ``in_size`` (cached)."""
        table = self._tokens.get((index, in_size))
        if table is None:
            table = {}
            for choice in self.slots[index].choices:
                chain = LayerChain(in_size)
                write_op(chain, choice.op)
                table[choice.code] = layer_tokens(chain.build([]).architecture)[0]
            self._tokens[(index, in_size)] = table
        return table

    def units(self, genome: str) -> list[Unit]:
        """One unit per slot; ``layer_start`` is its first layer in ``to_architecture(genome)``."""
        starts = self.expand(genome).unit_layers
        return [Unit(i, at, frozenset(self.choice_tokens(i, size).values()))
                for i, (at, size) in enumerate(zip(starts, self.inputs(genome)))]

    def fill_unit(self, genome: str, unit: Unit, predicted: Layer | str | None, block_label: str | None,
                  rng: np.random.Generator) -> str:
        """Set slot ``unit.index`` to a choice whose first-layer token is the predicted one; among several, one of
        the classifier's block class ``block_label`` where there is one, drawn with ``rng``. A prediction that
        matches no choice keeps the genome and is counted in ``unmatched_predictions``."""
        if predicted is None or isinstance(predicted, str):
            token = predicted
        else:
            token = layer_tokens(Architecture((predicted,)))[0]
        codes = list(self.split(genome))
        i = unit.index
        tokens = self.choice_tokens(i, self.inputs(genome)[i])
        kind = block_label.split("#")[0] if block_label else None
        by_token = [c for c, t in tokens.items() if t == token]
        pool = [c for c in by_token if self._ops[i][c].label == kind] or by_token
        if not pool:
            self.unmatched_predictions[str(token)] += 1
            return self.join(codes)
        codes[i] = pool[int(rng.integers(len(pool)))] if len(pool) > 1 else pool[0]
        return self.join(codes)
