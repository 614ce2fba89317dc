"""A crowded synthetic scene for stress tests: people walking, detections with noise and misses.

Each person walks at a constant velocity (with a little jitter) across a 1920 x 1080 frame and wraps
around; every frame a detection is missed with some probability, boxes are perturbed, scores are
spread over 0.05..1 so both ByteTrack associations and the new-track threshold are exercised, and a
few false boxes appear. Deterministic for a seed.
"""

from __future__ import annotations

import numpy as np


def crowded_scene(n_people: int, n_frames: int, seed: int = 0, miss: float = 0.1,
                  false_per_frame: float = 2.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_frames`` frames of ``(boxes x1y1x2y2 (N, 4), scores (N,))``, about ``n_people`` boxes each."""
    rng = np.random.default_rng(seed)
    w, h = 1920.0, 1080.0
    size = rng.uniform(60, 200, n_people)
    aspect = rng.uniform(0.35, 0.5, n_people)
    pos = rng.uniform([0, 0], [w, h], (n_people, 2))
    vel = rng.normal(0, 4, (n_people, 2))
    quality = rng.uniform(0.3, 1.0, n_people)
    frames = []
    for _ in range(n_frames):
        pos = (pos + vel + rng.normal(0, 0.5, pos.shape)) % [w, h]
        keep = rng.random(n_people) > miss
        bh = size[keep] * rng.normal(1, 0.03, keep.sum())
        bw = bh * aspect[keep]
        c = pos[keep] + rng.normal(0, 2, (keep.sum(), 2))
        boxes = np.stack([c[:, 0] - bw / 2, c[:, 1] - bh / 2, c[:, 0] + bw / 2, c[:, 1] + bh / 2], 1)
        scores = np.clip(quality[keep] + rng.normal(0, 0.15, keep.sum()), 0.05, 1.0)
        n_false = rng.poisson(false_per_frame)
        fc = rng.uniform([0, 0], [w, h], (n_false, 2))
        fh = rng.uniform(40, 150, n_false)
        fb = np.stack([fc[:, 0], fc[:, 1], fc[:, 0] + 0.4 * fh, fc[:, 1] + fh], 1)
        fs = rng.uniform(0.1, 0.7, n_false)
        order = rng.permutation(len(scores) + n_false)
        frames.append((np.concatenate([boxes, fb])[order], np.concatenate([scores, fs])[order]))
    return frames
