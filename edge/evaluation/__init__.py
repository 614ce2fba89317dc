"""Benchmark evaluation: the STG-NF/PoseLift protocol, frame-level metrics and the report.

``protocol`` turns window scores into per-frame scores (independent of file formats), ``metrics``
computes AUC-ROC, AUC-PR (both conventions) and EER in numpy, ``report`` writes JSON, CSV and plots,
``run`` ties them to datasets and models, ``cli`` is ``poselift-edge eval``.
"""

from edge.evaluation.metrics import (
    average_precision,
    benchmark_metrics,
    equal_error_rate,
    precision_recall_curve,
    roc_auc,
    roc_curve,
)
from edge.evaluation.protocol import ClipWindows, FrameScores, frame_scores, gaussian_filter1d, smooth_clip

__all__ = [
    "ClipWindows",
    "FrameScores",
    "average_precision",
    "benchmark_metrics",
    "equal_error_rate",
    "frame_scores",
    "gaussian_filter1d",
    "precision_recall_curve",
    "roc_auc",
    "roc_curve",
    "smooth_clip",
]
