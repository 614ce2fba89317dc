"""Pose filter: per-track gap bridging and smoothing (offline functions and the live stage).

``PoseFilter(cfg, fps).update(poses)`` is the live stage (one per camera); the offline functions take a
whole track ``(frames int64 (F,), keypoints float32 (F, 17, 3))`` and return a dense
:class:`DenseTrack`. Both apply the same rules, documented in :mod:`edge.filtering.offline`.
Names are resolved on first use so that importing the package does not import Numba.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DenseTrack": "edge.filtering.offline",
    "filter_track": "edge.filtering.offline",
    "interpolate_gaps": "edge.filtering.offline",
    "smooth_causal": "edge.filtering.offline",
    "smooth_centered": "edge.filtering.offline",
    "smooth_one_euro": "edge.filtering.offline",
    "PoseFilter": "edge.filtering.stage",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
