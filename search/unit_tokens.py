"""The layer tokens of a candidate's network and its units' signature positions, cached per genome key.

Building a network to read its tokens is the costly step of everything that looks at a genome through the GPT
(reconstruction, the online fine-tunes, ranking features), so one search shares one :class:`UnitTokens`
between all of them (see :func:`arch_gpt.search.spec.build_search`).
"""
from __future__ import annotations

from arch_gpt.search.lru import LRU
from arch_gpt.search.protocols import Genome, HasContextArchitecture, SearchSpace
from arch_gpt.tokenizer.tokenization import layer_tokens


class UnitTokens:
    """Per genome key: the layer tokens of its network (the context architecture where the space has one) and
    its units' ``(index, signature position)``, least recently used dropped beyond ``cache_size``."""

    def __init__(self, cache_size: int = 8192):
        self._cache: LRU[tuple[list[str], list[tuple[int, int]]]] = LRU(cache_size)

    def __call__(self, space: SearchSpace, key: str, genome: Genome) -> tuple[list[str], list[tuple[int, int]]]:
        """(tokens, [(unit index, signature position), ...])."""
        def make():
            build = space.context_architecture if isinstance(space, HasContextArchitecture) else space.to_architecture
            return layer_tokens(build(genome)), [(u.index, u.layer_start) for u in space.units(genome)]
        return self._cache.get_or_make((space.name, key), make)
