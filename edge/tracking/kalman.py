"""Constant-velocity Kalman filter on boxes (cx, cy, aspect, height), as ByteTrack uses it.

State ``mean`` (8,) = (cx, cy, a, h, vcx, vcy, va, vh) and covariance ``cov`` (8, 8), updated in
place on rows of the tracker's state arrays. Noise is proportional to the box height: 1/20 of it for
positions, 1/160 for velocities; the aspect ratio gets fixed terms (1e-2 position, 1e-5 velocity,
1e-1 measurement). The prediction is written out term by term because the transition matrix only
adds velocities to positions: this gives exactly the values the dense products give, at a fraction
of the cost.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_W_POS = 1.0 / 20.0
_W_VEL = 1.0 / 160.0


@njit(cache=True, nogil=True)
def initiate(mean, cov, cx, cy, a, h):
    mean[0] = cx
    mean[1] = cy
    mean[2] = a
    mean[3] = h
    for k in range(4, 8):
        mean[k] = 0.0
    for r in range(8):
        for c in range(8):
            cov[r, c] = 0.0
    sp = 2.0 * _W_POS * h
    sv = 10.0 * _W_VEL * h
    cov[0, 0] = sp * sp
    cov[1, 1] = sp * sp
    cov[2, 2] = 1e-2 * 1e-2
    cov[3, 3] = sp * sp
    cov[4, 4] = sv * sv
    cov[5, 5] = sv * sv
    cov[6, 6] = 1e-5 * 1e-5
    cov[7, 7] = sv * sv


@njit(cache=True, nogil=True)
def predict(mean, cov):
    h = mean[3]
    sp = _W_POS * h
    sv = _W_VEL * h
    for k in range(4):
        mean[k] = mean[k] + mean[k + 4]
    # F P F^T with F = [[I, I], [0, I]]: rows then columns of the upper blocks gain the lower ones.
    for c in range(8):
        for r in range(4):
            cov[r, c] = cov[r, c] + cov[r + 4, c]
    for r in range(8):
        for c in range(4):
            cov[r, c] = cov[r, c] + cov[r, c + 4]
    q_pos = sp * sp
    q_vel = sv * sv
    cov[0, 0] += q_pos
    cov[1, 1] += q_pos
    cov[2, 2] += 1e-2 * 1e-2
    cov[3, 3] += q_pos
    cov[4, 4] += q_vel
    cov[5, 5] += q_vel
    cov[6, 6] += 1e-5 * 1e-5
    cov[7, 7] += q_vel


@njit(cache=True, nogil=True)
def update(mean, cov, cx, cy, a, h):
    hm = mean[3]
    sp = _W_POS * hm
    s = np.empty((4, 4))
    for r in range(4):
        for c in range(4):
            s[r, c] = cov[r, c]
    s[0, 0] += sp * sp
    s[1, 1] += sp * sp
    s[2, 2] += 1e-1 * 1e-1
    s[3, 3] += sp * sp
    # Cholesky S = L L^T (S is symmetric positive definite by construction).
    low = np.zeros((4, 4))
    for r in range(4):
        for c in range(r + 1):
            acc = s[r, c]
            for k in range(c):
                acc -= low[r, k] * low[c, k]
            if r == c:
                low[r, r] = np.sqrt(acc)
            else:
                low[r, c] = acc / low[c, c]
    # Gain K = P H^T S^-1, solved row by row: K[i] solves S k = P[i, :4].
    gain = np.empty((8, 4))
    tmp = np.empty(4)
    for i in range(8):
        for r in range(4):
            acc = cov[i, r]
            for k in range(r):
                acc -= low[r, k] * tmp[k]
            tmp[r] = acc / low[r, r]
        for r in range(3, -1, -1):
            acc = tmp[r]
            for k in range(r + 1, 4):
                acc -= low[k, r] * gain[i, k]
            gain[i, r] = acc / low[r, r]
    innov = np.empty(4)
    innov[0] = cx - mean[0]
    innov[1] = cy - mean[1]
    innov[2] = a - mean[2]
    innov[3] = h - mean[3]
    for i in range(8):
        acc = 0.0
        for k in range(4):
            acc += innov[k] * gain[i, k]
        mean[i] = mean[i] + acc
    # P - K S K^T
    ks = np.empty((8, 4))
    for i in range(8):
        for c in range(4):
            acc = 0.0
            for k in range(4):
                acc += gain[i, k] * s[k, c]
            ks[i, c] = acc
    for i in range(8):
        for j in range(8):
            acc = 0.0
            for k in range(4):
                acc += ks[i, k] * gain[j, k]
            cov[i, j] = cov[i, j] - acc
