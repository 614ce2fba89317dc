"""Threshold calibration: the counting kernel agrees with the engine; the budget is met, and is tight."""

from __future__ import annotations

import numpy as np
import pytest

from edge.alerting import AlertEngine, ZoneMap
from edge.alerting.calibrate import ScoreRecorder, count_alerts, find_threshold
from edge.config import AlertingConfig
from edge.records import AlertPhase, Scores, TrackEvent, TrackEventKind

FPS = 15.0
CFG = AlertingConfig(ema_alpha=0.3, min_duration_s=0.5, end_after_s=0.5, cooldown_s=3.0, update_interval_s=1.0)


def normal_streams(seed: int, n_frames: int = 3000, n_tracks: int = 5, cams=("cam1", "cam2")):
    """Scores records of synthetic normal data: noisy per-track scores with rare bursts, tracks that come
    and go (removed events), anchors wandering across the frame."""
    rng = np.random.default_rng(seed)
    records = []
    for cam in cams:
        base = rng.normal(3.0, 0.3, n_tracks)
        next_id = n_tracks
        ids = list(range(n_tracks))
        for f in range(n_frames):
            events = ()
            if f and f % 700 == 0:  # one track leaves, a new one comes
                gone = ids.pop(0)
                events = (TrackEvent(TrackEventKind.REMOVED, cam, gone, f),)
                ids.append(next_id)
                next_id += 1
            nll = []
            for tid in ids:
                x = base[tid % n_tracks] + rng.normal(0, 0.6)
                if rng.random() < 0.004:
                    x += rng.exponential(3.0)
                nll.append(x)
            burst = (f // 150) % 9 == 4
            if burst:
                nll[f % len(nll)] += 2.5
            anchors = rng.uniform(0, 1000, (len(ids), 2))
            records.append(Scores(cam, f, f / FPS, ids, [f - 12] * len(ids), anchors, nll, events))
    return records


def engine_count(records, threshold, zones=None):
    eng = AlertEngine(CFG, threshold, zones)
    n = sum(e.event == AlertPhase.NEW for r in records for e in eng.update(r))
    eng.finish(1e9)
    return n


@pytest.mark.parametrize("zoned", [False, True])
def test_kernel_counts_what_the_engine_raises(zoned):
    zones = {"cam1": [{"name": "left", "polygon": [(0, 0), (600, 0), (600, 1000), (0, 1000)]}]} if zoned else None
    records = normal_streams(1, n_frames=1500)
    rec = ScoreRecorder(ZoneMap(zones))
    for r in records:
        rec.add(r)
    series = rec.series()
    assert series.segments == 2 * (5 + 2)  # 5 tracks per camera plus two replacements
    for thr in (3.0, 3.5, 4.0, 4.5, 5.0, 6.0):
        assert count_alerts(series, CFG, thr) == engine_count(records, thr, zones)


def test_kernel_matches_engine_across_long_silences():
    cfg = CFG.model_copy(update={"lost_after_s": 4.0})
    records = [r for r in normal_streams(5, n_frames=1500, cams=("cam1",))
               if not (300 <= r.frame_index < 420 or 900 <= r.frame_index < 945)]  # 8 s and 3 s silences
    rec = ScoreRecorder(lost_after_s=cfg.lost_after_s)
    for r in records:
        rec.add(r)
    series = rec.series()
    # 5 tracks, split by the 8 s silence (not by the 3 s one), plus the two replacements at 700 and 1400
    assert series.segments == 5 + 5 + 2
    for thr in (3.5, 4.0, 4.5, 5.0):
        eng = AlertEngine(cfg, thr)
        n = sum(e.event == AlertPhase.NEW for r in records for e in eng.update(r))
        assert count_alerts(series, cfg, thr) == n


def test_streams_separate_reused_track_ids():
    rec = ScoreRecorder()
    for stream in ("video-a", "video-b"):
        for f in range(10):
            rec.add(Scores("cam1", f, f / FPS, [7], [f], [[0, 0]], [1.0]), stream=stream)
        rec.close(stream)
    assert rec.series().segments == 2


def test_threshold_meets_budget_and_is_the_lowest_nearby():
    records = normal_streams(2)
    rec = ScoreRecorder()
    for r in records:
        rec.add(r)
    series = rec.series()
    hours = 2 * 3000 / FPS / 3600  # two cameras, 3000 frames each
    budget = 20.0  # alerts per camera-hour: a handful of alerts in these 6.7 minutes
    cal = find_threshold(series, CFG, hours, budget)
    assert cal.alerts == engine_count(records, cal.threshold)
    assert cal.rate_per_hour <= budget and cal.alerts >= 1
    assert cal.rate_per_hour == pytest.approx(cal.alerts / hours)
    # exhaustive check over every candidate: the answer fits, the next candidate below does not, and no
    # lower candidate could have been chosen without a higher one exceeding the budget
    from edge.alerting import _kernels

    ema = _kernels.ema_series(series.nll, series.seg_start, CFG.ema_alpha)
    cand = np.unique(ema)[::-1]
    counts = np.array([count_alerts(series, CFG, c) for c in cand[:4000]])
    fits = counts <= budget * hours
    k = int(np.flatnonzero(cand == cal.threshold)[0])
    assert fits[k] and not fits[k + 1]
    first_bad = int(np.argmin(fits))
    assert k == first_bad - 1
    assert cal.evaluations < 400  # far fewer than the candidates


def test_tighter_budget_gives_higher_threshold():
    rec = ScoreRecorder()
    for r in normal_streams(4):
        rec.add(r)
    series = rec.series()
    hours = 2 * 3000 / FPS / 3600
    loose = find_threshold(series, CFG, hours, 30.0)
    tight = find_threshold(series, CFG, hours, 0.5)
    assert tight.threshold > loose.threshold
    assert tight.alerts == 0 and loose.alerts <= 30.0 * hours


def test_calibration_errors_are_plain():
    empty = ScoreRecorder().series()
    with pytest.raises(ValueError, match="no scored windows"):
        find_threshold(empty, CFG, 1.0, 0.5)
    with pytest.raises(ValueError, match="recorded time"):
        find_threshold(empty, CFG, 0.0, 0.5)
    with pytest.raises(ValueError, match="budget"):
        find_threshold(empty, CFG, 1.0, 0.0)


@pytest.mark.parametrize("warmup", [1, 15, 60])
def test_kernel_counts_what_the_engine_raises_with_a_warmup(warmup):
    cfg = CFG.model_copy(update={"warmup_windows": warmup})
    records = normal_streams(2, n_frames=1500)
    rec = ScoreRecorder()
    for r in records:
        rec.add(r)
    series = rec.series()
    counts = []
    for thr in (3.0, 3.5, 4.0, 4.5, 5.0):
        eng = AlertEngine(cfg, thr)
        n = sum(e.event == AlertPhase.NEW for r in records for e in eng.update(r))
        assert count_alerts(series, cfg, thr) == n
        counts.append(n)
    assert sum(counts) > 0
    if warmup == 60:  # a burst in the first 4 s of a track no longer fires
        assert sum(counts) < sum(count_alerts(series, CFG, thr) for thr in (3.0, 3.5, 4.0, 4.5, 5.0))
