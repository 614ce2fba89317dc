"""Linear assignment by Jonker-Volgenant (shortest augmenting path), in Numba.

The tracker must reproduce the original ByteTrack's associations exactly, including which of several
equally cheap assignments wins a tie. So the solver follows the classic dense JV scheme step by step:
column reduction with reduction transfer, two rounds of augmenting row reduction, then Dijkstra-like
augmentation for the rows still free; with the same scan order and the same ``<`` / ``<=`` choices,
equal inputs give equal outputs.

A rectangular problem with a cost limit is solved as a square one of size ``rows + cols``: every row
may pair with a dummy column and every column with a dummy row at ``limit / 2`` each, dummies pair with
each other at zero. A real pair is thus taken only where it beats ``limit`` (a pair at exactly the
limit is a tie that the scan order decides), which is what "accept costs below the limit" means.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_LARGE = 1000000.0


@njit(cache=True, nogil=True)
def _column_reduction(n, cost, free_rows, x, y, v):
    for i in range(n):
        x[i] = -1
        v[i] = _LARGE
        y[i] = 0
    for i in range(n):
        for j in range(n):
            c = cost[i, j]
            if c < v[j]:
                v[j] = c
                y[j] = i
    unique = np.ones(n, dtype=np.bool_)
    # Walk columns from the last so that the lowest column index keeps its row, as JV prescribe.
    for j in range(n - 1, -1, -1):
        i = y[j]
        if x[i] < 0:
            x[i] = j
        else:
            unique[i] = False
            y[j] = -1
    n_free = 0
    for i in range(n):
        if x[i] < 0:
            free_rows[n_free] = i
            n_free += 1
        elif unique[i]:
            j = x[i]
            m = _LARGE
            for j2 in range(n):
                if j2 == j:
                    continue
                c = cost[i, j2] - v[j2]
                if c < m:
                    m = c
            v[j] -= m
    return n_free


@njit(cache=True, nogil=True)
def _augmenting_row_reduction(n, cost, n_free, free_rows, x, y, v):
    current = 0
    new_free = 0
    rr_cnt = 0
    while current < n_free:
        rr_cnt += 1
        free_i = free_rows[current]
        current += 1
        j1 = 0
        v1 = cost[free_i, 0] - v[0]
        j2 = -1
        v2 = _LARGE
        for j in range(1, n):
            c = cost[free_i, j] - v[j]
            if c < v2:
                if c >= v1:
                    v2 = c
                    j2 = j
                else:
                    v2 = v1
                    v1 = c
                    j2 = j1
                    j1 = j
        i0 = y[j1]
        v1_new = v[j1] - (v2 - v1)
        v1_lowers = v1_new < v[j1]
        # Bound on re-queued rows: without it a degenerate matrix can cycle forever.
        if rr_cnt < current * n:
            if v1_lowers:
                v[j1] = v1_new
            elif i0 >= 0 and j2 >= 0:
                j1 = j2
                i0 = y[j2]
            if i0 >= 0:
                if v1_lowers:
                    current -= 1
                    free_rows[current] = i0
                else:
                    free_rows[new_free] = i0
                    new_free += 1
        else:
            if i0 >= 0:
                free_rows[new_free] = i0
                new_free += 1
        x[free_i] = j1
        y[j1] = free_i
    return new_free


@njit(cache=True, nogil=True)
def _find_path(n, cost, start_i, y, v, pred, cols, d):
    lo = 0
    hi = 0
    final_j = -1
    n_ready = 0
    for j in range(n):
        cols[j] = j
        pred[j] = start_i
        d[j] = cost[start_i, j] - v[j]
    while final_j == -1:
        if lo == hi:
            # Collect the columns at the current minimum distance onto the scan list.
            n_ready = lo
            hi = lo + 1
            mind = d[cols[lo]]
            for k in range(hi, n):
                j = cols[k]
                if d[j] <= mind:
                    if d[j] < mind:
                        hi = lo
                        mind = d[j]
                    cols[k] = cols[hi]
                    cols[hi] = j
                    hi += 1
            for k in range(lo, hi):
                j = cols[k]
                if y[j] < 0:
                    final_j = j
        if final_j == -1:
            # Relax the remaining columns through the rows of the scanned ones. An early exit on a
            # free column leaves lo/hi as they were before this scan: the dual update below relies on it.
            slo = lo
            shi = hi
            found = -1
            while slo != shi:
                j = cols[slo]
                slo += 1
                i = y[j]
                mind = d[j]
                h = cost[i, j] - v[j] - mind
                for k in range(shi, n):
                    j = cols[k]
                    cred = cost[i, j] - v[j] - h
                    if cred < d[j]:
                        d[j] = cred
                        pred[j] = i
                        if cred == mind:
                            if y[j] < 0:
                                found = j
                                break
                            cols[k] = cols[shi]
                            cols[shi] = j
                            shi += 1
                if found != -1:
                    break
            if found == -1:
                lo = slo
                hi = shi
            else:
                final_j = found
    mind = d[cols[lo]]
    for k in range(n_ready):
        j = cols[k]
        v[j] += d[j] - mind
    return final_j


@njit(cache=True, nogil=True)
def _augment(n, cost, n_free, free_rows, x, y, v):
    pred = np.empty(n, dtype=np.int64)
    cols = np.empty(n, dtype=np.int64)
    d = np.empty(n, dtype=np.float64)
    for f in range(n_free):
        free_i = free_rows[f]
        j = _find_path(n, cost, free_i, y, v, pred, cols, d)
        i = -1
        k = 0
        while i != free_i:
            i = pred[j]
            y[j] = i
            tmp = x[i]
            x[i] = j
            j = tmp
            k += 1
            if k > n:  # pragma: no cover - a broken path would otherwise loop forever
                break


@njit(cache=True, nogil=True)
def lapjv_square(cost, x, y):
    """Solve the square problem ``cost`` (n, n) in place into ``x`` (row -> col) and ``y`` (col -> row)."""
    n = cost.shape[0]
    if n == 0:
        return
    free_rows = np.empty(n, dtype=np.int64)
    v = np.empty(n, dtype=np.float64)
    n_free = _column_reduction(n, cost, free_rows, x, y, v)
    it = 0
    while n_free > 0 and it < 2:
        n_free = _augmenting_row_reduction(n, cost, n_free, free_rows, x, y, v)
        it += 1
    if n_free > 0:
        _augment(n, cost, n_free, free_rows, x, y, v)


@njit(cache=True, nogil=True)
def assign_limited(cost, limit, x_out, y_out):
    """Assign rows to columns of ``cost`` (nr, nc), taking only pairs cheaper than ``limit``.

    Writes ``x_out[i]`` (column of row i or -1) and ``y_out[j]`` (row of column j or -1); returns the
    number of matched pairs.
    """
    nr, nc = cost.shape
    for i in range(nr):
        x_out[i] = -1
    for j in range(nc):
        y_out[j] = -1
    if nr == 0 or nc == 0:
        return 0
    n = nr + nc
    ext = np.empty((n, n), dtype=np.float64)
    half = limit / 2.0
    for i in range(n):
        for j in range(n):
            if i < nr and j < nc:
                ext[i, j] = cost[i, j]
            elif i >= nr and j >= nc:
                ext[i, j] = 0.0
            else:
                ext[i, j] = half
    x = np.empty(n, dtype=np.int64)
    y = np.empty(n, dtype=np.int64)
    lapjv_square(ext, x, y)
    m = 0
    for i in range(nr):
        if x[i] < nc:
            x_out[i] = x[i]
            m += 1
    for j in range(nc):
        if y[j] < nr:
            y_out[j] = y[j]
    return m


def linear_assignment(cost: np.ndarray, limit: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Optimal assignment of a (rows, cols) cost matrix; pairs at or above ``limit`` are left out.

    Returns ``(x, y)``: ``x[i]`` the column given to row ``i`` (-1 if none), ``y[j]`` the row given to
    column ``j``. With ``limit`` infinite, the smaller side is matched completely (a minimum-cost
    assignment over the padded square matrix).
    """
    c = np.ascontiguousarray(cost, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"cost must be a 2-D matrix, got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("cost contains NaN or infinite entries")
    nr, nc = c.shape
    x = np.full(nr, -1, dtype=np.int64)
    y = np.full(nc, -1, dtype=np.int64)
    if nr == 0 or nc == 0:
        return x, y
    if np.isfinite(limit):
        assign_limited(c, float(limit), x, y)
        return x, y
    n = max(nr, nc)
    sq = np.zeros((n, n), dtype=np.float64)
    sq[:nr, :nc] = c
    xs = np.empty(n, dtype=np.int64)
    ys = np.empty(n, dtype=np.int64)
    lapjv_square(sq, xs, ys)
    x[:] = np.where(xs[:nr] < nc, xs[:nr], -1)
    y[:] = np.where(ys[:nc] < nr, ys[:nc], -1)
    return x, y
