"""NAS-Bench-101 space: official hashes, pruning, enumeration counts, network expansion (real parts, no mocks)."""
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from arch_gpt.encoding import Architecture
from arch_gpt.zoo.nasbench101 import (
    Cell, CellCacheError, CellError, CellTable, cell_hash, cell_to_architecture, cell_to_module, enumerate_cells,
    enumerate_table, hash_graph, load_cells, vertex_channels,
)

# The Inception-like cell of the NAS-Bench-101 README (2,694,282 trainable parameters).
INCEPTION_MATRIX = [[0, 1, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0],
                    [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]]
INCEPTION_OPS = ["input", "conv1x1-bn-relu", "conv3x3-bn-relu", "conv3x3-bn-relu", "conv3x3-bn-relu",
                 "maxpool3x3", "output"]
# A record of the official NAS-Bench-101 data set, as quoted by several public repositories.
OFFICIAL_HASH = "00005c142e6f48ac74fdcf73e3439874"
OFFICIAL_MATRIX = [[0, 1, 0, 0, 1, 1, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 1], [0, 0, 0, 0, 0, 1, 0],
                   [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]]
OFFICIAL_OPS = ["input", "conv3x3-bn-relu", "maxpool3x3", "conv3x3-bn-relu", "conv3x3-bn-relu",
                "conv1x1-bn-relu", "output"]
