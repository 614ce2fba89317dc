"""Numba kernels for threshold calibration: the alert state machine of :mod:`edge.alerting.engine`,
reduced to counting ``new`` events over recorded score series, so that thousands of candidate
thresholds can be tried on hours of recordings. The engine stays the reference; a test checks that
both count the same alerts."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def ema_series(x, seg_start, alpha):
    """EMA of ``x`` restarted at every segment (one segment = one track's scores in time order)."""
    out = np.empty_like(x)
    for s in range(len(seg_start) - 1):
        lo, hi = seg_start[s], seg_start[s + 1]
        e = 0.0
        for i in range(lo, hi):
            e = x[i] if i == lo else alpha * x[i] + (1.0 - alpha) * e
            out[i] = e
    return out


@njit(cache=True, nogil=True)
def count_alerts(t, ema, allowed, seg_start, threshold, release, min_duration, end_after, cooldown, eps,
                 warmup=0):
    """Number of alerts the engine raises on these segments with this threshold (``eps``: its TIME_EPS;
    ``warmup``: its warmup_windows)."""
    n_alerts = 0
    for s in range(len(seg_start) - 1):
        active = False
        hot_since = np.nan
        cold_since = np.nan
        cooldown_until = -np.inf
        for i in range(seg_start[s], seg_start[s + 1]):
            e = ema[i]
            ti = t[i]
            if not active:
                if e > threshold and allowed[i] and i - seg_start[s] >= warmup and ti >= cooldown_until - eps:
                    if np.isnan(hot_since):
                        hot_since = ti
                    if ti - hot_since >= min_duration - eps:
                        n_alerts += 1
                        active = True
                        hot_since = np.nan
                        cold_since = np.nan
                else:
                    hot_since = np.nan
            else:
                if (not allowed[i]) or e < release:
                    if np.isnan(cold_since):
                        cold_since = ti
                    if ti - cold_since >= end_after - eps:
                        active = False
                        cooldown_until = ti + cooldown
                        hot_since = np.nan
                else:
                    cold_since = np.nan
    return n_alerts
