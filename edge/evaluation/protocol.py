"""The benchmark protocol of STG-NF on PoseLift, from window scores to per-frame scores.

Independent of file formats: a clip is its length, its labels and its scored windows.

1. A window's normality (= -NLL, bits/dim) is written to the frame ``start + seg_len // 2``.
2. A frame takes the minimum over the windows centred on it, i.e. over persons (the least normal person
   wins); frames without a window are +inf.
3. Over the whole test set: +inf becomes the largest finite per-frame score (most normal), -inf the
   smallest.
4. Per clip: Gaussian filters with sigma 1, 2, 3, 4, 5, 6 applied in turn (``scipy.ndimage.
   gaussian_filter1d`` semantics: mode ``reflect``, truncate 4.0; implemented here in numpy).

A clip's length comes from its labels; a clip without any window counts, every frame filled.
Window centres at or beyond the clip length (poses past the end of the labels) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SIGMAS = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)


@dataclass
class ClipWindows:
    """Scored windows of one test clip. ``normality`` = -NLL per window."""

    name: str
    labels: np.ndarray  # (n_frames,) 0/1, 1 = anomalous (shoplifting)
    starts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # first frame per window
    normality: np.ndarray = field(default_factory=lambda: np.zeros(0))
    person_ids: np.ndarray | None = None

    @property
    def n_frames(self) -> int:
        return len(self.labels)


@dataclass
class FrameScores:
    """Per-frame results, all clips concatenated in order (``offsets[i]:offsets[i+1]`` is clip i)."""

    names: list[str]
    offsets: np.ndarray
    labels: np.ndarray  # uint8, 1 = anomalous
    with_inf: np.ndarray
    unsmoothed: np.ndarray
    smoothed: np.ndarray  # normality: low = anomalous
    fill_value: float
    dropped_centres: dict[str, int] = field(default_factory=dict)

    def clip(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    @property
    def anomaly(self) -> np.ndarray:
        """Anomaly score (higher = more anomalous): ``-smoothed``."""
        return -self.smoothed


def clip_frame_scores(n_frames: int, starts, normality, seg_len: int = 24,
                      name: str = "clip") -> tuple[np.ndarray, int]:
    """Steps 1-2 for one clip: ``(scores (n_frames,) float64 with +inf where unscored, dropped count)``."""
    starts = np.asarray(starts, dtype=np.int64).reshape(-1)
    normality = np.asarray(normality, dtype=np.float64).reshape(-1)
    if len(starts) != len(normality):
        raise ValueError(f"clip {name}: {len(starts)} window starts but {len(normality)} scores")
    if np.isnan(normality).any():
        raise ValueError(f"clip {name}: window {int(np.flatnonzero(np.isnan(normality))[0])} has a NaN score")
    centre = starts + seg_len // 2
    if (centre < 0).any():
        raise ValueError(f"clip {name}: negative window start {int(starts.min())}")
    keep = centre < n_frames
    out = np.full(int(n_frames), np.inf)
    np.minimum.at(out, centre[keep], normality[keep])
    return out, int((~keep).sum())


def gaussian_filter1d(x, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter1d(x, sigma)`` for 1-D float input, mode 'reflect' (d c b a | a b c d)."""
    x = np.asarray(x, dtype=np.float64)
    radius = int(truncate * float(sigma) + 0.5)
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 / (sigma * sigma) * taps ** 2)
    w /= w.sum()
    if len(x) == 0:
        return x.copy()
    # 'reflect' repeats the edge sample; tile the mirrored signal until the pad is covered.
    period = np.concatenate([x, x[::-1]])
    idx = np.arange(-radius, len(x) + radius)
    padded = period[np.mod(idx, 2 * len(x))]
    return np.convolve(padded, w[::-1], mode="valid")


def smooth_clip(scores, sigmas=SIGMAS) -> np.ndarray:
    out = np.asarray(scores, dtype=np.float64)
    for s in sigmas:
        out = gaussian_filter1d(out, s)
    return out


def frame_scores(clips: list[ClipWindows], seg_len: int = 24, sigmas=SIGMAS) -> FrameScores:
    """The whole protocol over a test set (steps 1-4)."""
    if not clips:
        raise ValueError("no test clips")
    raw, dropped = [], {}
    for c in clips:
        s, n_drop = clip_frame_scores(c.n_frames, c.starts, c.normality, seg_len, c.name)
        raw.append(s)
        if n_drop:
            dropped[c.name] = n_drop
    with_inf = np.concatenate(raw)
    finite = with_inf[np.isfinite(with_inf)]
    if finite.size == 0:
        raise ValueError("no window of any test clip has a finite score")
    hi, lo = float(finite.max()), float(finite.min())
    filled = with_inf.copy()
    filled[filled == np.inf] = hi
    filled[filled == -np.inf] = lo
    offsets = np.concatenate([[0], np.cumsum([c.n_frames for c in clips])]).astype(np.int64)
    smoothed = np.concatenate([smooth_clip(filled[offsets[i]:offsets[i + 1]], sigmas) for i in range(len(clips))])
    labels = np.concatenate([np.asarray(c.labels).reshape(-1) for c in clips]).astype(np.uint8)
    return FrameScores([c.name for c in clips], offsets, labels, with_inf, filled, smoothed, hi, dropped)
