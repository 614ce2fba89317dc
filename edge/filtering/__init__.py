"""Pose filter: per-track gap bridging and smoothing (offline functions and the live stage).

``PoseFilter(cfg, fps).update(poses)`` is the live stage (one per camera); the offline functions take a
whole track ``(frames int64 (F,), keypoints float32 (F, 17, 3))`` and return a dense
:class:`DenseTrack`. Both apply the same rules, documented in :mod:`edge.filtering.offline`.
"""

from edge.filtering.offline import (
    DenseTrack,
    filter_track,
    interpolate_gaps,
    smooth_causal,
    smooth_centered,
    smooth_one_euro,
)
from edge.filtering.stage import PoseFilter

__all__ = [
    "DenseTrack",
    "PoseFilter",
    "filter_track",
    "interpolate_gaps",
    "smooth_causal",
    "smooth_centered",
    "smooth_one_euro",
]
