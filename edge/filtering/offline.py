"""Offline pose filtering of one whole track: gap bridging, then smoothing.

Input of every function: a track as ``frames`` int64 ``(F,)`` (sorted, unique) and ``keypoints``
float32 ``(F, 17, 3)`` (x, y, confidence in pixels). Output: a :class:`DenseTrack` with one row per
frame from ``frames[0]`` to ``frames[-1]``.

Rules (the live :class:`~edge.filtering.stage.PoseFilter` follows the same ones):

* A keypoint is *measured* when x, y, confidence are finite, confidence > 0 and >= ``min_conf``.
  Everything else (low confidence, NaN, inf, frames the track was not seen on) is missing.
* Each keypoint's gaps of at most ``max_gap`` frames are bridged by linear interpolation between the
  two measurements around it; a whole missing frame is just a gap of every keypoint. The confidence of
  a bridged point is ``min(c_before, c_after) * CONF_DECAY ** d``, ``d`` = frames to the nearer
  measurement (``CONF_DECAY = 0.9``). Longer gaps stay missing.
* A missing keypoint in the output has confidence 0 and finite coordinates: the detector's own ones
  where they were finite, else the centroid of the frame's usable keypoints (never NaN).
* ``present[p]`` is true where the frame has at least one usable keypoint: only those frames are
  poses of the track (the windowing sees the others as missing frames).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from edge.filtering import _kernels as K


class DenseTrack(NamedTuple):
    """One row per frame ``frames[0] .. frames[-1]`` of a track."""

    frames: np.ndarray  # int64 (L,)
    keypoints: np.ndarray  # float32 (L, 17, 3); confidence 0 = missing
    present: np.ndarray  # bool (L,): frame has at least one usable keypoint
    measured: np.ndarray  # bool (L, 17): keypoint measured (not bridged) at that frame

    def poses(self) -> tuple[np.ndarray, np.ndarray]:
        """``(frames, keypoints)`` of the present frames only: what windowing takes."""
        return self.frames[self.present], self.keypoints[self.present]


def _check(frames, keypoints) -> tuple[np.ndarray, np.ndarray]:
    fr = np.asarray(frames)
    if fr.ndim != 1 or (fr.size and not np.issubdtype(fr.dtype, np.integer)):
        raise ValueError(f"frames must be a 1-D integer array, got shape {fr.shape} dtype {fr.dtype}")
    fr = np.ascontiguousarray(fr, dtype=np.int64)
    kp = np.ascontiguousarray(keypoints, dtype=np.float32)
    if kp.ndim != 3 or kp.shape[1:] != (17, 3) or len(kp) != len(fr):
        raise ValueError(f"keypoints must be (F, 17, 3) with F = {len(fr)} frames, got {kp.shape}")
    if len(fr) > 1:
        bad = np.flatnonzero(np.diff(fr) <= 0)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"frames must be strictly increasing: frame {fr[i + 1]} follows frame {fr[i]} "
                             f"(position {i + 1})")
    return fr, kp


def _dense(frames, keypoints, max_gap, min_conf):
    fr, kp = _check(frames, keypoints)
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    if len(fr) == 0:
        length = 0
        first = 0
    else:
        first = int(fr[0])
        length = int(fr[-1] - fr[0] + 1)
    rel = fr - first
    out = np.zeros((length, 17, 3))
    measured = np.zeros((length, 17), dtype=np.bool_)
    observed = np.zeros(length, dtype=np.bool_)
    if length:
        K.densify(rel, kp, length, int(max_gap), float(min_conf), K.CONF_DECAY, out, measured, observed)
    return first + np.arange(length, dtype=np.int64), rel, kp, out, measured


def _finish(dense_frames, rel, kp, values, measured) -> DenseTrack:
    if len(values):
        K.fill_missing(values, rel, kp, 0, len(values))
    present = (values[:, :, 2] > 0).any(axis=1) if len(values) else np.zeros(0, dtype=bool)
    return DenseTrack(dense_frames, values.astype(np.float32), present, measured)


def interpolate_gaps(frames, keypoints, max_gap: int = 8, min_conf: float = 0.2) -> DenseTrack:
    """Bridge gaps of at most ``max_gap`` frames per keypoint; no smoothing."""
    dense_frames, rel, kp, values, measured = _dense(frames, keypoints, max_gap, min_conf)
    return _finish(dense_frames, rel, kp, values, measured)


def smooth_centered(frames, keypoints, window: int = 8, max_gap: int = 8, min_conf: float = 0.2) -> DenseTrack:
    """Bridge gaps, then the paper's centred ``window``-frame moving average (bridged frames are present)."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    dense_frames, rel, kp, values, measured = _dense(frames, keypoints, max_gap, min_conf)
    out = np.zeros_like(values)
    if len(values):
        K.smooth_centered(values, window // 2, window % 2 == 0, out, 0, len(values))
    return _finish(dense_frames, rel, kp, out, measured)


def smooth_causal(frames, keypoints, window: int = 8, max_gap: int = 8, min_conf: float = 0.2,
                  fit: bool = True) -> DenseTrack:
    """Causal trailing window (line fit, or mean with ``fit=False``) over the bridged track.

    Output exists only where a keypoint is measured: frame ``p`` uses nothing after ``p``, exactly
    what the live filter emits with no delay.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    dense_frames, rel, kp, values, measured = _dense(frames, keypoints, max_gap, min_conf)
    out = np.zeros_like(values)
    if len(values):
        K.smooth_trailing(values, measured, int(window), bool(fit), out, 0, len(values))
    return _finish(dense_frames, rel, kp, out, measured)


def smooth_one_euro(frames, keypoints, fps: float, min_cutoff: float = 1.0, beta: float = 0.05,
                    d_cutoff: float = 1.0, max_gap: int = 8, min_conf: float = 0.2) -> DenseTrack:
    """One-Euro filter (Casiez et al. 2012) per keypoint, run through bridged samples, restarted after
    longer gaps; output only where measured (causal, like :func:`smooth_causal`)."""
    if not fps > 0 or not min_cutoff > 0 or not d_cutoff > 0 or not beta >= 0:
        raise ValueError(f"need fps, min_cutoff, d_cutoff > 0 and beta >= 0, got {fps}, {min_cutoff}, "
                         f"{d_cutoff}, {beta}")
    dense_frames, rel, kp, values, measured = _dense(frames, keypoints, max_gap, min_conf)
    out = np.zeros_like(values)
    if len(values):
        K.one_euro_series(values, measured, 1.0 / float(fps), float(min_cutoff), float(beta), float(d_cutoff),
                          out)
    return _finish(dense_frames, rel, kp, out, measured)


def filter_track(frames, keypoints, cfg, fps: float) -> DenseTrack:
    """The smoother ``cfg.smoother`` of a :class:`~edge.config.FilteringConfig` on one track.

    ``"none"`` bridges gaps only (offline); the live stage with ``"none"`` passes measurements through.
    """
    common = dict(max_gap=cfg.max_gap, min_conf=cfg.min_confidence)
    if cfg.smoother == "none":
        return interpolate_gaps(frames, keypoints, **common)
    if cfg.smoother == "centered":
        return smooth_centered(frames, keypoints, window=cfg.window, **common)
    if cfg.smoother in ("causal", "causal_mean"):
        return smooth_causal(frames, keypoints, window=cfg.window, fit=cfg.smoother == "causal", **common)
    if cfg.smoother == "one_euro":
        return smooth_one_euro(frames, keypoints, fps, cfg.one_euro_min_cutoff, cfg.one_euro_beta,
                               cfg.one_euro_d_cutoff, **common)
    raise ValueError(f"unknown smoother {cfg.smoother!r}")
