"""Uniformly random NAS-Bench-101 cells drawn without enumerating the space (small corpora in seconds).

A *representation* of a cell is one way of writing it: an upper-triangular 0/1 matrix (input first, output last,
every vertex on an input→output path, at most 9 edges) plus an op per interior vertex. A cell with V vertices has
as many representations as it has distinct topological vertex orders, so drawing representations uniformly would
favour cells with many orders. Here every drawn representation is kept only when it is its cell's *canonical*
one, the smallest (matrix bits, op code) over all orders of its interior vertices that keep the matrix upper
triangular. Each cell has exactly one canonical representation, so each of the 423,624 cells is drawn with the
same probability, as when drawing from the enumerated table; the cells are then named by their official hash
(:func:`~arch_gpt.zoo.nasbench101_cells.hash_graph`) and drawn without replacement.

Cost: about 1,400 representations are drawn per kept 7-vertex cell (vectorised numpy), so 50 cells take well
under a second and a few MB, where the enumeration takes 30 s to minutes and gigabytes. For large samples the
enumeration (and its cache) is the faster way; :func:`sample_table` is for small ones.
"""
from __future__ import annotations

import itertools
from typing import Iterator

import numpy as np

from arch_gpt.zoo.nasbench101_cells import MAX_EDGES, MAX_VERTICES, OPS, hash_graph
from arch_gpt.zoo.nasbench101_enumeration import CellTable, _pack

# Unique cells per vertex count (at most 9 edges), as enumerated by nasbench101_enumeration (and the paper).
CELLS_BY_VERTICES = {2: 1, 3: 6, 4: 84, 5: 2441, 6: 62010, 7: 359082}
_BATCH = 1 << 15  # representations drawn per round


def space_size(max_vertices: int = MAX_VERTICES) -> int:
    """Number of unique cells with at most ``max_vertices`` vertices (and at most 9 edges)."""
    return sum(c for v, c in CELLS_BY_VERTICES.items() if v <= max_vertices)


def _orders(n: int) -> np.ndarray:
    """Every order of the interior vertices (input and output fixed), identity first: int [P, n]."""
    inner = list(itertools.permutations(range(1, n - 1)))
    return np.array([(0, *p, n - 1) for p in inner], dtype=np.intp).reshape(len(inner), n)


def _valid(mats: np.ndarray, max_edges: int) -> np.ndarray:
    """Which upper-triangular matrices are cells: at most ``max_edges`` edges, every vertex on an in→out path."""
    edges = mats.reshape(len(mats), -1).sum(axis=1)
    has_out = mats[:, :-1, :].any(axis=2).all(axis=1)
    has_in = mats[:, :, 1:].any(axis=1).all(axis=1)
    return (edges <= max_edges) & has_out & has_in


def _keys(mats: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """int64 key of each representation: packed matrix bits, then the interior ops in base 3."""
    k = labels.shape[1]
    op_code = labels @ (len(OPS) ** np.arange(k, dtype=np.int64)) if k else np.zeros(len(labels), np.int64)
    return _pack(mats).astype(np.int64) * (len(OPS) ** k) + op_code


def _canonical(mats: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Which representations are the canonical (smallest-key upper-triangular) one of their cell."""
    n = mats.shape[1]
    own = _keys(mats, labels)
    best = own.copy()
    below = np.tril(np.ones((n, n), dtype=bool))
    for order in _orders(n)[1:]:
        permuted = mats[:, order][:, :, order]
        upper = ~(permuted & below).any(axis=(1, 2))
        if upper.any():
            keys = _keys(permuted[upper], labels[upper][:, order[1:-1] - 1])
            best[upper] = np.minimum(best[upper], keys)
    return own == best


def _draw(rng: np.random.Generator, n: int, size: int, max_edges: int) -> tuple[np.ndarray, np.ndarray]:
    """Canonical cells (bool matrices [M, n, n], interior op indices [M, n-2]) among ``size`` random draws."""
    rows, cols = np.triu_indices(n, 1)
    bits = rng.integers(0, 2, size=(size, len(rows)), dtype=np.uint8).astype(bool)
    labels = rng.integers(0, len(OPS), size=(size, n - 2), dtype=np.int64)
    mats = np.zeros((size, n, n), dtype=bool)
    mats[:, rows, cols] = bits
    ok = _valid(mats, max_edges)
    mats, labels = mats[ok], labels[ok]
    keep = _canonical(mats, labels)
    return mats[keep], labels[keep]


def _check_space(max_vertices: int, max_edges: int) -> None:
    if not 2 <= max_vertices <= MAX_VERTICES:
        raise ValueError(f"max_vertices must be in 2..{MAX_VERTICES}, got {max_vertices}")
    if max_edges != MAX_EDGES:
        raise ValueError(f"sampling knows the space of max_edges={MAX_EDGES} only, got {max_edges}")


def draw_cells(rng: np.random.Generator, max_vertices: int = MAX_VERTICES,
               max_edges: int = MAX_EDGES) -> Iterator[tuple[str, int, np.ndarray, np.ndarray]]:
    """Endless uniform draws (with replacement) from the space: (official hash, vertices, bool matrix, interior
    op indices)."""
    _check_space(max_vertices, max_edges)
    sizes = np.arange(2, max_vertices + 1)
    weight = np.array([2.0 ** (v * (v - 1) // 2) * len(OPS) ** (v - 2) for v in sizes])
    while True:
        per_size = rng.multinomial(_BATCH, weight / weight.sum())
        for n, size in zip(sizes.tolist(), per_size.tolist()):
            if size:
                for m, lab in zip(*_draw(rng, n, size, max_edges)):
                    yield hash_graph(m.astype(np.uint8), (-1, *lab.tolist(), -2)), n, m, lab


def sample_table(count: int, rng: np.random.Generator, max_vertices: int = MAX_VERTICES,
                 max_edges: int = MAX_EDGES) -> CellTable:
    """``count`` distinct cells drawn uniformly from the space (no enumeration), as a :class:`CellTable` sorted like
    the enumerated one (by vertex count, then hash). ``count`` must not exceed :func:`space_size`."""
    _check_space(max_vertices, max_edges)
    if not 0 <= count <= space_size(max_vertices):
        raise ValueError(f"count must be in 0..{space_size(max_vertices)}, got {count}")
    chosen: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}
    draws = draw_cells(rng, max_vertices, max_edges)
    while len(chosen) < count:
        digest, n, m, lab = next(draws)
        chosen.setdefault(digest, (n, m, lab))
    return _table(chosen)


def _table(cells: dict[str, tuple[int, np.ndarray, np.ndarray]]) -> CellTable:
    """The cells (hash → vertices, matrix, interior ops) as a CellTable sorted by (vertices, hash)."""
    items = sorted(cells.items(), key=lambda kv: (kv[1][0], kv[0]))
    weights = len(OPS) ** np.arange(MAX_VERTICES - 2, dtype=np.int64)
    nv = np.array([n for _, (n, _, _) in items], dtype=np.uint8)
    adj = np.array([int(_pack(m[None])[0]) for _, (_, m, _) in items], dtype=np.uint32)
    ops = np.array([int(lab @ weights[:len(lab)]) for _, (_, _, lab) in items], dtype=np.uint8)
    hashes = np.frombuffer(bytes.fromhex("".join(h for h, _ in items)), dtype=np.uint8).reshape(-1, 16).copy()
    return CellTable(nv, adj, ops, hashes)
