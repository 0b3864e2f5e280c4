"""Multi-objective tools: non-dominated sorting and crowding distance (NSGA-II, Deb et al. 2002), Pareto fronts
and the 2-objective hypervolume. Every point is a tuple to MINIMIZE (accuracy enters negated)."""
from __future__ import annotations

from typing import Sequence

Point = Sequence[float]


def dominates(a: Point, b: Point) -> bool:
    """``a`` is no worse than ``b`` everywhere and better somewhere."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def non_dominated_sort(points: Sequence[Point]) -> list[list[int]]:
    """Indices of ``points`` by front: front 0 is non-dominated, front 1 once front 0 is removed, ... (O(n^2 m))."""
    n = len(points)
    dominated_by = [[] for _ in range(n)]
    count = [0] * n
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(points[i], points[j]):
                dominated_by[i].append(j)
                count[j] += 1
            elif dominates(points[j], points[i]):
                dominated_by[j].append(i)
                count[i] += 1
    fronts, current = [], [i for i in range(n) if count[i] == 0]
    while current:
        fronts.append(current)
        nxt = []
        for i in current:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(j)
        current = sorted(nxt)
    return fronts


def crowding_distance(points: Sequence[Point]) -> list[float]:
    """NSGA-II's crowding distance of each point within one front (boundary points: infinity)."""
    n = len(points)
    if n <= 2:
        return [float("inf")] * n
    distance = [0.0] * n
    for k in range(len(points[0])):
        order = sorted(range(n), key=lambda i: points[i][k])
        low, high = points[order[0]][k], points[order[-1]][k]
        distance[order[0]] = distance[order[-1]] = float("inf")
        if high == low:
            continue
        for a, i, b in zip(order, order[1:], order[2:]):
            distance[i] += (points[b][k] - points[a][k]) / (high - low)
    return distance


def pareto_front(points: Sequence[Point]) -> list[int]:
    """Indices of the non-dominated points (duplicates of a front point are all kept)."""
    return non_dominated_sort(points)[0] if points else []


def hypervolume_2d(points: Sequence[Point], reference: Point) -> float:
    """The area dominated by ``points`` (2 objectives, minimized) and bounded by ``reference``."""
    inside = sorted({(x, y) for x, y in points if x < reference[0] and y < reference[1]})
    area, best_y = 0.0, reference[1]
    for x, y in inside:  # x ascending: each point adds the strip below the best y so far
        if y < best_y:
            area += (reference[0] - x) * (best_y - y)
            best_y = y
    return area
