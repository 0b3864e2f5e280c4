"""Drawing NAS-Bench-101 cells without enumerating the space: every cell exactly once when all are asked for, a
uniform distribution over cells, valid cells named by their official hash, and reproducible draws."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from arch_gpt.zoo.nasbench101 import Cell, enumerate_table
from arch_gpt.zoo.nasbench101_sampling import CELLS_BY_VERTICES, draw_cells, sample_table, space_size


def test_space_sizes_are_the_enumerated_ones():
    assert space_size(7) == 423_624 and space_size(5) == 2_532
    assert enumerate_table(max_vertices=5, progress=False).counts_by_vertices() == \
        {k: v for k, v in CELLS_BY_VERTICES.items() if k <= 5}


def test_asking_for_every_cell_gives_each_cell_once():
    """All 2,532 cells of at most 5 vertices: the sample is the enumerated space, cell for cell."""
    sampled = sample_table(space_size(5), np.random.default_rng(0), max_vertices=5)
    enumerated = enumerate_table(max_vertices=5, progress=False)
    assert sampled.hex_hashes() == enumerated.hex_hashes()           # same cells, same (vertices, hash) order
    assert (sampled.num_vertices == enumerated.num_vertices).all()
    assert all(sampled[i].hash() == sampled.hash(i) for i in range(0, len(sampled), 7))


def test_draws_are_uniform_over_cells():
    """91 cells of at most 4 vertices, 18,200 draws: a chi-square test does not reject uniformity (fixed seed)."""
    draws = draw_cells(np.random.default_rng(1), max_vertices=4)
    drawn = [next(draws)[:2] for _ in range(91 * 200)]
    counts = Counter(digest for digest, _ in drawn)
    assert len(counts) == 91
    assert chisquare(list(counts.values())).pvalue > 1e-3
    by_vertices = Counter(n for _, n in drawn)
    assert by_vertices[4] / len(drawn) == pytest.approx(84 / 91, abs=0.01)


def test_full_space_sample_is_valid_and_reproducible():
    table = sample_table(60, np.random.default_rng(5))
    again = sample_table(60, np.random.default_rng(5))
    assert table.hex_hashes() == again.hex_hashes() and len(set(table.hex_hashes())) == 60
    for i in range(len(table)):
        cell = table[i]
        assert cell.is_valid() and cell.pruned() == cell and cell.hash() == table.hash(i)
    # 85 % of the space has 7 vertices: a uniform sample of 60 cells is mostly 7-vertex cells
    assert Counter(table.num_vertices.tolist())[7] >= 40


@pytest.mark.parametrize("kwargs, needle", [
    ({"count": 8, "max_vertices": 3}, "count"), ({"count": 1, "max_vertices": 8}, "max_vertices"),
    ({"count": 1, "max_edges": 8}, "max_edges"),
])
def test_bad_arguments(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        sample_table(rng=np.random.default_rng(0), **kwargs)
