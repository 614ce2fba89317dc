"""STG-NF windows: COCO-17 -> 18 joints, per-track window cutting, per-window normalisation.

These follow the published STG-NF preprocessing exactly, so that scores and benchmark numbers are
comparable with the paper:

* 18 joints in the OpenPose order; the neck is the mean of the two shoulders (on x, y and confidence).
* A track's detections are sorted by frame; candidate ``i`` starts at *detection index* ``i * stride``
  and takes ``seg_len`` consecutive detections. There are ``ceil((F - seg_len) / stride)`` candidates,
  so the last possible window of a track is never produced and a track needs ``seg_len + 1``
  detections. A candidate is kept when at least ``seg_len - 2`` of its frames fall inside
  ``[f0, f0 + seg_len)``: up to two missing frames are tolerated, with no padding or interpolation.
* Normalisation per window (``window-std-y``): x / width divisor, y / height divisor, subtract the
  window means, divide both axes by the population std of y. The published models divide by 856 x 480
  whatever the video size; the divisors a model was trained with are recorded in its card.
* Training augmentation: identity plus a horizontal flip ``x -> -x`` of the pixels before
  normalisation (left/right joint labels are not swapped).

One departure is offered, and is what models trained here use (``detrended-std-y``): instead of the
window mean, subtract the straight line that best fits the body centre (the mean of the 18 joints)
over the window's frames, i.e. the person's steady drift through the view, then divide by the std of
the remaining y. The reference rule leaves that drift in: a person walking through the view then reads
as a stretched, unusual pose whose NLL depends on walking speed and direction, and walking outscores
concealment. Only the constant-velocity part is removed; stops, half steps and turns stay visible.

Arithmetic is float64; model inputs are float32.
"""

from __future__ import annotations

import numpy as np

# COCO-17 index for each of the 18 output joints; -1 is the neck (mean of the shoulders 5 and 6).
COCO17_TO_18 = (0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
OPENPOSE18_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)
DEFAULT_DIVISORS = (856.0, 480.0)
DEFAULT_SEG_LEN = 24
MAX_MISSING_FRAMES = 2
# A window whose y values are all equal (e.g. every keypoint at 0) would divide by zero; the std is
# floored so that such a window gets a finite, very large NLL instead of NaN.
MIN_STD = 1e-8
WINDOW_MEAN = "window-std-y"        # the published rule (imported models)
DETRENDED = "detrended-std-y"       # the drift through the view removed (models trained here)
NORMALIZATIONS = (WINDOW_MEAN, DETRENDED)

_SRC = np.array([i if i >= 0 else 0 for i in COCO17_TO_18], dtype=np.intp)
_NECK = COCO17_TO_18.index(-1)


def coco17_to_18(kp: np.ndarray) -> np.ndarray:
    """COCO-17 keypoints ``(..., 17, C)`` -> OpenPose-18 ``(..., 18, C)``, neck added.

    Computed in float64 and returned as float32, as the reference stores its 18-joint pixels (the
    normalisation then works in float64 on these float32 values; keeping that rounding step is what
    makes the windows bit-compatible)."""
    a = np.asarray(kp, dtype=np.float64)
    if a.ndim < 2 or a.shape[-2] != 17:
        raise ValueError(f"keypoints must be (..., 17, C) in COCO-17 order, got shape {a.shape}")
    out = a[..., _SRC, :]
    out[..., _NECK, :] = 0.5 * (a[..., 5, :] + a[..., 6, :])
    return out.astype(np.float32)


def _channels_last(pix: np.ndarray) -> np.ndarray:
    a = np.asarray(pix, dtype=np.float64)
    if a.ndim != 4:
        raise ValueError(f"windows must be (N, T, 18, C) or (N, C, T, 18), got shape {a.shape}")
    if a.shape[-1] in (2, 3) and a.shape[2] == 18:
        return a
    if a.shape[1] in (2, 3) and a.shape[3] == 18:
        return np.moveaxis(a, 1, -1)
    raise ValueError(f"windows must be (N, T, 18, C) or (N, C, T, 18) with C = 2 or 3, got shape {a.shape}")


def flip_x(pix: np.ndarray) -> np.ndarray:
    """Horizontal flip of pixel windows (``x -> -x``), the training augmentation; any layout of
    :func:`normalize_window`'s input. Returns float64 in the same layout."""
    a = np.array(pix, dtype=np.float64)
    if a.ndim == 4 and a.shape[-1] in (2, 3) and a.shape[2] == 18:
        a[..., 0] *= -1.0
    elif a.ndim == 4 and a.shape[1] in (2, 3) and a.shape[3] == 18:
        a[:, 0] *= -1.0
    else:
        raise ValueError(f"windows must be (N, T, 18, C) or (N, C, T, 18), got shape {a.shape}")
    return a


def check_normalization(method: str) -> str:
    if method not in NORMALIZATIONS:
        raise ValueError(f"unknown window normalisation {method!r}; expected one of {', '.join(NORMALIZATIONS)}")
    return method


def _drift(c: np.ndarray) -> np.ndarray:
    """Least-squares straight line through each row of ``c (N, T)``, evaluated at every frame."""
    t = c.shape[1]
    u = np.arange(t, dtype=np.float64) - 0.5 * (t - 1)
    slope = (c @ u) / max(float(u @ u), 1.0)
    return c.mean(axis=1, keepdims=True) + slope[:, None] * u[None, :]


