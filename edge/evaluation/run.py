"""Evaluate a model on a test set: read, (optionally filter), cut windows, score, apply the protocol."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.evaluation.metrics import benchmark_metrics
from edge.evaluation.protocol import ClipWindows, FrameScores, frame_scores
from edge.windowing.stgnf import DEFAULT_DIVISORS, WINDOW_MEAN

log = logging.getLogger(__name__)

SCORE_BATCH = 4096


@dataclass
class Evaluation:
    frames: FrameScores
    metrics: dict
    info: dict = field(default_factory=dict)


def read_test_set(data) -> list:
    """Test videos of a dataset in the PoseLift layout or the STG-NF JSON layout (detected)."""
    from edge.datasets import stgnf_json
    from edge.datasets.poselift import read_poselift_dataset

    root = Path(data)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such dataset directory")
    ds = stgnf_json.read_stgnf_dataset(root) if stgnf_json.is_stgnf_root(root) else read_poselift_dataset(root)
    if not ds.test:
        raise ValueError(f"{root}: the dataset has no test videos")
    return ds.test


def clip_windows(videos, score_fn, divisors=DEFAULT_DIVISORS, seg_len: int = 24, filter_cfg=None,
                 batch: int = SCORE_BATCH, normalization: str = WINDOW_MEAN) -> tuple[list[ClipWindows], dict]:
    """Cut every test track into stride-1 windows, score them, and group the scores per clip.

    ``score_fn(x (N, 2, T, 18) float32) -> NLL (N,)``. ``filter_cfg`` (a FilteringConfig) runs the pose
    filter on each track first; None evaluates the poses as given, as the benchmark does.
    """
    from edge.windowing.stgnf import model_input, track_windows

    clips, n_windows, skipped = [], 0, []
    for v in videos:
        if v.labels is None:
            skipped.append(v.name)
            continue
        starts, pids, parts = [], [], []
        for pid, tr in sorted(v.tracks.items()):
            frames, kp = tr.frames, tr.keypoints
            if filter_cfg is not None:
                from edge.filtering import filter_track
                frames, kp = filter_track(frames, kp, filter_cfg, v.fps).poses()
            st, win = track_windows(frames, kp, seg_len=seg_len, stride=1)
            if len(st):
                starts.append(st)
                pids.append(np.full(len(st), pid, np.int64))
                parts.append(win)
        if parts:
            x = model_input(np.concatenate(parts), divisors, method=normalization)
            nll = np.concatenate([np.asarray(score_fn(x[i:i + batch]), dtype=np.float32).reshape(-1)
                                  for i in range(0, len(x), batch)])
            if len(nll) != len(x):
                raise ValueError(f"clip {v.name}: the scorer returned {len(nll)} scores for {len(x)} windows")
            st, pi = np.concatenate(starts), np.concatenate(pids)
        else:
            nll, st, pi = np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
        n_windows += len(nll)
        clips.append(ClipWindows(v.name, np.asarray(v.labels, np.uint8), st, -nll.astype(np.float64), pi))
    if skipped:
        warnings.warn(f"{len(skipped)} test videos have no labels and are left out: {', '.join(skipped[:10])}",
                      stacklevel=2)
    return clips, {"windows": n_windows, "unlabelled_videos_skipped": skipped}


def evaluate(data, model, divisors=None, filter_cfg=None, backend: str = "numpy") -> Evaluation:
    """The benchmark on ``data``'s test split with the model directory ``model``."""
    from edge.scoring import load_scorer

    t0 = time.perf_counter()
    scorer = load_scorer(model, backend=backend)
    card = getattr(scorer, "card", None)
    seg_len = int(getattr(card, "seg_len", 24) or 24)
    if divisors is None:
        divisors = tuple(getattr(card, "divisors", None) or DEFAULT_DIVISORS)
    videos = read_test_set(data)
    normalization = getattr(card, "window_normalization", WINDOW_MEAN)
    clips, info = clip_windows(videos, scorer.score, divisors, seg_len, filter_cfg, normalization=normalization)
    if not clips:
        raise ValueError(f"{data}: no labelled test videos")
    fs = frame_scores(clips, seg_len)
    metrics = benchmark_metrics(fs.labels, fs.smoothed)
    info.update({"data": str(data), "model": str(model), "divisors": list(map(float, divisors)),
                 "normalization": normalization,
                 "seg_len": seg_len, "clips": len(clips),
                 "filter": None if filter_cfg is None else filter_cfg.model_dump(),
                 "seconds": round(time.perf_counter() - t0, 3)})
    return Evaluation(fs, metrics, info)
