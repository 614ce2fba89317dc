"""What a real detector + tracker + pose estimator does to a perfect projected skeleton.

Jitter scaled by the person's size (white plus a slow drift), confidences that depend on the joint and
on whether the face is turned away, dropped keypoints (a low-confidence guess somewhere near the true
spot), the lower body hidden by a shelf (low confidence, hallucinated legs), short left/right swaps,
missed frames (mostly single, sometimes bursts), and boxes fitted around the detected keypoints.
Everything is vectorised over the frames of one person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.simulate.camera import Camera

# per COCO-17 joint: jitter factor, base confidence, drop probability per frame
_JIT = np.array([0.6, 0.6, 0.6, 0.7, 0.7, 0.8, 0.8, 1.0, 1.0, 1.4, 1.4, 1.0, 1.0, 1.1, 1.1, 1.3, 1.3])
_CONF = np.array([0.90, 0.90, 0.90, 0.80, 0.80, 0.88, 0.88, 0.82, 0.82, 0.72, 0.72, 0.80, 0.80, 0.78, 0.78,
                  0.72, 0.72])
_DROP = np.array([0.01] * 5 + [0.008] * 2 + [0.02] * 2 + [0.04] * 2 + [0.01] * 2 + [0.02] * 2 + [0.035] * 2)
_FACE = np.arange(5)
_LOWER = np.array([13, 14, 15, 16])
_SWAPS = (np.array([[5, 6], [7, 8], [9, 10]]), np.array([[11, 12], [13, 14], [15, 16]]))


@dataclass(frozen=True)
class NoiseConfig:
    """Strength of each imperfection (1.0 = the default detector)."""

    jitter: float = 1.0
    drops: float = 1.0
    missed: float = 1.0
    swaps: float = 1.0


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], rho: float) -> np.ndarray:
    """Unit-variance AR(1) noise along axis 0."""
    e = rng.standard_normal(shape)
    out = np.empty(shape)
    out[0] = e[0]
    s = np.sqrt(1 - rho * rho)
    for t in range(1, shape[0]):
        out[t] = rho * out[t - 1] + s * e[t]
    return out


def _missed_frames(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """True where the detector misses the person: single frames, short bursts, rare long gaps."""
    miss = rng.random(n) < 0.012 * scale
    starts = np.flatnonzero(rng.random(n) < 0.004 * scale)
    for s in starts:
        miss[s: s + int(rng.integers(2, 5))] = True
    for s in np.flatnonzero(rng.random(n) < 0.0006 * scale):
        miss[s: s + int(rng.integers(6, 20))] = True
    return miss


def apply_detector(rng: np.random.Generator, joints: np.ndarray, cam: Camera, occluded: np.ndarray,
                   cfg: NoiseConfig = NoiseConfig(), head_height: float = 0.13):
    """World joints ``(T, 17, 3)`` -> keypoints ``(T, 17, 3)`` pixels+confidence, boxes ``(T, 4)``, and
    ``present (T,)`` (frames where the person is detected at all)."""
    T = len(joints)
    uv, depth = cam.project(joints)
    W, H = cam.size
    top = uv[:, :, 1].min(1)
    size = np.maximum(uv[:, :, 1].max(1) - top, 20.0)  # person height in pixels (no crown)
    sig = size[:, None] * _JIT[None] * cfg.jitter
    kp = uv + 0.006 * sig[..., None] * rng.standard_normal((T, 17, 2))
    kp += 0.007 * sig[..., None] * _ar1(rng, (T, 17, 2), 0.85)
    conf = np.clip(_CONF[None] + 0.07 * rng.standard_normal((T, 17)), 0.05, 1.0)

    # face turned away from the camera: face points are guesses
    ears = 0.5 * (joints[:, 3] + joints[:, 4])
    face_dir = joints[:, 0] - ears
    to_cam = np.array([0.0, 0.0, cam.height]) - ears
    cosf = np.sum(face_dir * to_cam, 1) / (np.linalg.norm(face_dir, axis=1) * np.linalg.norm(to_cam, axis=1) + 1e-9)
    away = cosf < -0.2
    conf[np.ix_(away, _FACE[:3])] *= 0.45
    if away.any():
        kp[np.ix_(away, _FACE)] += (0.02 * size[away, None, None]
                                    * rng.standard_normal((int(away.sum()), len(_FACE), 2)))

    # lower body behind a shelf: the estimator hallucinates legs with low confidence
    if occluded.any():
        drift = 0.05 * size[:, None, None] * _ar1(rng, (T, len(_LOWER), 2), 0.95)
        occ = np.flatnonzero(occluded)
        kp[np.ix_(occ, _LOWER)] += drift[occ]
        conf[np.ix_(occ, _LOWER)] = rng.uniform(0.05, 0.35, (len(occ), len(_LOWER)))

    # dropped keypoints
    drop = rng.random((T, 17)) < _DROP[None] * cfg.drops
    if drop.any():
        kp[drop] += 0.12 * size[np.nonzero(drop)[0], None] * rng.standard_normal((int(drop.sum()), 2))
        conf[drop] = rng.uniform(0.01, 0.2, int(drop.sum()))

    # short left/right confusions
    for pairs in _SWAPS:
        starts = np.flatnonzero(rng.random(T) < 0.003 * cfg.swaps)
        for s in starts:
            sl = slice(s, s + int(rng.integers(1, 4)))
            a = kp[sl]  # a view: the swap lands in kp
            a[:, pairs.ravel()] = a[:, pairs[:, ::-1].ravel()]

    inside = (uv[..., 0] >= 0) & (uv[..., 0] < W) & (uv[..., 1] >= 0) & (uv[..., 1] < H) & (depth > 0.3)
    present = (inside.mean(1) >= 0.8) & (size >= 60) & ~_missed_frames(rng, T, cfg.missed)
    clipped = (kp[..., 0] < 0) | (kp[..., 0] > W - 1) | (kp[..., 1] < 0) | (kp[..., 1] > H - 1)
    kp[..., 0] = np.clip(kp[..., 0], 0, W - 1)
    kp[..., 1] = np.clip(kp[..., 1], 0, H - 1)
    conf[clipped] *= 0.3

    # boxes around the confident keypoints, with the crown above the head and a little slack
    good = conf > 0.15
    good[~good.any(1)] = True
    bx = np.where(good, kp[..., 0], np.nan)
    by = np.where(good, kp[..., 1], np.nan)
    x1, x2 = np.nanmin(bx, 1), np.nanmax(bx, 1)
    y1, y2 = np.nanmin(by, 1), np.nanmax(by, 1)
    w = x2 - x1
    box = np.stack([x1 - 0.1 * w, y1 - head_height * size, x2 + 0.1 * w, y2 + 0.04 * size], 1)
    box += 0.012 * size[:, None] * rng.standard_normal((T, 4))
    box[:, [0, 2]] = np.clip(box[:, [0, 2]], 0, W - 1)
    box[:, [1, 3]] = np.clip(box[:, [1, 3]], 0, H - 1)
    out = np.concatenate([kp, conf[..., None]], -1).astype(np.float32)
    return out, box.astype(np.float32), present