def normalize_window(pix18: np.ndarray, divisors: tuple[float, float] = DEFAULT_DIVISORS,
                     *, keep_confidence: bool = False, method: str = WINDOW_MEAN) -> np.ndarray:
    """Normalise pixel windows ``(N, T, 18, C)`` or ``(N, C, T, 18)`` to the model input ``(N, 2, T, 18)``.

    ``method`` is :data:`WINDOW_MEAN` (the published rule) or :data:`DETRENDED` (see the module notes).
    With ``keep_confidence`` the confidence channel is passed through untouched (``(N, 3, T, 18)``,
    float64), which is what the reference keeps alongside; otherwise float32 x', y'.
    """
    check_normalization(method)
    dx, dy = float(divisors[0]), float(divisors[1])
    if not (dx > 0 and dy > 0):
        raise ValueError(f"divisors must be positive (width, height), got {divisors}")
    a = _channels_last(pix18)
    n, t = a.shape[0], a.shape[1]
    x = a[..., 0].reshape(n, -1) / dx
    y = a[..., 1].reshape(n, -1) / dy
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        bad = np.flatnonzero(~(np.isfinite(x).all(1) & np.isfinite(y).all(1)))
        raise ValueError(f"non-finite keypoint coordinates in window(s) {bad[:10].tolist()}")
    if method == DETRENDED:
        x = (x.reshape(n, t, 18) - _drift(x.reshape(n, t, 18).mean(axis=2))[:, :, None]).reshape(n, -1)
        y = (y.reshape(n, t, 18) - _drift(y.reshape(n, t, 18).mean(axis=2))[:, :, None]).reshape(n, -1)
        sigma = np.maximum(y.std(axis=1, keepdims=True), MIN_STD)
        x, y = x / sigma, y / sigma
    else:
        sigma = np.maximum(y.std(axis=1, keepdims=True), MIN_STD)
        x = (x - x.mean(axis=1, keepdims=True)) / sigma
        y = (y - y.mean(axis=1, keepdims=True)) / sigma
    chans = [x.reshape(n, t, 18), y.reshape(n, t, 18)]
    if keep_confidence:
        if a.shape[-1] != 3:
            raise ValueError("keep_confidence needs a confidence channel (C = 3)")
        chans.append(a[..., 2])
        return np.stack(chans, axis=1)
    return np.ascontiguousarray(np.stack(chans, axis=1), dtype=np.float32)


def window_starts(frames: np.ndarray, seg_len: int = DEFAULT_SEG_LEN, stride: int = 1) -> np.ndarray:
    """Detection indices where kept windows start, for a track's *sorted* frame numbers."""
    f = np.asarray(frames, dtype=np.int64).reshape(-1)
    if seg_len < 3 or stride < 1:
        raise ValueError(f"seg_len must be >= 3 and stride >= 1, got {seg_len}, {stride}")
    count = len(f) - seg_len
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    cand = np.arange(-(-count // stride), dtype=np.int64) * stride
    first = f[cand]
    # frames are sorted and unique, so the frames of a candidate inside [f0, f0 + L) are a prefix
    # of it; the (L - 2)-th of them decides
    inside = f[cand + seg_len - MAX_MISSING_FRAMES - 1] < first + seg_len
    return cand[inside]


def track_windows(frames: np.ndarray, keypoints: np.ndarray, seg_len: int = DEFAULT_SEG_LEN,
                  stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Cut one track into windows.

    ``frames (F,)`` frame numbers, ``keypoints (F, K, C)`` (any per-frame layout, e.g. COCO-17 pixels).
    Returns ``starts (n,)`` int64 first frame numbers and ``windows (n, seg_len, K, C)`` float64.
    Frames need not be sorted; duplicate frame numbers are an error.
    """
    f = np.asarray(frames, dtype=np.int64).reshape(-1)
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim < 2 or len(kp) != len(f):
        raise ValueError(f"{len(f)} frame numbers but keypoints of shape {kp.shape}")
    order = np.argsort(f, kind="stable")
    f, kp = f[order], kp[order]
    if len(f) > 1 and (np.diff(f) == 0).any():
        dup = f[1:][np.diff(f) == 0]
        raise ValueError(f"duplicate frame numbers in track: {dup[:10].tolist()}")
    idx = window_starts(f, seg_len, stride)
    if len(idx) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, seg_len, *kp.shape[1:]), dtype=np.float64)
    take = idx[:, None] + np.arange(seg_len)[None, :]
    return f[idx], kp[take]


def model_input(windows17: np.ndarray, divisors: tuple[float, float] = DEFAULT_DIVISORS,
                *, flip: bool = False, method: str = WINDOW_MEAN) -> np.ndarray:
    """COCO-17 pixel windows ``(n, T, 17, C)`` -> model input ``(n, 2, T, 18)`` float32."""
    pix = coco17_to_18(windows17)
    if flip:
        pix = flip_x(pix)
    return normalize_window(pix, divisors, method=method)


def training_windows(tracks, seg_len: int = DEFAULT_SEG_LEN, stride: int = 6,
                     divisors: tuple[float, float] = DEFAULT_DIVISORS, flip: bool = True,
                     method: str = WINDOW_MEAN) -> np.ndarray:
    """Training set from an iterable of ``(frames, keypoints17)`` tracks: all identity windows, then
    (with ``flip``) all flipped ones, the reference's (transform, window) order."""
    parts = [track_windows(f, k, seg_len, stride)[1] for f, k in tracks]
    parts = [p for p in parts if len(p)]
    if not parts:
        return np.zeros((0, 2, seg_len, 18), dtype=np.float32)
    w = np.concatenate(parts)
    out = [model_input(w, divisors, method=method)]
    if flip:
        out.append(model_input(w, divisors, flip=True, method=method))
    return np.concatenate(out)
