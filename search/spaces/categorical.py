"""Operators shared by the tabular-benchmark spaces: a fixed number of positions, each one of a few choices.

The genome is the benchmark's own key (the NAS-Bench-201 arch string, the NAS-Bench-Macro code), so
keys need no translation when looked up in a table. Subclasses say how a key splits into choices and
how choices expand into a network (:mod:`arch_gpt.zoo`); this class adds uniform sampling, one-position
mutation, one-point crossover and the GPT units, whose allowed tokens are the tokens of each choice's
signature layer, so a reconstruction can only pick a choice the space has.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from arch_gpt.encoding import Architecture, Layer
from arch_gpt.search.lru import LRU
from arch_gpt.search.protocols import HasConfig, ParsesKeys, Unit
from arch_gpt.search.spaces.checks import MAX_CLASSES, check_int, input_size_hwc
from arch_gpt.tokenizer.tokenization import layer_tokens
from arch_gpt.zoo.layer_chain import ExpandedNetwork


class CategoricalSpace(ParsesKeys, HasConfig):
    """A genome of ``length`` positions, each one of ``choices``; subclasses implement ``split``, ``join``,
    ``expand_choices`` and ``build_module``."""
    name: str
    choices: tuple[str, ...]
    length: int

    def __init__(self, num_classes: int = 10, input_size: int | Sequence[int] = (32, 32, 3),
                 cache_size: int = 4096):
        self.num_classes = check_int("num_classes", num_classes, 1, MAX_CLASSES)
        self.input_size, self.cache_size = input_size_hwc(input_size), cache_size
        self._cache: LRU[ExpandedNetwork] = LRU(self.cache_size)
        self._tokens: list[dict[str, str]] | None = None
        self.unmatched_predictions: Counter = Counter()  # predicted tokens that matched no choice (unit kept)

    # --- subclass hooks ---------------------------------------------------------------------
    def split(self, genome: str) -> tuple[str, ...]:
        """The choices of a genome (checked: UserInputError if it is not one)."""
        raise TypeError(f"{type(self).__name__} must implement split")

    def join(self, choices: Sequence[str]) -> str:
        """The genome of ``length`` choices."""
        raise TypeError(f"{type(self).__name__} must implement join")

    def expand_choices(self, choices: Sequence[str]) -> ExpandedNetwork:
        raise TypeError(f"{type(self).__name__} must implement expand_choices")

    def unit_layers(self, choices: Sequence[str]) -> tuple[int, ...]:
        """The units' signature-layer indices (subclasses may compute them without expanding)."""
        return self.expand(self.join(choices)).unit_layers

    def config(self) -> dict:
        """Constructor arguments that rebuild this space."""
        return {"num_classes": self.num_classes, "input_size": list(self.input_size)}

    # --- genomes and keys ---------------------------------------------------------------------
    def key(self, genome: str) -> str:
        """The genome itself: it already is the benchmark's key."""
        return self.join(self.split(genome))

    def parse(self, key: str) -> str:
        """The genome of a key (UserInputError if ``key`` is not one)."""
        return self.key(key)

    # --- operators --------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> str:
        """Every position uniformly from ``choices``."""
        return self.join([self.choices[i] for i in rng.integers(len(self.choices), size=self.length)])

    def mutate(self, genome: str, rng: np.random.Generator) -> str:
        """One random position changed to another choice."""
        ops = list(self.split(genome))
        i = int(rng.integers(self.length))
        others = [c for c in self.choices if c != ops[i]]
        ops[i] = others[int(rng.integers(len(others)))]
        return self.join(ops)

    def crossover(self, a: str, b: str, rng: np.random.Generator) -> tuple[str, str]:
        """One-point crossover: a cut in 1..length-1, the tails swapped."""
        x, y = self.split(a), self.split(b)
        cut = int(rng.integers(1, self.length))
        return self.join(x[:cut] + y[cut:]), self.join(y[:cut] + x[cut:])

    # --- the network and the GPT units ------------------------------------------------------
    def expand(self, genome: str) -> ExpandedNetwork:
        """The network's layers and unit signature layers (cached per genome)."""
        return self._cache.get_or_make(genome, lambda: self.expand_choices(self.split(genome)))

    def clear_cache(self) -> None:
        """Forget the expanded networks (so that a timed run starts cold)."""
        self._cache.clear()

    def to_architecture(self, genome: str) -> Architecture:
        """The whole network as layers with real sizes."""
        return self.expand(genome).architecture

    def choice_tokens(self) -> list[dict[str, str]]:
        """Per unit, choice → token of its signature layer (tokens are position independent: computed once)."""
        if self._tokens is None:
            table: list[dict[str, str]] = [{} for _ in range(self.length)]
            for choice in self.choices:
                net = self.expand_choices([choice] * self.length)
                tokens = layer_tokens(net.architecture)
                for i, layer_index in enumerate(net.unit_layers):
                    table[i][choice] = tokens[layer_index]
            for i, row in enumerate(table):
                if len(set(row.values())) != len(row):
                    raise ValueError(f"{self.name}: unit {i} has choices with the same signature token: {row}")
            self._tokens = table
        return self._tokens

    def units(self, genome: str) -> list[Unit]:
        """One unit per position; ``layer_start`` is its signature layer in ``to_architecture(genome)``."""
        table = self.choice_tokens()
        choices = self.split(genome)
        layers = self.unit_layers(choices)
        ends = self.context_ends(choices, layers)
        return [Unit(i, at, frozenset(table[i].values()), end) for i, (at, end) in enumerate(zip(layers, ends))]

    def context_ends(self, choices: Sequence[str], layers: Sequence[int]) -> list[int | None]:
        """Per unit, where the GPT's context ends (None: at the signature layer); see :class:`Unit`."""
        return [None] * len(layers)

    def choice_for_token(self, index: int, token: str | None) -> str | None:
        """The choice whose signature token at unit ``index`` is ``token`` (None if there is none)."""
        for choice, tok in self.choice_tokens()[index].items():
            if tok == token:
                return choice
        return None

    def fill_unit(self, genome: str, unit: Unit, predicted: Layer | str | None, block_label: str | None,
                  rng: np.random.Generator) -> str:
        """Set unit ``unit.index`` to the choice whose signature token is the predicted one.

        A prediction that matches no choice keeps the genome and is counted in ``unmatched_predictions``.
        ``block_label`` is ignored: the choice already fixes the block.
        """
        if predicted is None or isinstance(predicted, str):
            token = predicted
        else:
            token = layer_tokens(Architecture((predicted,)))[0]
        choice = self.choice_for_token(unit.index, token)
        ops = list(self.split(genome))
        if choice is None:
            self.unmatched_predictions[str(token)] += 1
            return self.join(ops)
        ops[unit.index] = choice
        return self.join(ops)
