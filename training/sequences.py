"""Architectures → layer-token sequences held as flat numpy arrays (the input of the window builder).

Tokens are first given *provisional* ids (order of first appearance) because the vocabulary is only known
once every corpus has been read; :meth:`TokenSequences.remap` turns them into tokenizer ids. NAS-Bench-101
networks are expanded and tokenized in worker processes (``fork``), each returning its own small token
table plus uint16 arrays, so the full space (423,624 networks, ~95M layers) fits in a few hundred MB.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Iterable, Sequence

import numpy as np
from tqdm.auto import tqdm

from arch_gpt.encoding import Architecture
from arch_gpt.tokenizer.tokenization import layer_tokens
from arch_gpt.torch_io import block_class

NO_BLOCK = -1  # block id of a layer without a block label


@dataclass
class TokenSequences:
    """Token sequences of many architectures: ``ids[offsets[i]:offsets[i+1]]`` are architecture ``i``'s layers.

    ``ids`` index ``tokens`` (provisional) or a tokenizer's vocabulary (after :meth:`remap`); ``blocks`` holds the
    block-class index (into ``block_names``) of each layer, ``NO_BLOCK`` where unlabelled.
    """
    tokens: list[str]
    ids: np.ndarray          # uint32 [total layers]
    offsets: np.ndarray      # int64 [n + 1]
    blocks: np.ndarray       # int16 [total layers]
    block_names: list[str]
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def token_list(self, i: int) -> list[str]:
        """The token strings of architecture ``i`` (only meaningful before :meth:`remap`)."""
        return [self.tokens[j] for j in self.ids[self.offsets[i]:self.offsets[i + 1]]]

    def token_counts(self, indices: np.ndarray | None = None) -> dict[str, int]:
        """How often each token occurs over the architectures ``indices`` (all by default)."""
        ids = self.ids
        if indices is not None:
            chosen = np.zeros(len(self), dtype=bool)
            chosen[np.asarray(indices, dtype=np.int64)] = True
            ids = ids[np.repeat(chosen, self.lengths)]
        counts = np.bincount(ids.astype(np.int64), minlength=len(self.tokens))
        return {t: int(c) for t, c in zip(self.tokens, counts) if c}

    def remap(self, vocab: dict[str, int], unk_id: int, block_names: Sequence[str]) -> tuple["TokenSequences", int]:
        """These sequences with tokenizer ids and block indices into ``block_names``; also the [UNK] layer count."""
        lookup = np.array([vocab.get(t, unk_id) for t in self.tokens] or [unk_id], dtype=np.uint32)
        index = {name: k for k, name in enumerate(block_names)}
        block_lookup = np.array([index[b] for b in self.block_names] + [NO_BLOCK], dtype=np.int16)
        ids = lookup[self.ids]
        unknown = int(np.count_nonzero(ids == unk_id)) if len(ids) else 0
        return TokenSequences(list(vocab), ids, self.offsets, block_lookup[self.blocks], list(block_names),
                              self.names), unknown

    @classmethod
    def concat(cls, parts: Sequence["TokenSequences"]) -> "TokenSequences":
        """One TokenSequences holding ``parts`` in order (token and block tables merged)."""
        tokens: dict[str, int] = {}
        blocks: dict[str, int] = {}
        ids, bl, lengths, names = [], [], [], []
        for part in parts:
            tmap = np.array([tokens.setdefault(t, len(tokens)) for t in part.tokens] or [0], dtype=np.uint32)
            bmap = np.array([blocks.setdefault(b, len(blocks)) for b in part.block_names] + [NO_BLOCK],
                            dtype=np.int16)
            ids.append(tmap[part.ids])
            bl.append(bmap[part.blocks])
            lengths.append(part.lengths)
            names += part.names
        lengths_all = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        return cls(list(tokens), np.concatenate(ids) if ids else np.zeros(0, np.uint32),
                   np.concatenate([[0], np.cumsum(lengths_all)]).astype(np.int64),
                   np.concatenate(bl) if bl else np.zeros(0, np.int16), list(blocks), names)


def tokenize_architectures(architectures: Iterable[Architecture], progress: bool = False,
                           desc: str = "tokenizing") -> TokenSequences:
    """Tokenize architectures one by one in this process (layer tokens + block classes of each layer)."""
    tokens: dict[str, int] = {}
    blocks: dict[str, int] = {}
    ids: list[int] = []
    bl: list[int] = []
    lengths, names = [], []
    for k, arch in enumerate(tqdm(architectures, desc=desc, disable=not progress, unit="arch")):
        toks = layer_tokens(arch)
        ids += [tokens.setdefault(t, len(tokens)) for t in toks]
        for label in arch.blocks:
            cls_name = block_class(label)
            bl.append(NO_BLOCK if cls_name is None else blocks.setdefault(cls_name, len(blocks)))
        lengths.append(len(toks))
        names.append(arch.name if arch.name is not None else str(k))
    return TokenSequences(list(tokens), np.array(ids, dtype=np.uint32),
                          np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64),
                          np.array(bl, dtype=np.int16), list(blocks), names)


# ----------------------------------------------------------------------------- NAS-Bench-101, in parallel

_TABLE = None  # the CellTable shared with forked workers


def _tokenize_cells(indices: np.ndarray) -> TokenSequences:
    from arch_gpt.zoo.nasbench101 import cell_to_architecture

    table = _TABLE
    return tokenize_architectures(cell_to_architecture(table[int(i)], name=table.hash(int(i))) for i in indices)


def tokenize_nasbench101(table, indices: np.ndarray, workers: int = 2, chunk: int = 1000,
                         progress: bool = True) -> TokenSequences:
    """Expand cells ``indices`` of a :class:`~arch_gpt.zoo.nasbench101.CellTable` into full networks and tokenize
    them (``workers`` forked processes; results in the order of ``indices``, names = official hashes)."""
    global _TABLE
    chunks = [indices[i:i + chunk] for i in range(0, len(indices), chunk)]
    bar = tqdm(total=len(indices), desc="tokenizing NAS-Bench-101 networks", disable=not progress, unit="arch")
    parts: list[TokenSequences] = []
    _TABLE = table
    try:
        if workers > 1 and len(chunks) > 1 and os.name != "nt":
            with get_context("fork").Pool(workers) as pool:
                for part in pool.imap(_tokenize_cells, chunks):
                    parts.append(part)
                    bar.update(len(part))
        else:
            for c in chunks:
                parts.append(_tokenize_cells(c))
                bar.update(len(parts[-1]))
    finally:
        _TABLE = None
        bar.close()
    return TokenSequences.concat(parts)
