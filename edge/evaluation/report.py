"""Evaluation report: ``metrics.json``, ``frame_scores.csv`` and PNG plots.

Plots need matplotlib (the ``report`` extra), imported only here and only when plotting, with the Agg
backend. Without it the JSON and CSV are still written and the report says the plots were skipped.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from edge.evaluation import metrics as M
from edge.evaluation.protocol import FrameScores

CLIPS_PER_PAGE = 8


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        return _clean(v.item())
    return v


def write_report(out_dir, fs: FrameScores, metrics: dict, info: dict | None = None, plots: bool = True) -> dict:
    """Write the report into ``out_dir``; returns ``{"files": [...], "plots_skipped": reason | None}``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    clips = []
    for i, name in enumerate(fs.names):
        sl = fs.clip(i)
        lab = fs.labels[sl]
        clips.append({"clip": name, "frames": int(sl.stop - sl.start), "anomalous_frames": int(lab.sum()),
                      "scored_frames": int(np.isfinite(fs.with_inf[sl]).sum()),
                      "dropped_window_centres": int(fs.dropped_centres.get(name, 0))})
    doc = {
        "metrics": metrics,
        "conventions": {
            "auc_roc": "shoplifting frames positive, anomaly score = -normality (NLL side)",
            "auc_pr_normal_positive": "normal frames positive, normality score (the reference's inverted "
                                      "labels; the paper's AUC-PR convention)",
            "auc_pr_anomaly_positive": "shoplifting frames positive, anomaly score (Shopformer's convention)",
            "eer": "false-positive rate where |FNR - FPR| is smallest",
        },
        "protocol": {"window_score_frame": "start + seg_len // 2", "per_frame": "minimum over persons",
                     "unscored_frames": "largest finite per-frame score of the test set",
                     "fill_value": fs.fill_value, "smoothing_sigmas": [1, 2, 3, 4, 5, 6],
                     "gaussian": "mode reflect, truncate 4.0, per clip"},
        "info": info or {},
        "clips": clips,
    }
    (out / "metrics.json").write_text(json.dumps(_clean(doc), indent=2) + "\n")
    files.append(out / "metrics.json")
    with open(out / "frame_scores.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["clip", "frame", "score", "label"])
        for i, name in enumerate(fs.names):
            sl = fs.clip(i)
            for f, (s, y) in enumerate(zip(fs.smoothed[sl].tolist(), fs.labels[sl].tolist())):
                w.writerow([name, f, repr(s), y])
    files.append(out / "frame_scores.csv")
    skipped = None
    if plots:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt  # noqa: F401
        except ImportError as exc:
            skipped = f"matplotlib is not installed ({exc}); install the 'report' extra for PNG plots"
        else:
            files += _plots(out, fs, metrics)
    return {"files": [str(f) for f in files], "plots_skipped": skipped}


def _plots(out: Path, fs: FrameScores, metrics: dict) -> list[Path]:
    import matplotlib.pyplot as plt

    files = []
    anomalous = fs.labels.astype(bool)
    both = anomalous.any() and (~anomalous).any()
    fig, ax = plt.subplots(figsize=(5, 5))
    if both:
        fpr, tpr, _ = M.roc_curve(anomalous, fs.anomaly)
        ax.plot(fpr, tpr, label=f"AUC-ROC {metrics['auc_roc']:.4f}")
        eer = metrics["eer"]
        ax.plot([eer], [1 - eer], "o", label=f"EER {eer:.4f}")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC (shoplifting positive)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "roc.png", dpi=110)
    plt.close(fig)
    files.append(out / "roc.png")

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, pos, score, key, title in (
            (axes[0], ~anomalous, fs.smoothed, "auc_pr_normal_positive", "PR, normal positive (paper)"),
            (axes[1], anomalous, fs.anomaly, "auc_pr_anomaly_positive", "PR, shoplifting positive (Shopformer)")):
        if both:
            p, r, _ = M.precision_recall_curve(pos, score)
            ax.step(np.r_[0.0, r], np.r_[p[0], p], where="pre", label=f"AP {metrics[key]:.4f}")
            ax.axhline(pos.mean(), ls=":", color="grey", label=f"base rate {pos.mean():.3f}")
            ax.legend(loc="lower left")
        ax.set(xlabel="recall", ylabel="precision", title=title, xlim=(0, 1), ylim=(0, 1.02))
    fig.tight_layout()
    fig.savefig(out / "pr.png", dpi=110)
    plt.close(fig)
    files.append(out / "pr.png")

    n = len(fs.names)
    for page, start in enumerate(range(0, n, CLIPS_PER_PAGE), 1):
        idx = list(range(start, min(n, start + CLIPS_PER_PAGE)))
        fig, axes = plt.subplots(len(idx), 1, figsize=(10, 1.8 * len(idx)), squeeze=False)
        for ax, i in zip(axes[:, 0], idx):
            sl = fs.clip(i)
            lab = fs.labels[sl]
            frames = np.arange(len(lab))
            for a, b in _intervals(lab):
                ax.axvspan(a - 0.5, b - 0.5, color="tab:red", alpha=0.2, lw=0)
            ax.plot(frames, -fs.unsmoothed[sl], color="tab:grey", lw=0.6, alpha=0.6)
            ax.plot(frames, fs.anomaly[sl], color="tab:blue", lw=1.2)
            ax.set_ylabel("NLL")
            ax.set_title(fs.names[i], fontsize=9, loc="left")
            ax.set_xlim(-0.5, max(len(lab) - 0.5, 0.5))
        axes[-1, 0].set_xlabel("frame (shaded: labelled shoplifting; grey: unsmoothed)")
        fig.tight_layout()
        path = out / f"timelines_{page:02d}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        files.append(path)
    return files


def _intervals(labels: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` runs of label 1."""
    d = np.diff(np.r_[0, labels.astype(np.int8), 0])
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))
