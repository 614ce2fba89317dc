"""Frame-level metrics in numpy, with scikit-learn's conventions for ties.

All take ``positive`` (bool/0-1 per frame) and ``score`` (higher = more likely positive). Equal scores
form one threshold step, so tied positives and negatives count half in the ROC area (as
``sklearn.metrics.roc_auc_score``) and one precision value in the average precision (as
``average_precision_score``). With only one class present a metric is undefined and returns NaN.
"""

from __future__ import annotations

import numpy as np


def _counts(positive, score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative true/false positives at each distinct threshold, highest first, and the thresholds."""
    y = np.asarray(positive).reshape(-1).astype(bool)
    s = np.asarray(score, dtype=np.float64).reshape(-1)
    if len(y) != len(s):
        raise ValueError(f"{len(y)} labels but {len(s)} scores")
    if not np.isfinite(s).all():
        raise ValueError(f"scores must be finite ({int((~np.isfinite(s)).sum())} are not)")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    ends = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1] if len(s) else np.zeros(0, dtype=np.int64)
    tps = np.cumsum(y)[ends].astype(np.float64)
    fps = (ends + 1) - tps
    return tps, fps, s[ends]


def roc_curve(positive, score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` at every distinct threshold, starting at (0, 0) with threshold +inf."""
    tps, fps, thr = _counts(positive, score)
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    with np.errstate(invalid="ignore", divide="ignore"):
        fpr = fps / fps[-1] if fps[-1] > 0 else np.full_like(fps, np.nan)
        tpr = tps / tps[-1] if tps[-1] > 0 else np.full_like(tps, np.nan)
    return fpr, tpr, np.r_[np.inf, thr]


def roc_auc(positive, score) -> float:
    fpr, tpr, _ = roc_curve(positive, score)
    if np.isnan(fpr).any() or np.isnan(tpr).any():
        return float("nan")
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def precision_recall_curve(positive, score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(precision, recall, thresholds)`` per distinct threshold, highest threshold first."""
    tps, fps, thr = _counts(positive, score)
    precision = tps / (tps + fps)
    recall = tps / tps[-1] if len(tps) and tps[-1] > 0 else np.full_like(tps, np.nan)
    return precision, recall, thr


def average_precision(positive, score) -> float:
    """Area under the step PR curve: sum over thresholds of (recall gain) x precision."""
    precision, recall, _ = precision_recall_curve(positive, score)
    if len(recall) == 0 or np.isnan(recall).any():
        return float("nan")
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def equal_error_rate(positive, score) -> float:
    """False-positive rate at the ROC point where |FNR - FPR| is smallest (first such point)."""
    fpr, tpr, _ = roc_curve(positive, score)
    if np.isnan(fpr).any() or np.isnan(tpr).any():
        return float("nan")
    return float(fpr[np.argmin(np.abs((1.0 - tpr) - fpr))])


def benchmark_metrics(anomalous, normality) -> dict[str, float]:
    """The benchmark table's metrics from per-frame labels (1 = shoplifting) and normality scores.

    ``auc_pr_normal_positive``: normal frames are the positive class of the normality score (the
    reference inverts the labels; the paper's 84.06 % convention). ``auc_pr_anomaly_positive``:
    shoplifting is the positive class of the anomaly score (Shopformer's 44.49 % convention).
    """
    a = np.asarray(anomalous).reshape(-1).astype(bool)
    s = np.asarray(normality, dtype=np.float64).reshape(-1)
    return {
        "auc_roc": roc_auc(a, -s),
        "auc_pr_normal_positive": average_precision(~a, s),
        "auc_pr_anomaly_positive": average_precision(a, -s),
        "eer": equal_error_rate(a, -s),
        "n_frames": int(len(a)),
        "n_anomalous": int(a.sum()),
        "anomaly_rate": float(a.mean()) if len(a) else float("nan"),
    }
