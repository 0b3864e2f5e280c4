"""Enumerate every unique NAS-Bench-101 cell (423,624 for ≤ 7 vertices and ≤ 9 edges) and cache them.

Instead of hashing all 3^(V-2) labellings of every matrix (as NAS-Bench-101's generator does), the
unlabelled DAGs are first reduced to isomorphism classes with numpy (minimum code over all permutations
of the interior vertices); each class contributes the orbits of its labellings under its automorphism
group. The official hash of every resulting cell is then computed (two worker processes) and the cells
are deduplicated by hash, so the set is exactly NAS-Bench-101's. The cache is an ``.npz`` of ~9 MB.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm.auto import tqdm

from arch_gpt.errors import UserInputError
from arch_gpt.io import atomic_path
from arch_gpt.zoo.nasbench101_cells import INPUT, MAX_EDGES, MAX_VERTICES, OPS, OUTPUT, Cell, hash_graph

CACHE_VERSION = 1
DEFAULT_CACHE = Path(os.environ.get("ARCH_GPT_CACHE", Path.home() / ".cache" / "arch-gpt")) / "nasbench101_cells.npz"


class CellCacheError(UserInputError):
    """A cell cache file that cannot be read (wrong format or version)."""


def _triu_index(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, 1)


def _full_dags(n: int, max_edges: int) -> np.ndarray:
    """All n-vertex upper-triangular matrices (bool [N, n, n]) where every vertex is on an input→output path."""
    rows, cols = _triu_index(n)
    k = len(rows)
    bits = np.arange(2 ** k, dtype=np.uint32)
    edges = ((bits[:, None] >> np.arange(k, dtype=np.uint32)) & 1).astype(bool)
    edges = edges[edges.sum(axis=1) <= max_edges]
    mats = np.zeros((len(edges), n, n), dtype=bool)
    mats[:, rows, cols] = edges
    ok = mats[:, :-1, :].any(axis=2).all(axis=1) & mats[:, :, 1:].any(axis=1).all(axis=1)
    return mats[ok]


def _interior_perms(n: int) -> np.ndarray:
    """All permutations of vertices fixing input (0) and output (n-1), identity first: int [P, n]."""
    inner = list(itertools.permutations(range(1, n - 1)))
    return np.array([(0, *p, n - 1) for p in inner], dtype=np.intp).reshape(len(inner), n)


def _perm_codes(mats: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """uint64 code of every matrix under every vertex permutation: [N, P]."""
    n = mats.shape[1]
    flat = mats.reshape(len(mats), n * n)
    off = ~np.eye(n, dtype=bool).ravel()
    weights = (np.uint64(1) << np.arange(int(off.sum()), dtype=np.uint64))
    codes = np.empty((len(mats), len(perms)), dtype=np.uint64)
    for j, p in enumerate(perms):
        idx = (p[:, None] * n + p[None, :]).ravel()[off]
        codes[:, j] = (flat[:, idx].astype(np.uint64) * weights).sum(axis=1)
    return codes


def _label_orbits(n: int, automorphisms: np.ndarray) -> np.ndarray:
    """One representative interior labelling (int [K, n-2]) per orbit under the given automorphisms."""
    k = n - 2
    combos = list(itertools.product(range(len(OPS)), repeat=k))
    labellings = np.array(combos, dtype=np.int64).reshape(len(combos), k)
    if k == 0:
        return labellings
    weights = len(OPS) ** np.arange(k, dtype=np.int64)
    canon = np.min(np.stack([labellings[:, p[1:-1] - 1] @ weights for p in automorphisms]), axis=0)
    own = labellings @ weights
    return labellings[canon == own]


def _class_cells(n: int, max_edges: int) -> tuple[np.ndarray, np.ndarray]:
    """Matrices (bool [M, n, n]) and interior labels (int [M, n-2]), one per labelled isomorphism class."""
    mats = _full_dags(n, max_edges)
    perms = _interior_perms(n)
    codes = _perm_codes(mats, perms)
    _, first = np.unique(codes.min(axis=1), return_index=True)
    out_m, out_l = [], []
    orbit_cache: dict[bytes, np.ndarray] = {}
    for r in np.sort(first):
        auts = perms[codes[r] == codes[r, 0]]
        key = auts.tobytes()
        if key not in orbit_cache:
            orbit_cache[key] = _label_orbits(n, auts)
        labels = orbit_cache[key]
        out_m.append(np.repeat(mats[r][None], len(labels), axis=0))
        out_l.append(labels)
    return np.concatenate(out_m), np.concatenate(out_l)


def _hash_chunk(args: tuple[np.ndarray, np.ndarray]) -> list[str]:
    mats, labels = args
    return [hash_graph(m, (-1, *lab.tolist(), -2)) for m, lab in zip(mats, labels)]


def _pack(mats: np.ndarray) -> np.ndarray:
    """Upper-triangle bits of each matrix, row-major, bit i = i-th upper entry: uint32 [M]."""
    n = mats.shape[1]
    rows, cols = _triu_index(n)
    return (mats[:, rows, cols].astype(np.uint32) << np.arange(len(rows), dtype=np.uint32)).sum(axis=1, dtype=np.uint32)


def _unpack(code: int, n: int) -> np.ndarray:
    rows, cols = _triu_index(n)
    m = np.zeros((n, n), dtype=np.uint8)
    m[rows, cols] = (int(code) >> np.arange(len(rows))) & 1
    return m


@dataclass(frozen=True, eq=False)
class CellTable:
    """All enumerated cells as compact arrays; index it or iterate to get :class:`Cell` objects.

    ``num_vertices`` uint8 [N]; ``adjacency`` uint32 [N] (upper-triangle bits, row-major, LSB first);
    ``ops`` uint8 [N] (interior op indices into ``OPS``, base 3, vertex 1 least significant);
    ``hashes`` uint8 [N, 16] (official md5 hashes). Sorted by (num_vertices, hash).
    """
    num_vertices: np.ndarray
    adjacency: np.ndarray
    ops: np.ndarray
    hashes: np.ndarray

    def __len__(self) -> int:
        return len(self.num_vertices)

    def __getitem__(self, i: int) -> Cell:
        n = int(self.num_vertices[i])
        code, ops = int(self.ops[i]), [INPUT]
        for _ in range(n - 2):
            ops.append(OPS[code % 3])
            code //= 3
        return Cell(_unpack(self.adjacency[i], n), ops + [OUTPUT])

    def __iter__(self) -> Iterator[Cell]:
        return (self[i] for i in range(len(self)))

    def hash(self, i: int) -> str:
        """The official hash of cell ``i`` as a hex string."""
        return self.hashes[i].tobytes().hex()

    def hex_hashes(self) -> list[str]:
        return [h.tobytes().hex() for h in self.hashes]

    @property
    def num_edges(self) -> np.ndarray:
        """Edge count of every cell (popcount of ``adjacency``)."""
        a = self.adjacency
        return sum(((a >> np.uint32(b)) & np.uint32(1)).astype(np.int64) for b in range(21))

    def counts_by_vertices(self) -> dict[int, int]:
        v, c = np.unique(self.num_vertices, return_counts=True)
        return {int(a): int(b) for a, b in zip(v, c)}

    def counts_by_edges(self) -> dict[int, int]:
        v, c = np.unique(self.num_edges, return_counts=True)
        return {int(a): int(b) for a, b in zip(v, c)}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the table atomically as a compressed ``.npz``."""
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a file object: numpy adds no ``.npz`` to the name
            np.savez_compressed(fh, version=np.array(CACHE_VERSION), num_vertices=self.num_vertices,
                                adjacency=self.adjacency, ops=self.ops, hashes=self.hashes)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CellTable":
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["version"]) != CACHE_VERSION:
                    raise CellCacheError(f"{path}: cache version {int(data['version'])}, expected {CACHE_VERSION}")
                table = cls(data["num_vertices"], data["adjacency"], data["ops"], data["hashes"])
        except (OSError, ValueError, KeyError) as err:
            if isinstance(err, CellCacheError):
                raise
            raise CellCacheError(f"{path}: not a NAS-Bench-101 cell cache ({err})") from None
        n = len(table.num_vertices)
        if not (len(table.adjacency) == len(table.ops) == n and table.hashes.shape == (n, 16)):
            raise CellCacheError(f"{path}: field 'hashes'/'adjacency'/'ops': arrays of different lengths")
        return table


