"""The NAS-Bench-101 search space (Ying et al., 2019) built from first principles, with no download.

One import point for the three parts: cells, pruning and the official hash
(:mod:`~arch_gpt.zoo.nasbench101_cells`); enumeration of all 423,624 unique cells and their cache
(:mod:`~arch_gpt.zoo.nasbench101_enumeration`); a cell expanded into the full network as an
:class:`~arch_gpt.encoding.Architecture` or an ``nn.Module`` (:mod:`~arch_gpt.zoo.nasbench101_network`).

Example::

    table = load_cells()                      # 423,624 cells (enumerated once, ~30 s, then cached)
    arch = cell_to_architecture(table[0])     # 32×32×3 input, 10 classes
"""
from arch_gpt.zoo.nasbench101_cells import (
    CONV1X1, CONV3X3, INPUT, LABELS, MAX_EDGES, MAX_VERTICES, MAXPOOL3X3, OPS, OUTPUT, Cell, CellError, cell_hash,
    check_cell, hash_graph, prune,
)
from arch_gpt.zoo.nasbench101_enumeration import (
    DEFAULT_CACHE, CellCacheError, CellTable, enumerate_cells, enumerate_table, load_cells,
)
from arch_gpt.zoo.nasbench101_network import cell_to_architecture, vertex_channels

__all__ = [
    "CONV1X1", "CONV3X3", "INPUT", "LABELS", "MAX_EDGES", "MAX_VERTICES", "MAXPOOL3X3", "OPS", "OUTPUT",
    "Cell", "CellError", "cell_hash", "check_cell", "hash_graph", "prune",
    "DEFAULT_CACHE", "CellCacheError", "CellTable", "enumerate_cells", "enumerate_table", "load_cells",
    "NB101Cell", "cell_to_architecture", "cell_to_module", "vertex_channels",
]


def __getattr__(name: str):
    """The nn.Module side (``cell_to_module``, ``NB101Cell``) loads torch only when asked for."""
    if name in ("cell_to_module", "NB101Cell"):
        from arch_gpt.zoo import nasbench101_module  # torch is heavy: a corpus build writes layers only
        return getattr(nasbench101_module, name)
    raise AttributeError(f"module 'arch_gpt.zoo.nasbench101' has no attribute {name!r}")
