"""The Numba Jonker-Volgenant solver: optimal, and tie-breaking like the solver the original used."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edge.tracking.lapjv import assign_limited, linear_assignment


def brute_force_limited(cost: np.ndarray, limit: float) -> float:
    """Best total of (c - limit) over partial matchings (only pairs below the limit can help)."""
    nr, nc = cost.shape
    best = 0.0
    for k in range(1, min(nr, nc) + 1):
        for rows in itertools.combinations(range(nr), k):
            for cols in itertools.permutations(range(nc), k):
                best = min(best, sum(cost[r, c] - limit for r, c in zip(rows, cols)))
    return best


def objective(cost, x, limit):
    return sum(cost[i, j] - limit for i, j in enumerate(x) if j >= 0)


@pytest.mark.parametrize("seed", range(4))
def test_limited_assignment_is_optimal(seed):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        nr, nc = rng.integers(1, 6, size=2)
        cost = rng.random((nr, nc))
        if rng.random() < 0.5:
            cost = np.round(cost * 4) / 4  # many exact ties
        limit = float(rng.choice([0.3, 0.5, 0.7, 0.8, 0.9]))
        x, y = linear_assignment(cost, limit)
        # consistent and one-to-one
        for i, j in enumerate(x):
            if j >= 0:
                assert y[j] == i
        assert sorted(j for j in x if j >= 0) == sorted(set(j for j in x if j >= 0))
        assert all(cost[i, j] <= limit for i, j in enumerate(x) if j >= 0)
        assert objective(cost, x, limit) == pytest.approx(brute_force_limited(cost, limit), abs=1e-12)


def test_unlimited_assignment_matches_scipy():
    scipy_opt = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(7)
    for _ in range(200):
        nr, nc = rng.integers(1, 12, size=2)
        cost = rng.random((nr, nc)) * 10
        x, y = linear_assignment(cost)
        r, c = scipy_opt.linear_sum_assignment(cost)
        assert (x >= 0).sum() == min(nr, nc)
        assert cost[np.arange(nr)[x >= 0], x[x >= 0]].sum() == pytest.approx(cost[r, c].sum())


# Tie cases with the assignment the original's solver (lap 0.5.12, lapjv with extend_cost=True and
# cost_limit) returns for them.
TIES = [
    ([[0.2, 0.2], [0.2, 0.2]], 0.8, [1, 0], [1, 0]),
    ([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]], 0.8, [0, 2], [0, -1, 1]),
    ([[0.8, 0.1], [0.1, 0.8]], 0.8, [1, 0], [1, 0]),
    ([[0.3, 0.3, 1.0], [0.3, 0.3, 0.3], [1.0, 0.3, 0.3]], 0.5, [0, 1, 2], [0, 1, 2]),
    ([[0.8, 0.8], [0.8, 0.8]], 0.8, [0, 1], [0, 1]),  # exactly at the limit: a tie, taken here
    ([[0.25, 0.5], [0.5, 0.25], [0.25, 0.25]], 0.7, [-1, 1, 0], [2, 1]),
]


@pytest.mark.parametrize("cost,limit,x_expected,y_expected", TIES)
def test_ties_break_like_the_original_solver(cost, limit, x_expected, y_expected):
    x, y = linear_assignment(np.array(cost), limit)
    assert x.tolist() == x_expected and y.tolist() == y_expected


def test_same_as_lap_when_installed():
    lap = pytest.importorskip("lap", reason="lap is not a dependency; this cross-check runs where it is installed")
    rng = np.random.default_rng(3)
    for t in range(3000):
        nr, nc = rng.integers(1, 9, size=2)
        cost = np.round(rng.random((nr, nc)) * 4) / 4 if t % 2 else rng.random((nr, nc))
        limit = float(rng.choice([0.5, 0.7, 0.8, 0.9]))
        _, xl, yl = lap.lapjv(cost, extend_cost=True, cost_limit=limit)
        x = np.empty(nr, np.int64)
        y = np.empty(nc, np.int64)
        assign_limited(cost, limit, x, y)
        assert x.tolist() == xl.tolist() and y.tolist() == yl.tolist()


def test_empty_and_bad_matrices():
    x, y = linear_assignment(np.zeros((0, 3)), 0.5)
    assert x.shape == (0,) and y.tolist() == [-1, -1, -1]
    x, y = linear_assignment(np.ones((2, 2)), 0.5)  # nothing under the limit
    assert x.tolist() == [-1, -1]
    with pytest.raises(ValueError, match="NaN"):
        linear_assignment(np.array([[np.nan, 1.0]]), 0.5)
    with pytest.raises(ValueError, match="2-D"):
        linear_assignment(np.zeros(3), 0.5)
