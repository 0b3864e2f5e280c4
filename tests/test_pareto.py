"""search/pareto.py: NSGA-II sorting and crowding, fronts, 2-D hypervolume, checked on hand-made points."""
import numpy as np
import pytest

from arch_gpt.search.pareto import crowding_distance, dominates, hypervolume_2d, non_dominated_sort, pareto_front


def test_dominance():
    assert dominates((1, 2), (2, 2)) and not dominates((1, 2), (1, 2)) and not dominates((1, 3), (2, 2))


def test_fronts():
    pts = [(1, 5), (2, 2), (5, 1), (3, 3), (4, 4), (6, 6)]
    assert non_dominated_sort(pts) == [[0, 1, 2], [3], [4], [5]]
    assert pareto_front(pts) == [0, 1, 2]


def test_crowding_prefers_the_boundary_and_the_sparse():
    d = crowding_distance([(0, 4), (1, 3), (3, 1), (4, 0)])
    assert d[0] == d[3] == float("inf") and d[1] == pytest.approx(d[2])
    assert crowding_distance([(0, 1), (1, 0)]) == [float("inf")] * 2


def test_hypervolume():
    assert hypervolume_2d([(1, 1)], (3, 3)) == 4
    assert hypervolume_2d([(1, 2), (2, 1)], (3, 3)) == pytest.approx(3)
    assert hypervolume_2d([(1, 2), (2, 1), (2.5, 2.5)], (3, 3)) == pytest.approx(3)  # a dominated point adds none
    assert hypervolume_2d([(4, 4)], (3, 3)) == 0


def test_sorting_agrees_with_brute_force():
    rng = np.random.default_rng(0)
    pts = [tuple(p) for p in rng.integers(0, 10, (60, 2))]
    front = set(pareto_front(pts))
    brute = {i for i, p in enumerate(pts) if not any(dominates(q, p) for q in pts)}
    assert front == brute