def enumerate_table(max_vertices: int = MAX_VERTICES, max_edges: int = MAX_EDGES, progress: bool = True,
                    workers: int = 2) -> CellTable:
    """Enumerate all unique cells (pruned, up to isomorphism / official hash) as a :class:`CellTable`."""
    if not 2 <= max_vertices <= MAX_VERTICES or max_edges < 1:
        raise ValueError(f"max_vertices must be in 2..{MAX_VERTICES} and max_edges >= 1, "
                         f"got {max_vertices} and {max_edges}")
    mats_all, labels_all, sizes = [], [], []
    for n in range(2, max_vertices + 1):
        mats, labels = _class_cells(n, max_edges)
        mats_all.append(mats)
        labels_all.append(labels)
        sizes.append(n)
    chunks = []
    for mats, labels in zip(mats_all, labels_all):
        step = 5000
        chunks += [(mats[i:i + step], labels[i:i + step]) for i in range(0, len(mats), step)]
    total = sum(len(m) for m in mats_all)
    hashes: list[str] = []
    bar = tqdm(total=total, desc="hashing NAS-Bench-101 cells", disable=not progress, unit="cell")
    if workers > 1 and len(chunks) > 1:
        with get_context("fork" if os.name != "nt" else "spawn").Pool(workers) as pool:
            for part in pool.imap(_hash_chunk, chunks):
                hashes += part
                bar.update(len(part))
    else:
        for chunk in chunks:
            part = _hash_chunk(chunk)
            hashes += part
            bar.update(len(part))
    bar.close()
    nv = np.concatenate([np.full(len(m), n, dtype=np.uint8) for n, m in zip(sizes, mats_all)])
    adj = np.concatenate([_pack(m) for m in mats_all])
    weights = 3 ** np.arange(max_vertices - 2, dtype=np.int64)
    ops = np.concatenate([(l @ weights[:l.shape[1]]).astype(np.uint8) for l in labels_all])
    hash_bytes = np.frombuffer(bytes.fromhex("".join(hashes)), dtype=np.uint8).reshape(-1, 16)
    # Dedup by official hash (a no-op unless two non-isomorphic cells collided) and sort by (V, hash).
    hex_arr = np.array(hashes)
    _, first = np.unique(hex_arr, return_index=True)
    order = first[np.lexsort((hex_arr[first], nv[first]))]
    return CellTable(nv[order], adj[order], ops[order], hash_bytes[order].copy())


def enumerate_cells(max_vertices: int = MAX_VERTICES, max_edges: int = MAX_EDGES,
                    progress: bool = True) -> Iterator[Cell]:
    """Yield every unique NAS-Bench-101 cell with at most ``max_vertices`` vertices and ``max_edges`` edges."""
    yield from enumerate_table(max_vertices, max_edges, progress=progress)


def load_cells(cache_path: str | os.PathLike | None = None, progress: bool = True) -> CellTable:
    """The full space (423,624 cells), read from ``cache_path`` (default ``~/.cache/arch-gpt/``) or
    enumerated once (a few minutes) and written there."""
    path = Path(cache_path) if cache_path is not None else DEFAULT_CACHE
    if path.exists():
        return CellTable.load(path)
    table = enumerate_table(progress=progress)
    table.save(path)
    return table
