"""STG-NF forward pass (data -> latent) in plain numpy, eval mode.

Every BatchNorm is folded into the affine map before or after it. With the uniform adjacency of the
published models the graph convolution is a mean over the joints, so the whole conditioning branch up
to the temporal convolution lives on ``(N, channels, T)`` instead of ``(N, channels, T, V)``; only the
residual branch and the coupling itself are per joint. The two channels are carried as separate
arrays, which turns the channel reversal into a swap of names.

All operations are elementwise or reduce within one window, and none goes through BLAS, so a window
scores the same, bit for bit, whatever batch it is in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edge.scoring.architecture import BN_EPS, SCALE_EPS, StgnfArchitecture, adjacency

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class FoldedStep:
    """One flow step with its BatchNorms folded (float64). ``V'`` is 1 for the uniform adjacency."""

    an_bias: np.ndarray  # (2,) ActNorm: y = (x + bias) * exp(logs)
    an_logs: np.ndarray  # (2,)
    gcn_w: np.ndarray  # (2,): BN1 scale * conv weight, applied to the aggregated joint values
    gcn_b: np.ndarray  # (2, V'): BN1 scale * conv bias * column sums of A + BN1 shift
    tcn_w: np.ndarray  # (2, 2, K): BN2 scale * temporal weights
    tcn_b: np.ndarray  # (2,)
    res_w: np.ndarray | None  # (2,): residual conv weight * BN scale (absent in step 0)
    res_b: np.ndarray | None
    ld_const: float  # ActNorm log-det of this step: T * V * sum(logs)
    # the coupling scale is computed on (T, V'); with V' = 1 (uniform adjacency, no residual: step 0)
    # it is the same for every joint and its log counts V times
    coupling_ld_weight: float


@dataclass(frozen=True)
class FoldedFlow:
    arch: StgnfArchitecture
    steps: tuple[FoldedStep, ...]
    adjacency: np.ndarray  # (V, V) float32 values
    uniform: bool  # all entries of the adjacency equal: aggregation is a sum times adjacency[0, 0]


@dataclass
class FlowOutput:
    """Per-window results in the flow's working precision."""

    nll: np.ndarray  # (N,) bits per dimension
    logdet: np.ndarray  # (N,) nats
    log_pz: np.ndarray  # (N,) nats
    z: np.ndarray  # (N, 2, T, V)
    step_z: np.ndarray | None = None  # (K, N, 2, T, V) latent after each step
    step_logdet: np.ndarray | None = None  # (K, N) cumulative log-det after each step


