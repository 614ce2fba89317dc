"""``poselift-edge calibrate-threshold``: pick the alert threshold of a model for a false-alarm budget.

Normal recordings (the Train split of a PoseLift-format or STG-NF JSON dataset, or the Test split's
all-normal videos) go through the live pipeline (pose filter, live windows, the model); the
threshold search of :mod:`edge.alerting.calibrate` then finds the lowest threshold whose alerts per
camera-hour fit the budget. The result goes into the model card (``threshold`` and
``threshold_calibration``), which the device reads when its configuration sets no threshold. The
alert count at the chosen threshold is checked once more with the alert engine itself.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

FRAMES_PER_BATCH = 256


def videos_sha256(videos: Sequence) -> str:
    """Content hash of pose videos (names, lengths, frame rates, every track's arrays), whatever the layout."""
    h = hashlib.sha256()
    for v in sorted(videos, key=lambda v: v.name):
        h.update(f"{v.name}|{v.n_frames}|{float(v.fps)!r}|".encode())
        for tid in sorted(v.tracks):
            tr = v.tracks[tid]
            h.update(f"{tid}|{len(tr.frames)}|".encode())
            for a, dt in ((tr.frames, np.int64), (tr.keypoints, np.float32), (tr.boxes, np.float32)):
                h.update(np.ascontiguousarray(a, dtype=dt).tobytes())
    return h.hexdigest()


def record_scores(videos: Sequence, scorer, config, recorder=None, camera_id=None, keep: list | None = None):
    """Run ``videos`` through filter, windows and ``scorer`` and record the scores per track.

    Returns ``(recorder, hours)``; each video is its own stream (track ids may repeat between videos).
    ``keep`` collects ``(video name, [Scores, ...])`` per video as well.
    """
    from edge.alerting.calibrate import ScoreRecorder
    from edge.alerting.zones import ZoneMap
    from edge.service.pipeline import ScoringPipeline
    from edge.sources.replay import default_camera_id, iter_poses

    camera_id = camera_id or default_camera_id
    recorder = recorder or ScoreRecorder(ZoneMap.from_cameras(config.cameras), config.alerting.lost_after_s)
    hours = 0.0
    for v in videos:
        pipe = ScoringPipeline(config, scorer, fps=float(v.fps))
        kept: list = []
        batch = []
        for rec in iter_poses(v, camera_id(v)):
            batch.append(rec)
            if len(batch) >= FRAMES_PER_BATCH:
                for s in pipe.score_batch(batch):
                    recorder.add(s, stream=v.name)
                    kept.append(s)
                batch = []
        for s in pipe.score_batch(batch) + pipe.drain():
            recorder.add(s, stream=v.name)
            kept.append(s)
        recorder.close(v.name)
        if keep is not None:
            keep.append((v.name, kept))
        hours += v.n_frames / float(v.fps) / 3600.0
    return recorder, hours


def count_engine_alerts(recorded, config, threshold: float) -> int:
    """``new`` events the alert engine raises on recorded Scores (one fresh engine state per video)."""
    from edge.alerting import AlertEngine, ZoneMap
    from edge.records import AlertPhase

    engine = AlertEngine(config.alerting, threshold, ZoneMap.from_cameras(config.cameras))
    n = 0
    for _, records in recorded:
        for s in records:
            n += sum(e.event == AlertPhase.NEW for e in engine.update(s))
        engine.finish(records[-1].t if records else 0.0)
    return n


def scoring_settings(config) -> dict:
    """The scoring settings that change which windows reach the alert engine (a threshold depends on them)."""
    return config.scoring.model_dump(include={"window_fill_gaps", "gate_in_view", "gate_border_px",
                                              "gate_min_confident"})


def select_videos(dataset, split: str) -> list:
    """``train``: every Train video; ``test-normal``: Test videos whose labels are all 0."""
    if split == "train":
        videos = list(dataset.train)
    elif split == "test-normal":
        videos = [v for v in dataset.test if v.labels is not None and not np.any(v.labels)]
    else:
        raise ValueError(f"unknown split {split!r} (train or test-normal)")
    if not videos:
        raise ValueError(f"{dataset.root}: no {split} videos to calibrate on")
    return videos


def calibrate_model(model_dir, data, *, split: str = "train", budget: float | None = None, config=None,
                    out=None, backend: str = "numpy", videos=None) -> dict:
    """Calibrate ``model_dir`` on ``data`` and write the threshold into the card of ``out``
    (default: ``model_dir`` itself). Returns the ``threshold_calibration`` record."""
    from edge.alerting.calibrate import find_threshold
    from edge.config import EdgeConfig
    from edge.datasets import read_dataset
    from edge.scoring import load_scorer

    config = config or EdgeConfig()
    if out is not None and Path(out).resolve() != Path(model_dir).resolve() and Path(out).is_dir() \
            and any(Path(out).iterdir()):
        raise ValueError(f"{out}: output directory exists and is not empty")
    budget = float(config.alerting.false_alarm_budget_per_hour if budget is None else budget)
    scorer = load_scorer(model_dir, backend=backend)
    if videos is None:
        videos = select_videos(read_dataset(data), split)
    recorded: list = []
    recorder, hours = record_scores(videos, scorer, config, keep=recorded)
    cal = find_threshold(recorder.series(), config.alerting, hours, budget)
    engine_alerts = count_engine_alerts(recorded, config, cal.threshold)
    if engine_alerts != cal.alerts:  # the search kernel must mirror the engine; refuse a threshold it got wrong
        raise RuntimeError(f"calibration kernel counted {cal.alerts} alerts at threshold {cal.threshold} but the "
                           f"alert engine raised {engine_alerts}")
    record = {
        **cal.to_dict(),
        "data": str(data),
        "split": split,
        "videos": len(videos),
        "data_sha256": videos_sha256(videos),
        "alerting": config.alerting.model_dump(exclude={"threshold"}),
        "filtering": config.filtering.model_dump(),
        "window_stride": config.scoring.window_stride,
        "scoring": scoring_settings(config),
        "calibrated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_threshold(out or model_dir, cal.threshold, record, source=model_dir)
    return record


def write_threshold(model_dir, threshold: float, record: dict, source=None) -> Path:
    """Set ``threshold`` and ``threshold_calibration`` in ``model_dir/card.json`` (copying the model from
    ``source`` first when that is another directory)."""
    from edge.scoring.model_io import read_card, write_card

    dst = Path(model_dir)
    src = Path(source) if source is not None else dst
    if src.resolve() != dst.resolve():
        import shutil

        if dst.exists() and any(dst.iterdir()):
            raise ValueError(f"{dst}: output directory exists and is not empty")
        shutil.copytree(src, dst, dirs_exist_ok=True)
    card = read_card(dst)
    write_card(dst, card.model_copy(update={"threshold": float(threshold), "threshold_calibration": record}))
    return dst / "card.json"


def register(sub) -> None:
    p = sub.add_parser("calibrate-threshold", help="pick an alert threshold for a false-alarm budget",
                       description="Run normal recordings through the live pipeline and write the lowest alert "
                                   "threshold whose alert rate (alerts per camera-hour) fits the budget into "
                                   "the model card.")
    p.add_argument("--model", required=True, help="model directory (card.json + model files)")
    p.add_argument("--data", required=True, help="dataset root (PoseLift Pickle_files layout or STG-NF JSON layout)")
    p.add_argument("--budget", type=float, default=None,
                   help="false alarms per camera-hour (default: alerting.false_alarm_budget_per_hour, 0.5)")
    p.add_argument("--split", choices=("train", "test-normal"), default="train",
                   help="normal data to use: the Train split, or the all-normal Test videos")
    p.add_argument("--out", default=None, help="write the calibrated model here (default: update --model in place)")
    p.add_argument("--config", default=None,
                   help="device configuration: its alerting, filtering and scoring settings are used, and the zones "
                        "of cameras named cam<N> apply to the videos of PoseLift camera N")
    p.add_argument("--backend", default="numpy", help="scorer backend (numpy or onnxruntime)")
    p.set_defaults(func=run)


def run(args) -> int:
    from edge.config import ConfigError, load_config

    if args.budget is not None and not args.budget > 0:
        print(f"calibrate-threshold: --budget must be positive, got {args.budget}", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"calibrate-threshold: {exc}", file=sys.stderr)
        return 2
    try:
        rec = calibrate_model(args.model, args.data, split=args.split, budget=args.budget, config=config,
                              out=args.out, backend=args.backend)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"calibrate-threshold: {exc}", file=sys.stderr)
        return 2
    print(f"threshold {rec['threshold']:.6f} bits/dim: {rec['alerts']} alerts in {rec['hours']:.3f} camera-hours "
          f"= {rec['rate_per_hour']:.3f}/h (budget {rec['budget_per_hour']}/h; {rec['windows']} windows, "
          f"{rec['tracks']} tracks, {rec['videos']} videos)")
    print(f"written to {Path(args.out or args.model) / 'card.json'}")
    print(json.dumps({k: rec[k] for k in ("threshold", "rate_per_hour", "data_sha256")}))
    return 0
