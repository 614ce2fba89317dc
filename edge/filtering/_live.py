"""Numba kernels of the live stage: one call per record for all tracks of a camera.

Track state lives in slabs indexed by slot: ``fr (S, C)`` frame numbers, ``kp (S, C, 17, 3)`` raw
keypoints, ``bx (S, C, 4)`` boxes, ring positions ``head (S,)`` and fill ``count (S,)``. The output of
one track-frame is computed from its ring with the offline kernels of :mod:`._kernels`, on the span of
frames the offline filter would look at, so the two agree exactly.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edge.filtering._kernels import densify, fill_missing, one_euro_live, smooth_centered, smooth_trailing


@njit(cache=True, nogil=True)
def push(slots, frame, kp, boxes, fr, kpb, bxb, head, count, last):
    """Append this record's pose of each track to its ring."""
    cap = fr.shape[1]
    for i in range(slots.shape[0]):
        s = slots[i]
        h = head[s]
        fr[s, h] = frame
        kpb[s, h] = kp[i]
        bxb[s, h] = boxes[i]
        head[s] = (h + 1) % cap
        count[s] = min(count[s] + 1, cap)
        last[s] = frame


@njit(cache=True, nogil=True)
def _row(fr, kpb, s, head, count, lo, ip, fp, out_row, sel, rel, kp, dense, measured, observed, res):
    """Row ``lo + centre`` of track ``s`` from the ring entries in ``[lo, lo + length)``.

    ``ip``: length, centre, centered, half, even, window, fit, max_gap; ``fp``: min_conf, decay. The
    remaining arguments are scratch reused across tracks. Returns -1 when no keypoint is usable there,
    -2 when the frame was bridged, else the ring slot of the frame's own observation.
    """
    length, centre = ip[0], ip[1]
    cap = fr.shape[1]
    n = count[s]
    m = 0
    own = -2
    for k in range(n):
        i = (head[s] - n + k) % cap
        f = fr[s, i]
        if lo <= f < lo + length:
            sel[m] = i
            m += 1
            if f == lo + centre:
                own = i
    n_kp = kpb.shape[2]
    for k in range(m):
        rel[k] = fr[s, sel[k]] - lo
        kp[k] = kpb[s, sel[k]]
    dense[:] = 0.0
    measured[:] = False
    observed[:] = False
    res[:] = 0.0
    densify(rel[:m], kp[:m], length, ip[7], fp[0], fp[1], dense, measured, observed)
    if ip[2]:
        smooth_centered(dense, ip[3], ip[4] != 0, res, centre, centre + 1)
    else:
        smooth_trailing(dense, measured, ip[5], ip[6] != 0, res, centre, centre + 1)
    fill_missing(res, rel[:m], kp[:m], centre, centre + 1)
    usable = False
    for j in range(n_kp):
        out_row[j, 0] = res[centre, j, 0]
        out_row[j, 1] = res[centre, j, 1]
        out_row[j, 2] = res[centre, j, 2]
        if res[centre, j, 2] > 0.0:
            usable = True
    return own if usable else -1


@njit(cache=True, nogil=True)
def window_rows(slots, frame, fr, kpb, head, count, ip, fp, out, own):
    """Centred or trailing output at ``frame`` for each slot (``own`` gets :func:`_row`'s status)."""
    lo = frame - ip[1]
    cap = fr.shape[1]
    length = ip[0]
    n_kp = kpb.shape[2]
    sel = np.empty(cap, dtype=np.int64)
    rel = np.empty(cap, dtype=np.int64)
    kp = np.empty((cap, n_kp, 3), dtype=np.float32)
    dense = np.empty((length, n_kp, 3))
    measured = np.empty((length, n_kp), dtype=np.bool_)
    observed = np.empty(length, dtype=np.bool_)
    res = np.empty((length, n_kp, 3))
    for i in range(slots.shape[0]):
        own[i] = _row(fr, kpb, slots[i], head, count, lo, ip, fp, out[i], sel, rel, kp, dense, measured,
                      observed, res)


@njit(cache=True, nogil=True)
def box_rows(slots, frame, fr, bxb, head, count, own, boxes):
    """Each track's box at ``frame``: its own, or interpolated between the observations around it."""
    cap = fr.shape[1]
    for i in range(slots.shape[0]):
        s = slots[i]
        if own[i] >= 0:
            boxes[i] = bxb[s, own[i]]
            continue
        a = -1
        b = -1
        n = count[s]
        for k in range(n):
            j = (head[s] - n + k) % cap
            if fr[s, j] < frame:
                a = j
            elif fr[s, j] > frame and b < 0:
                b = j
        if a < 0 or b < 0:
            boxes[i] = bxb[s, a if a >= 0 else max(b, 0)]
            continue
        f = np.float32((frame - fr[s, a]) / float(fr[s, b] - fr[s, a]))
        for c in range(4):
            boxes[i, c] = bxb[s, a, c] + f * (bxb[s, b, c] - bxb[s, a, c])


@njit(cache=True, nogil=True)
def one_euro_rows(slots, frame, raw, euro, euro_last, euro_val, max_gap, min_conf, decay, dt, min_cutoff, beta,
                  d_cutoff, out):
    one = np.zeros(1, dtype=np.int64)
    for i in range(slots.shape[0]):
        s = slots[i]
        one_euro_live(euro[s], euro_last[s], euro_val[s], frame, raw[i], max_gap, min_conf, decay, dt, min_cutoff,
                      beta, d_cutoff, out[i])
        fill_missing(out[i:i + 1], one, raw[i:i + 1], 0, 1)


@njit(cache=True, nogil=True)
def mask_rows(raw, min_conf, decay, out):
    """Measured keypoints as given, the rest missing (confidence 0, finite coordinates)."""
    one = np.zeros(1, dtype=np.int64)
    for i in range(raw.shape[0]):
        densify(one, raw[i:i + 1], 1, 0, min_conf, decay, out[i:i + 1], np.zeros((1, raw.shape[1]), np.bool_),
                np.zeros(1, np.bool_))
        fill_missing(out[i:i + 1], one, raw[i:i + 1], 0, 1)