def _bn_fold(w: dict, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    g = w[prefix + ".weight"].astype(np.float64)
    b = w[prefix + ".bias"].astype(np.float64)
    m = w[prefix + ".running_mean"].astype(np.float64)
    v = w[prefix + ".running_var"].astype(np.float64)
    a = g / np.sqrt(v + BN_EPS)
    return a, b - m * a


def fold(weights: dict[str, np.ndarray], arch: StgnfArchitecture) -> FoldedFlow:
    """Fold the BatchNorms of a validated weight set (see ``architecture.check_tensors``)."""
    A = adjacency(arch.max_hops).astype(np.float64)
    uniform = bool(np.all(A == A[0, 0]))
    colsum = A.sum(axis=0)
    colsum = colsum[:1] if uniform else colsum
    tv = arch.seg_len * arch.n_joints
    steps = []
    for k in range(arch.n_steps):
        p = f"flow.layers.{k}."
        logs = weights[p + "actnorm.logs"].astype(np.float64).reshape(2)
        b = p + "block.0."
        a1, c1 = _bn_fold(weights, b + "tcn.0")
        wg = weights[b + "gcn.conv.weight"].astype(np.float64).reshape(2)
        bg = weights[b + "gcn.conv.bias"].astype(np.float64)
        a2, c2 = _bn_fold(weights, b + "tcn.3")
        tw = weights[b + "tcn.2.weight"].astype(np.float64)[..., 0]
        tb = weights[b + "tcn.2.bias"].astype(np.float64)
        res_w = res_b = None
        if k > 0:
            ar, cr = _bn_fold(weights, b + "residual.1")
            res_w = ar * weights[b + "residual.0.weight"].astype(np.float64).reshape(2)
            res_b = ar * weights[b + "residual.0.bias"].astype(np.float64) + cr
        steps.append(FoldedStep(
            an_bias=weights[p + "actnorm.bias"].astype(np.float64).reshape(2), an_logs=logs,
            gcn_w=a1 * wg, gcn_b=a1[:, None] * bg[:, None] * colsum[None, :] + c1[:, None],
            tcn_w=a2[:, None, None] * tw, tcn_b=a2 * tb + c2, res_w=res_w, res_b=res_b,
            ld_const=tv * float(logs.sum()),
            coupling_ld_weight=float(arch.n_joints if (uniform and res_w is None) else 1)))
    return FoldedFlow(arch=arch, steps=tuple(steps), adjacency=A, uniform=uniform)


@dataclass(frozen=True)
class _Step:
    an_bias: tuple
    an_scale: tuple
    gcn_w: np.ndarray  # (2, 1, 1)
    gcn_b: np.ndarray  # (2, 1, V')
    tcn_w: np.ndarray  # (2, 2, K)
    tcn_b: np.ndarray  # (2, 1, 1)
    res_w: np.ndarray | None
    res_b: np.ndarray | None
    ld_const: float
    coupling_ld_weight: float
    conv_m: np.ndarray | None = None  # (2T, 2T) temporal convolution as a matrix (uniform adjacency)
    conv_b: np.ndarray | None = None  # (2T,) its bias, plus the residual bias where there is one


def _conv_matrix(w: np.ndarray, t: int) -> np.ndarray:
    """Zero-padded 'same' temporal convolution ``out[o, i] = sum_{c,j} w[o, c, j] y[c, i + j - pad]``
    as a ``(2T, 2T)`` matrix acting on ``y`` flattened channel-major."""
    k = w.shape[2]
    pad = (k - 1) // 2
    m = np.zeros((2, t, 2, t))
    for i in range(t):
        for j in range(k):
            src = i + j - pad
            if 0 <= src < t:
                m[:, i, :, src] = w[:, :, j]
    return m.reshape(2 * t, 2 * t)


class NumpyFlow:
    """Folded STG-NF for inference. ``dtype`` is the working precision (float32 or float64)."""

    def __init__(self, weights: dict[str, np.ndarray], arch: StgnfArchitecture, dtype=np.float32):
        self.arch = arch
        self.dtype = dt = np.dtype(dtype)
        ff = fold(weights, arch)
        self._uniform = ff.uniform
        self._a_val = float(ff.adjacency[0, 0])
        self._A = ff.adjacency.astype(dt)
        self._steps = [_Step(
            an_bias=tuple(s.an_bias.astype(dt)), an_scale=tuple(np.exp(s.an_logs).astype(dt)),
            gcn_w=s.gcn_w.astype(dt)[:, None, None], gcn_b=s.gcn_b.astype(dt)[:, None, :],
            tcn_w=s.tcn_w.astype(dt), tcn_b=s.tcn_b.astype(dt)[:, None, None],
            res_w=None if s.res_w is None else s.res_w.astype(dt),
            res_b=None if s.res_b is None else s.res_b.astype(dt),
            ld_const=s.ld_const, coupling_ld_weight=s.coupling_ld_weight,
            conv_m=_conv_matrix(s.tcn_w, arch.seg_len).astype(dt) if ff.uniform else None,
            conv_b=np.repeat(s.tcn_b + (0 if s.res_b is None else s.res_b), arch.seg_len).astype(dt)
            if ff.uniform else None) for s in ff.steps]
        self._pad = (arch.kernel - 1) // 2

    def _aggregate(self, u: np.ndarray) -> np.ndarray:
        """Graph aggregation of the conditioning channel ``(N, T, V)`` -> ``(N, T, V')``."""
        if self._uniform:
            return u.sum(axis=2, keepdims=True) * self.dtype.type(self._a_val)
        return np.einsum("ntv,vw->ntw", u, self._A, optimize=False)

    def _conditioning(self, s: _Step, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ST-GCN unit on ``u (N, T, V)``: returns (shift, raw scale), each ``(N, T, V)`` (or
        ``(N, T, 1)``, equal for all joints, in the first step with the uniform adjacency)."""
        if self._uniform:
            return self._conditioning_uniform(s, u)
        m = self._aggregate(u)  # (N, T, V')
        y = np.maximum(s.gcn_w * m[:, None] + s.gcn_b, 0)  # (N, 2, T, V')
        yp = np.pad(y, ((0, 0), (0, 0), (self._pad, self._pad), (0, 0)))
        win = sliding_window_view(yp, self.arch.kernel, axis=2)  # (N, 2, T, V', K)
        t = np.einsum("nctvj,ocj->notv", win, s.tcn_w, optimize=False) + s.tcn_b  # (N, 2, T, V')
        if s.res_w is None:
            return np.maximum(t[:, 0], 0), np.maximum(t[:, 1], 0)
        h0 = np.maximum(t[:, 0] + (u * s.res_w[0] + s.res_b[0]), 0)
        h1 = np.maximum(t[:, 1] + (u * s.res_w[1] + s.res_b[1]), 0)
        return h0, h1

    def _conditioning_uniform(self, s: _Step, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # the joint mean makes the branch before the residual a function of (N, T) only; the temporal
        # convolution is then one small matrix product (einsum: no BLAS, so no batch-size dependent
        # summation order)
        n, t = u.shape[0], u.shape[1]
        m = u.sum(axis=2) * self.dtype.type(self._a_val)  # (N, T)
        y = np.maximum(s.gcn_w[:, 0] * m[:, None, :] + s.gcn_b[:, 0], 0)  # (N, 2, T)
        c = np.einsum("nk,mk->nm", y.reshape(n, 2 * t), s.conv_m, optimize=False) + s.conv_b
        c0, c1 = c[:, :t, None], c[:, t:, None]
        if s.res_w is None:
            return np.maximum(c0, 0), np.maximum(c1, 0)
        return np.maximum(u * s.res_w[0] + c0, 0), np.maximum(u * s.res_w[1] + c1, 0)

    def forward(self, x: np.ndarray, *, steps: bool = False) -> FlowOutput:
        """``x (N, 2, T, 18)`` normalised windows -> :class:`FlowOutput`."""
        dt = self.dtype
        x = np.asarray(x)
        n = len(x)
        ch0 = x[:, 0].astype(dt)
        ch1 = x[:, 1].astype(dt)
        ld = np.zeros(n, dtype=np.float64)
        one, eps, two = dt.type(1), dt.type(SCALE_EPS), dt.type(2)
        step_z = np.empty((len(self._steps), n, 2, *ch0.shape[1:]), dt) if steps else None
        step_ld = np.empty((len(self._steps), n), np.float64) if steps else None
        for k, s in enumerate(self._steps):
            a0 = (ch0 + s.an_bias[0]) * s.an_scale[0]
            a1 = (ch1 + s.an_bias[1]) * s.an_scale[1]
            ld += s.ld_const
            z1, z2 = a1, a0  # channel reversal, then split in halves
            shift, raw = self._conditioning(s, z1)
            scale = one / (one + np.exp(-(raw + two))) + eps
            z2 = (z2 + shift) * scale
            ld += s.coupling_ld_weight * np.log(scale).reshape(n, -1).sum(axis=1, dtype=np.float64)
            ch0, ch1 = z1, z2
            if steps:
                step_z[k, :, 0], step_z[k, :, 1] = ch0, ch1
                step_ld[k] = ld
        R = self.arch.prior_mean
        sq = (np.square(ch0 - dt.type(R)).reshape(n, -1).sum(axis=1, dtype=np.float64)
              + np.square(ch1 - dt.type(R)).reshape(n, -1).sum(axis=1, dtype=np.float64))
        dims = self.arch.dims
        log_pz = -0.5 * (sq / (1.0 + SCALE_EPS) + dims * _LOG_2PI)
        nll = -(ld + log_pz) / (math.log(2.0) * dims)
        z = np.stack([ch0, ch1], axis=1)
        return FlowOutput(nll=nll.astype(dt), logdet=ld.astype(dt), log_pz=log_pz.astype(dt), z=z,
                          step_z=step_z, step_logdet=step_ld)

