"""NAS-Bench-101 cells: validation, pruning and the official graph hash.

A cell is an upper-triangular 0/1 adjacency matrix (input vertex first, output last) plus one op per
vertex. ``cell_hash`` reproduces NAS-Bench-101's ``hash_module`` (Ying et al., 2019): every vertex starts
from the md5 of ``(out_degree, in_degree, label)``; then, as many rounds as there are vertices, each
vertex becomes the md5 of its sorted in-neighbour hashes, ``|``, sorted out-neighbour hashes, ``|``, its
own hash; the cell hash is the md5 of the sorted vertex hashes. Labels: input -1, output -2,
conv3x3-bn-relu 0, conv1x1-bn-relu 1, maxpool3x3 2. Cells are pruned before hashing, as NAS-Bench-101 does.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from arch_gpt.errors import UserInputError

INPUT, OUTPUT = "input", "output"
CONV3X3, CONV1X1, MAXPOOL3X3 = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
OPS: tuple[str, ...] = (CONV3X3, CONV1X1, MAXPOOL3X3)  # index = NAS-Bench-101 label
LABELS: dict[str, int] = {INPUT: -1, OUTPUT: -2, CONV3X3: 0, CONV1X1: 1, MAXPOOL3X3: 2}
MAX_VERTICES, MAX_EDGES = 7, 9


class CellError(UserInputError):
    """A matrix/ops pair that is not a NAS-Bench-101 cell; the message names the field."""


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def hash_graph(matrix: np.ndarray, labels: Sequence[int]) -> str:
    """NAS-Bench-101's iterative md5 hash of an (already pruned) matrix and its integer labels."""
    n = len(labels)
    rows = [[int(x) for x in row] for row in np.asarray(matrix)]
    out_deg = [sum(r) for r in rows]
    in_deg = [sum(rows[i][j] for i in range(n)) for j in range(n)]
    preds = [[w for w in range(n) if rows[w][v]] for v in range(n)]
    succs = [[w for w in range(n) if rows[v][w]] for v in range(n)]
    hashes = [_md5(str((out_deg[v], in_deg[v], int(labels[v])))) for v in range(n)]
    for _ in range(n):
        hashes = [_md5("".join(sorted(hashes[w] for w in preds[v])) + "|"
                       + "".join(sorted(hashes[w] for w in succs[v])) + "|" + hashes[v])
                  for v in range(n)]
    return _md5(str(sorted(hashes)))


def prune(matrix: np.ndarray, ops: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Drop vertices not on an input→output path (as NAS-Bench-101's ModelSpec does).

    Raises CellError when the output cannot be reached from the input at all.
    """
    m = np.asarray(matrix, dtype=np.uint8)
    n = m.shape[0]
    forward, stack = {0}, [0]
    while stack:
        v = stack.pop()
        for w in np.flatnonzero(m[v]):
            if int(w) not in forward:
                forward.add(int(w))
                stack.append(int(w))
    backward, stack = {n - 1}, [n - 1]
    while stack:
        v = stack.pop()
        for w in np.flatnonzero(m[:, v]):
            if int(w) not in backward:
                backward.add(int(w))
                stack.append(int(w))
    if n - 1 not in forward:
        raise CellError("field 'matrix': the output vertex is not reachable from the input vertex")
    keep = sorted(forward & backward)
    return m[np.ix_(keep, keep)].copy(), tuple(ops[i] for i in keep)


def check_cell(matrix: np.ndarray, ops: Sequence[str]) -> None:
    """Raise CellError naming the field when matrix/ops do not describe a NAS-Bench-101 cell."""
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise CellError(f"field 'matrix': expected a square matrix with at least 2 vertices, got shape {m.shape}")
    if not np.isin(m, (0, 1)).all():
        raise CellError("field 'matrix': entries must be 0 or 1")
    if np.tril(m).any():
        raise CellError("field 'matrix': must be strictly upper triangular (a DAG in topological order)")
    if len(ops) != m.shape[0]:
        raise CellError(f"field 'ops': {len(ops)} ops for a {m.shape[0]}-vertex matrix")
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise CellError(f"field 'ops': the first op must be '{INPUT}' and the last '{OUTPUT}'")
    for i, op in enumerate(ops[1:-1], start=1):
        if op not in OPS:
            raise CellError(f"field 'ops[{i}]': unknown op {op!r} (expected one of {', '.join(OPS)})")


class Cell:
    """One NAS-Bench-101 cell: matrix (uint8, read-only) and op names; equality is exact, not up to isomorphism."""

    __slots__ = ("matrix", "ops")

    def __init__(self, matrix: np.ndarray | Sequence[Sequence[int]], ops: Sequence[str]):
        m = np.array(matrix, dtype=np.int64)
        ops = tuple(str(o) for o in ops)
        check_cell(m, ops)
        m = m.astype(np.uint8)
        m.flags.writeable = False
        self.matrix: np.ndarray = m
        self.ops: tuple[str, ...] = ops

    @property
    def num_vertices(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.matrix.sum())

    @property
    def labels(self) -> tuple[int, ...]:
        """NAS-Bench-101 integer labels of the ops (input -1, output -2, interior = index in OPS)."""
        return tuple(LABELS[o] for o in self.ops)

    def pruned(self) -> "Cell":
        """The cell without vertices off every input→output path."""
        return Cell(*prune(self.matrix, self.ops))

    def is_valid(self, max_vertices: int = MAX_VERTICES, max_edges: int = MAX_EDGES) -> bool:
        """Whether the pruned cell is in the NAS-Bench-101 space (connected, ≤ 7 vertices, ≤ 9 edges)."""
        try:
            p = self.pruned()
        except CellError:
            return False
        return p.num_vertices <= max_vertices and p.num_edges <= max_edges

    def hash(self) -> str:
        """The official NAS-Bench-101 hash (of the pruned cell)."""
        p = self.pruned()
        return hash_graph(p.matrix, p.labels)

    def to_dict(self) -> dict:
        return {"matrix": self.matrix.tolist(), "ops": list(self.ops)}

    def __eq__(self, other) -> bool:
        return (isinstance(other, Cell) and self.ops == other.ops
                and self.matrix.shape == other.matrix.shape and bool((self.matrix == other.matrix).all()))

    def __hash__(self) -> int:
        return hash((self.matrix.tobytes(), self.matrix.shape[0], self.ops))

    def __repr__(self) -> str:
        return f"Cell(matrix={self.matrix.tolist()}, ops={list(self.ops)})"


def cell_hash(matrix: np.ndarray | Sequence[Sequence[int]], ops: Sequence[str]) -> str:
    """The official NAS-Bench-101 hash of a cell given as matrix + op names (pruned first)."""
    return Cell(matrix, ops).hash()
