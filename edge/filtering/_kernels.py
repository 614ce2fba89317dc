"""Numba kernels of the pose filter.

All kernels work on a *dense* float64 track ``(L, 17, 3)`` whose row ``p`` is frame ``first + p``.
A keypoint is *usable* when its confidence is > 0: measured (finite, confidence >= min_confidence) or
bridged by interpolation. Everything else has confidence 0 and is never averaged into anything.
Float64 inside so that the offline functions and the live stage, which run the same kernels on
different spans of the same track, agree to the last bit.

Nothing here is compiled at import time: ``cache=True`` compiles on first call and reuses the on-disk
cache afterwards.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Confidence of a bridged keypoint: min(confidence at the two ends) * CONF_DECAY ** d, d = frames to
# the nearer measured end. A point in the middle of a long gap is trusted less than one next to a
# measurement; it stays > 0 so downstream code can tell "bridged" from "missing".
CONF_DECAY = 0.9


@njit(cache=True, nogil=True)
def densify(rel, kp, length, max_gap, min_conf, decay, out, measured, observed):
    """Scatter measurements into the dense track and bridge gaps of at most ``max_gap`` frames.

    ``rel``: int64 (F,) row of each input frame (sorted, unique); ``kp``: float32 (F, 17, 3).
    ``out`` float64 (L, 17, 3) zeroed, ``measured`` bool (L, 17), ``observed`` bool (L,) are filled.
    """
    n_kp = kp.shape[1]
    for i in range(rel.shape[0]):
        p = rel[i]
        if p < 0 or p >= length:
            continue
        observed[p] = True
        for j in range(n_kp):
            x = kp[i, j, 0]
            y = kp[i, j, 1]
            c = kp[i, j, 2]
            if math.isfinite(x) and math.isfinite(y) and math.isfinite(c) and c > 0.0 and c >= min_conf:
                out[p, j, 0] = x
                out[p, j, 1] = y
                out[p, j, 2] = c
                measured[p, j] = True
    for j in range(n_kp):
        a = -1
        for p in range(length):
            if not measured[p, j]:
                continue
            gap = p - a - 1
            if a >= 0 and 1 <= gap <= max_gap:
                xa = out[a, j, 0]
                ya = out[a, j, 1]
                ca = out[a, j, 2]
                xb = out[p, j, 0]
                yb = out[p, j, 1]
                cb = out[p, j, 2]
                c0 = min(ca, cb)
                span = float(p - a)
                for q in range(a + 1, p):
                    f = (q - a) / span
                    out[q, j, 0] = xa + f * (xb - xa)
                    out[q, j, 1] = ya + f * (yb - ya)
                    out[q, j, 2] = c0 * decay ** min(q - a, p - q)
            a = p


@njit(cache=True, nogil=True)
def smooth_centered(src, half, even, dst, lo, hi):
    """Symmetric moving average of rows ``lo..hi-1`` (other rows of ``dst`` are left alone).

    Odd window ``2*half+1``: uniform taps. Even window ``2*half``: taps ``-half..half`` with half
    weight at both ends (the usual centred average of an even span). Near the track's ends or an
    unbridged gap the window shrinks symmetrically to the widest fully usable span, so the result
    stays exact on constant and linear motion everywhere.
    """
    length = src.shape[0]
    for p in range(lo, hi):
        for j in range(src.shape[1]):
            if src[p, j, 2] <= 0.0:
                continue
            r = 0
            while (r < half and p - r - 1 >= 0 and p + r + 1 < length
                   and src[p - r - 1, j, 2] > 0.0 and src[p + r + 1, j, 2] > 0.0):
                r += 1
            sx = 0.0
            sy = 0.0
            if r == half and even and half > 0:
                for q in range(p - r + 1, p + r):
                    sx += src[q, j, 0]
                    sy += src[q, j, 1]
                sx += 0.5 * (src[p - r, j, 0] + src[p + r, j, 0])
                sy += 0.5 * (src[p - r, j, 1] + src[p + r, j, 1])
                w = 2.0 * r
            else:
                for q in range(p - r, p + r + 1):
                    sx += src[q, j, 0]
                    sy += src[q, j, 1]
                w = 2.0 * r + 1.0
            dst[p, j, 0] = sx / w
            dst[p, j, 1] = sy / w
            dst[p, j, 2] = src[p, j, 2]


@njit(cache=True, nogil=True)
def smooth_trailing(src, measured, window, fit, dst, lo, hi):
    """Causal trailing window over rows ``p-window+1..p`` for measured keypoints of rows ``lo..hi-1``.

    ``fit``: least-squares line through the usable samples, evaluated at ``p`` (no lag on constant
    velocity); otherwise their mean (lag ``(window-1)/2`` frames on constant velocity). Keypoints not
    measured at ``p`` are not produced: a causal filter cannot know yet whether their gap will close.
    """
    for p in range(lo, hi):
        for j in range(src.shape[1]):
            if not measured[p, j]:
                continue
            n = 0.0
            su = 0.0
            suu = 0.0
            sx = 0.0
            sy = 0.0
            sux = 0.0
            suy = 0.0
            for q in range(max(0, p - window + 1), p + 1):
                if src[q, j, 2] <= 0.0:
                    continue
                u = float(q - p)
                x = src[q, j, 0]
                y = src[q, j, 1]
                n += 1.0
                su += u
                suu += u * u
                sx += x
                sy += y
                sux += u * x
                suy += u * y
            det = n * suu - su * su
            if fit and n >= 2.0 and det > 0.0:
                bx = (n * sux - su * sx) / det
                by = (n * suy - su * sy) / det
                dst[p, j, 0] = (sx - bx * su) / n
                dst[p, j, 1] = (sy - by * su) / n
            else:
                dst[p, j, 0] = sx / n
                dst[p, j, 1] = sy / n
            dst[p, j, 2] = src[p, j, 2]


@njit(cache=True, nogil=True)
def _alpha(cutoff, dt):
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


@njit(cache=True, nogil=True)
def one_euro_step(state, j, x, y, dt, min_cutoff, beta, d_cutoff):
    """Advance keypoint ``j``'s One-Euro state by one sample.

    ``state`` float64 (17, 5): x_hat, y_hat, dx_hat, dy_hat, initialised (0/1). x and y share the
    speed-dependent cutoff (speed = norm of the smoothed velocity, pixels/s) so a joint moving fast
    along one axis is not over-smoothed along the other.
    """
    if state[j, 4] == 0.0:
        state[j, 0] = x
        state[j, 1] = y
        state[j, 2] = 0.0
        state[j, 3] = 0.0
        state[j, 4] = 1.0
        return
    ad = _alpha(d_cutoff, dt)
    dx = ad * (x - state[j, 0]) / dt + (1.0 - ad) * state[j, 2]
    dy = ad * (y - state[j, 1]) / dt + (1.0 - ad) * state[j, 3]
    a = _alpha(min_cutoff + beta * math.sqrt(dx * dx + dy * dy), dt)
    state[j, 0] = a * x + (1.0 - a) * state[j, 0]
    state[j, 1] = a * y + (1.0 - a) * state[j, 1]
    state[j, 2] = dx
    state[j, 3] = dy


@njit(cache=True, nogil=True)
def one_euro_series(src, measured, dt, min_cutoff, beta, d_cutoff, dst):
    """One-Euro over a dense track: runs through bridged samples, restarts after an unbridged gap,
    and writes the estimate at measured keypoints only (what a live filter can emit)."""
    state = np.zeros((src.shape[1], 5))
    for j in range(src.shape[1]):
        for p in range(src.shape[0]):
            if src[p, j, 2] <= 0.0:
                state[j, 4] = 0.0
                continue
            one_euro_step(state, j, src[p, j, 0], src[p, j, 1], dt, min_cutoff, beta, d_cutoff)
            if measured[p, j]:
                dst[p, j, 0] = state[j, 0]
                dst[p, j, 1] = state[j, 1]
                dst[p, j, 2] = src[p, j, 2]


@njit(cache=True, nogil=True)
def one_euro_live(state, last, last_val, frame, kp, max_gap, min_conf, decay, dt, min_cutoff, beta,
                  d_cutoff, out):
    """One live frame of One-Euro for one track.

    ``last`` int64 (17,): frame of the last measurement of each keypoint (very negative if none);
    ``last_val`` float64 (17, 3) its value. A measurement that closes a gap of at most ``max_gap``
    frames first runs the filter through the bridged samples (same values as the offline bridge);
    a longer gap restarts the filter. ``out`` float64 (17, 3) gets the estimate, confidence 0 where
    the keypoint is not measured now.
    """
    for j in range(kp.shape[0]):
        x = kp[j, 0]
        y = kp[j, 1]
        c = kp[j, 2]
        out[j, 2] = 0.0
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(c) and c > 0.0 and c >= min_conf):
            continue
        xb = float(x)
        yb = float(y)
        cb = float(c)
        gap = frame - last[j] - 1
        if gap > max_gap or gap < 0:
            state[j, 4] = 0.0
        elif gap >= 1:
            span = float(gap + 1)
            for k in range(1, gap + 1):
                f = k / span
                one_euro_step(state, j, last_val[j, 0] + f * (xb - last_val[j, 0]),
                              last_val[j, 1] + f * (yb - last_val[j, 1]), dt, min_cutoff, beta, d_cutoff)
        one_euro_step(state, j, xb, yb, dt, min_cutoff, beta, d_cutoff)
        last[j] = frame
        last_val[j, 0] = xb
        last_val[j, 1] = yb
        last_val[j, 2] = cb
        out[j, 0] = state[j, 0]
        out[j, 1] = state[j, 1]
        out[j, 2] = cb


@njit(cache=True, nogil=True)
def fill_missing(dense, rel, kp, lo, hi):
    """Give unusable keypoints of rows ``lo..hi-1`` finite coordinates (confidence stays 0): the
    detector's own coordinates where it gave finite ones, else the centroid of the frame's usable
    keypoints, else 0. Returns nothing; ``present`` is derived by the caller from confidences."""
    n_kp = dense.shape[1]
    for i in range(rel.shape[0]):
        p = rel[i]
        if p < lo or p >= hi:
            continue
        for j in range(n_kp):
            if dense[p, j, 2] <= 0.0 and math.isfinite(kp[i, j, 0]) and math.isfinite(kp[i, j, 1]):
                dense[p, j, 0] = kp[i, j, 0]
                dense[p, j, 1] = kp[i, j, 1]
                dense[p, j, 2] = -1.0  # marks "has raw coordinates"; reset to 0 below
    for p in range(lo, hi):
        n = 0.0
        cx = 0.0
        cy = 0.0
        for j in range(n_kp):
            if dense[p, j, 2] > 0.0:
                n += 1.0
                cx += dense[p, j, 0]
                cy += dense[p, j, 1]
        if n > 0.0:
            cx /= n
            cy /= n
        for j in range(n_kp):
            if dense[p, j, 2] < 0.0:
                dense[p, j, 2] = 0.0
            elif dense[p, j, 2] == 0.0:
                dense[p, j, 0] = cx
                dense[p, j, 1] = cy