OFFICIAL_PARAMS = 8_555_530
# A cell whose channel split (43/43/42) makes vertex 1 (43 channels) feed vertex 3 (42): a truncation.
TRUNCATE_MATRIX = [[0, 1, 1, 0, 0], [0, 0, 0, 1, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
TRUNCATE_OPS = ["input", "conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "output"]


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _random_topological_relabel(matrix, ops, rng):
    """The same graph with interior vertices renumbered in another random topological order."""
    m = np.array(matrix)
    n = len(m)
    order, indeg = [0], m.sum(axis=0).copy()
    indeg[0] = -1
    for w in np.flatnonzero(m[0]):
        indeg[w] -= 1
    while len(order) < n - 1:
        ready = [v for v in range(1, n - 1) if indeg[v] == 0]
        v = int(rng.choice(ready))
        order.append(v)
        indeg[v] = -1
        for w in np.flatnonzero(m[v]):
            indeg[w] -= 1
    order.append(n - 1)
    return m[np.ix_(order, order)], [ops[i] for i in order]


# ----------------------------------------------------------------------------- hashing and pruning

def test_hash_equals_official_hash_of_known_record():
    assert cell_hash(OFFICIAL_MATRIX, OFFICIAL_OPS) == OFFICIAL_HASH


def test_isomorphic_cells_have_the_same_hash():
    rng = np.random.default_rng(0)
    seen_other_order = False
    for _ in range(10):
        m, ops = _random_topological_relabel(OFFICIAL_MATRIX, OFFICIAL_OPS, rng)
        seen_other_order |= ops != OFFICIAL_OPS
        assert cell_hash(m, ops) == OFFICIAL_HASH
    assert seen_other_order


def test_changing_one_op_changes_the_hash():
    ops = list(OFFICIAL_OPS)
    ops[2] = "conv1x1-bn-relu"
    assert cell_hash(OFFICIAL_MATRIX, ops) != OFFICIAL_HASH


def test_pruning_drops_vertices_off_every_path_and_keeps_the_hash():
    # vertex 2 has no path to the output, vertex 3 none from the input
    matrix = [[0, 1, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    ops = ["input", "conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "output"]
    pruned = Cell(matrix, ops).pruned()
    assert pruned == Cell([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"])
    assert cell_hash(matrix, ops) == cell_hash(pruned.matrix, pruned.ops)
    assert Cell(matrix, ops).is_valid()


def test_hash_graph_matches_cell_hash_for_pruned_cells():
    cell = Cell(INCEPTION_MATRIX, INCEPTION_OPS)
    assert hash_graph(cell.matrix, cell.labels) == cell.hash()


def test_disconnected_cell_raises():
    matrix = [[0, 1, 0], [0, 0, 0], [0, 0, 0]]
    with pytest.raises(CellError, match="not reachable"):
        cell_hash(matrix, ["input", "conv3x3-bn-relu", "output"])
    assert not Cell(matrix, ["input", "conv3x3-bn-relu", "output"]).is_valid()


def test_cell_over_the_edge_limit_is_not_valid():
    n = 7
    full = np.triu(np.ones((n, n), dtype=int), 1)
    assert not Cell(full, ["input"] + ["conv3x3-bn-relu"] * 5 + ["output"]).is_valid()


def test_non_square_matrix_raises():
    with pytest.raises(CellError, match="field 'matrix'"):
        Cell([[0, 1, 0], [0, 0, 1]], ["input", "conv3x3-bn-relu", "output"])


def test_lower_triangular_entry_raises():
    with pytest.raises(CellError, match="upper triangular"):
        Cell([[0, 1, 0], [0, 0, 1], [1, 0, 0]], ["input", "conv3x3-bn-relu", "output"])


def test_non_binary_entry_raises():
    with pytest.raises(CellError, match="0 or 1"):
        Cell([[0, 2], [0, 0]], ["input", "output"])


def test_wrong_number_of_ops_raises():
    with pytest.raises(CellError, match="field 'ops'"):
        Cell([[0, 1], [0, 0]], ["input", "conv3x3-bn-relu", "output"])


def test_unknown_op_raises():
    with pytest.raises(CellError, match=r"ops\[1\]"):
        Cell([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv5x5", "output"])


def test_missing_input_op_raises():
    with pytest.raises(CellError, match="first op"):
        Cell([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["conv3x3-bn-relu", "conv3x3-bn-relu", "output"])


# ----------------------------------------------------------------------------- enumeration

def _official_generator_hashes(max_vertices: int, max_edges: int) -> set[str]:
    """NAS-Bench-101's generator, literally: every full-DAG matrix × every labelling, deduplicated by hash."""
    hashes = set()
    for n in range(2, max_vertices + 1):
        rows, cols = np.triu_indices(n, 1)
        for bits in itertools.product((0, 1), repeat=len(rows)):
            m = np.zeros((n, n), dtype=int)
            m[rows, cols] = bits
            if m.sum() > max_edges or not m[:-1].any(axis=1).all() or not m[:, 1:].any(axis=0).all():
                continue
            for labels in itertools.product(range(3), repeat=n - 2):
                hashes.add(hash_graph(m, (-1, *labels, -2)))
    return hashes


def test_small_enumeration_matches_the_official_generator():
    table = enumerate_table(max_vertices=5, max_edges=9, progress=False, workers=1)
    assert table.counts_by_vertices() == {2: 1, 3: 6, 4: 84, 5: 2441}
    assert set(table.hex_hashes()) == _official_generator_hashes(5, 9)


def test_enumerated_cells_are_pruned_valid_and_hashed_correctly():
    cells = list(enumerate_cells(max_vertices=4, max_edges=9, progress=False))
    assert len(cells) == 1 + 6 + 84
    for cell in cells:
        assert cell.pruned() == cell
        assert cell.num_edges <= 9
    table = enumerate_table(max_vertices=4, progress=False, workers=1)
    assert [table.hash(i) for i in range(len(table))] == [c.hash() for c in cells]


def test_edge_limit_is_respected():
    table = enumerate_table(max_vertices=5, max_edges=5, progress=False, workers=1)
    assert max(table.counts_by_edges()) == 5
    assert all(c.num_edges <= 5 for c in table)


def test_cache_round_trip(tmp_path):
    table = enumerate_table(max_vertices=4, progress=False, workers=1)
    path = table.save(tmp_path / "cells.npz")
    loaded = load_cells(path)
    assert len(loaded) == len(table)
    assert loaded.hex_hashes() == table.hex_hashes()
    assert list(loaded) == list(table)


def test_corrupt_cache_raises(tmp_path):
    path = tmp_path / "cells.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(CellCacheError, match="cells.npz"):
        CellTable.load(path)


def test_cache_of_another_version_raises(tmp_path):
    path = tmp_path / "cells.npz"
    np.savez(path, version=np.array(99), num_vertices=np.zeros(1, np.uint8), adjacency=np.zeros(1, np.uint32),
             ops=np.zeros(1, np.uint8), hashes=np.zeros((1, 16), np.uint8))
    with pytest.raises(CellCacheError, match="version 99"):
        CellTable.load(path)


def test_cache_with_inconsistent_arrays_raises(tmp_path):
    path = tmp_path / "cells.npz"
    np.savez(path, version=np.array(1), num_vertices=np.zeros(2, np.uint8), adjacency=np.zeros(1, np.uint32),
             ops=np.zeros(1, np.uint8), hashes=np.zeros((1, 16), np.uint8))
    with pytest.raises(CellCacheError, match="different lengths"):
        CellTable.load(path)


@pytest.mark.slow
def test_full_enumeration_counts(tmp_path):
    table = enumerate_table(progress=False)
    assert len(table) == 423_624
    assert table.counts_by_vertices() == {2: 1, 3: 6, 4: 84, 5: 2441, 6: 62010, 7: 359082}
    assert table.counts_by_edges() == {1: 1, 2: 3, 3: 12, 4: 60, 5: 339, 6: 2134, 7: 13984, 8: 78822, 9: 328269}
    assert len(set(table.hex_hashes())) == 423_624
    assert OFFICIAL_HASH in set(table.hex_hashes())
    assert len(load_cells(table.save(tmp_path / "c.npz"))) == 423_624


# ----------------------------------------------------------------------------- network expansion

def test_inception_cell_has_the_readme_parameter_count():
    assert _params(cell_to_module(Cell(INCEPTION_MATRIX, INCEPTION_OPS))) == 2_694_282


def test_official_record_cell_has_its_recorded_parameter_count():
    assert _params(cell_to_module(Cell(OFFICIAL_MATRIX, OFFICIAL_OPS))) == OFFICIAL_PARAMS


def test_channel_rule_splits_output_channels_and_propagates_backwards():
    m = np.array(TRUNCATE_MATRIX)
    assert vertex_channels(128, 128, m) == [128, 43, 43, 42, 128]
    assert vertex_channels(128, 256, np.array(INCEPTION_MATRIX)) == [128, 64, 64, 64, 64, 64, 256]


def _arch_params(arch: Architecture) -> int:
    total = 0
    for layer in arch:
        if layer.kind == "conv":
            total += layer.kernel[0] * layer.kernel[1] * layer.in_size[2] * layer.out_size[2] // layer.groups
        elif layer.kind == "fc":
            total += layer.in_size * layer.out_size + layer.out_size
        elif layer.kind == "other" and layer.name == "BN":
            total += 2 * layer.in_size[2]
    return total


@pytest.mark.parametrize("matrix,ops", [(INCEPTION_MATRIX, INCEPTION_OPS), (OFFICIAL_MATRIX, OFFICIAL_OPS),
                                        (TRUNCATE_MATRIX, TRUNCATE_OPS), ([[0, 1], [0, 0]], ["input", "output"])])
def test_architecture_matches_module(matrix, ops):
    cell = Cell(matrix, ops)
    kw = dict(stem_channels=16, num_stacks=2, cells_per_stack=2, num_classes=7)
    arch = cell_to_architecture(cell, input_size=(12, 12, 3), **kw)
    module = cell_to_module(cell, input_size=(12, 12, 3), **kw)
    assert _arch_params(arch) == _params(module)
    conv_outs = []
    hooks = [m.register_forward_hook(lambda mod, i, o: conv_outs.append((o.shape[2], o.shape[3], o.shape[1],
                                                                         mod.kernel_size[0], i[0].shape[1])))
             for m in module.modules() if isinstance(m, nn.Conv2d)]
    out = module(torch.randn(2, 3, 12, 12))
    for h in hooks:
        h.remove()
    assert out.shape == (2, 7)
    arch_convs = [(*l.out_size, l.kernel[0], l.in_size[2]) for l in arch if l.kind == "conv"]
    assert sorted(arch_convs) == sorted(conv_outs)
    pools = sum(isinstance(m, nn.MaxPool2d) for m in module.modules())
    assert pools == sum(l.kind == "pool" for l in arch)
    assert Architecture.from_text(arch.to_text()) == arch


def test_truncation_is_written_as_a_layer():
    arch = cell_to_architecture(Cell(TRUNCATE_MATRIX, TRUNCATE_OPS))
    truncates = [l for l in arch if l.kind == "other" and l.name == "Truncate"]
    assert len(truncates) == 9  # once per cell
    assert (truncates[0].in_size, truncates[0].out_size) == ((32, 32, 43), (32, 32, 42))


def test_architecture_has_real_sizes_and_block_labels():
    arch = cell_to_architecture(Cell(INCEPTION_MATRIX, INCEPTION_OPS))
    assert arch.input_size == (32, 32, 3)
    labels = list(dict.fromkeys(arch.blocks))
    assert labels == (["Stem#1", "Cell#1", "Cell#2", "Cell#3", "Downsample#1", "Cell#4", "Cell#5", "Cell#6",
                       "Downsample#2", "Cell#7", "Cell#8", "Cell#9", "Head#1"])
    pools = [l for l in arch if l.kind == "pool" and l.stride == (2, 2)]
    assert [(p.in_size, p.out_size) for p in pools] == [((32, 32, 128), (16, 16, 128)), ((16, 16, 256), (8, 8, 256))]
    assert arch[-1].kind == "fc" and (arch[-1].in_size, arch[-1].out_size) == (512, 10)
    concat = next(l for l in arch if l.kind == "other" and l.name == "Concat")
    assert concat.out_size == (32, 32, 128) and len(concat.source_ids()) == 4


def test_module_forward_on_cifar_sized_input():
    module = cell_to_module(Cell(INCEPTION_MATRIX, INCEPTION_OPS)).eval()
    with torch.no_grad():
        assert module(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_odd_input_size_pools_with_ceil():
    cell = Cell(OFFICIAL_MATRIX, OFFICIAL_OPS)
    arch = cell_to_architecture(cell, input_size=(15, 15, 3), stem_channels=8)
    module = cell_to_module(cell, input_size=(15, 15, 3), stem_channels=8)
    pools = [l for l in arch if l.kind == "pool" and l.stride == (2, 2)]
    assert [p.out_size[:2] for p in pools] == [(8, 8), (4, 4)]
    assert module(torch.randn(1, 3, 15, 15)).shape == (1, 10)
