"""Benchmark evaluation: the STG-NF/PoseLift protocol, frame-level metrics and the report.

``protocol`` turns window scores into per-frame scores (independent of file formats), ``metrics``
computes AUC-ROC, AUC-PR (both conventions) and EER in numpy, ``report`` writes JSON, CSV and plots,
``run`` ties them to datasets and models, ``cli`` is ``poselift-edge eval``. Names are resolved on
first use so that ``poselift-edge eval --help`` stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    **dict.fromkeys(("average_precision", "benchmark_metrics", "equal_error_rate", "precision_recall_curve",
                     "roc_auc", "roc_curve"), "edge.evaluation.metrics"),
    **dict.fromkeys(("ClipWindows", "FrameScores", "frame_scores", "gaussian_filter1d", "smooth_clip"),
                    "edge.evaluation.protocol"),
    **dict.fromkeys(("Evaluation", "evaluate", "read_test_set", "clip_windows"), "edge.evaluation.run"),
    "write_report": "edge.evaluation.report",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
