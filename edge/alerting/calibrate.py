"""Alert threshold calibration: the lowest threshold whose false-alarm rate on normal data fits a budget.

Normal recordings are run through the live pipeline once; their window scores are recorded per track
(:class:`ScoreRecorder`). The smoothing does not depend on the threshold, so each candidate threshold
only replays the alert state machine over the recorded series (a Numba kernel that mirrors
:class:`~edge.alerting.engine.AlertEngine` and counts ``new`` events).

The rate is alerts per camera-hour: alerts divided by the recorded hours (frames / fps, summed over
the videos of every camera). Candidates are the distinct smoothed scores; with a strict ``>`` test a
candidate alerts only on scores above it. The count is nearly, but not strictly, monotone in the
threshold (hysteresis and cooldown can merge or split alerts), so the search walks down from the top:
a coarse geometric grid finds the first candidate over budget, and the gap above it is scanned
candidate by candidate. The result is the lowest candidate such that it and every grid point and
scanned candidate above it fit the budget.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import asdict, dataclass

import numpy as np

from edge.alerting.engine import TIME_EPS, release_level
from edge.alerting.zones import ZoneMap
from edge.config import AlertingConfig
from edge.records import Scores, TrackEventKind

_COARSE_POINTS = 96
_LINEAR_SCAN = 64


@dataclass(frozen=True)
class ScoreSeries:
    """Recorded scores, one segment per track lifetime; ``seg_start`` has one entry more than segments."""

    t: np.ndarray
    nll: np.ndarray
    allowed: np.ndarray
    seg_start: np.ndarray

    def __len__(self) -> int:
        return len(self.t)

    @property
    def segments(self) -> int:
        return len(self.seg_start) - 1


class ScoreRecorder:
    """Collects the pipeline's Scores records of normal data into per-track series.

    ``stream`` separates recordings whose track ids may repeat (e.g. one per video). Non-finite scores
    are left out, as the alert engine ignores them; a ``removed`` event closes the track's segment, and
    so does a silence longer than ``lost_after_s`` (the engine's ``AlertingConfig.lost_after_s``).
    """

    def __init__(self, zones: ZoneMap | None = None, lost_after_s: float = math.inf):
        self.zones = zones or ZoneMap()
        self.lost_after_s = float(lost_after_s)
        self._open: dict[tuple, int] = {}
        self._segments: list[tuple[list[float], list[float], list[bool]]] = []

    def add(self, scores: Scores, stream: Hashable = 0) -> None:
        if len(scores):
            allowed, _ = self.zones.locate(scores.camera_id, scores.anchors)
            t = float(scores.t)
            for i in range(len(scores)):
                x = float(scores.nll[i])
                if not math.isfinite(x):
                    continue
                key = (stream, scores.camera_id, int(scores.track_ids[i]))
                seg = self._open.get(key)
                if seg is not None and t - self._segments[seg][0][-1] > self.lost_after_s:
                    seg = None  # the engine forgets a track silent this long: a fresh segment
                if seg is None:
                    seg = self._open[key] = len(self._segments)
                    self._segments.append(([], [], []))
                ts, xs, al = self._segments[seg]
                ts.append(t)
                xs.append(x)
                al.append(bool(allowed[i]))
        for ev in scores.events:
            if ev.kind == TrackEventKind.REMOVED:
                self._open.pop((stream, ev.camera_id, int(ev.track_id)), None)

    def close(self, stream: Hashable) -> None:
        """End every track of a stream (the recording ended)."""
        for key in [k for k in self._open if k[0] == stream]:
            del self._open[key]

    def series(self) -> ScoreSeries:
        segs = [s for s in self._segments if s[0]]
        lengths = np.array([len(s[0]) for s in segs], dtype=np.int64)
        seg_start = np.zeros(len(segs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=seg_start[1:])

        def cat(k, dtype):
            return np.ascontiguousarray(np.concatenate([np.asarray(s[k], dtype=dtype) for s in segs])
                                        if segs else np.zeros(0, dtype=dtype))
        return ScoreSeries(cat(0, np.float64), cat(1, np.float64), cat(2, np.bool_), seg_start)


@dataclass(frozen=True)
class Calibration:
    """The chosen threshold and what it was measured on."""

    threshold: float
    budget_per_hour: float
    alerts: int
    hours: float
    rate_per_hour: float
    windows: int
    tracks: int
    evaluations: int

    def to_dict(self) -> dict:
        return asdict(self)


def count_alerts(series: ScoreSeries, cfg: AlertingConfig, threshold: float) -> int:
    """Alerts the engine would raise on ``series`` with ``threshold`` (a Numba kernel)."""
    from edge.alerting import _kernels

    ema = _kernels.ema_series(series.nll, series.seg_start, float(cfg.ema_alpha))
    return _count(series, ema, cfg, threshold)


def _count(series: ScoreSeries, ema: np.ndarray, cfg: AlertingConfig, threshold: float) -> int:
    from edge.alerting import _kernels

    return int(_kernels.count_alerts(series.t, ema, series.allowed, series.seg_start, float(threshold),
                                     release_level(float(threshold), cfg.release_ratio),
                                     float(cfg.min_duration_s), float(cfg.end_after_s), float(cfg.cooldown_s),
                                     TIME_EPS, int(cfg.warmup_windows)))


def find_threshold(series: ScoreSeries, cfg: AlertingConfig, hours: float, budget_per_hour: float) -> Calibration:
    """The lowest threshold whose alert rate on ``series`` (recorded over ``hours``) fits the budget."""
    from edge.alerting import _kernels

    if not hours > 0:
        raise ValueError(f"calibration needs recorded time; got {hours} hours")
    if not budget_per_hour > 0:
        raise ValueError(f"false-alarm budget must be positive, got {budget_per_hour}")
    ema = _kernels.ema_series(series.nll, series.seg_start, float(cfg.ema_alpha))
    cand = np.unique(ema[series.allowed])[::-1]
    if len(cand) == 0:
        raise ValueError("no scored windows to calibrate on (are the tracks at least seg_len + 1 frames long, "
                         "and inside the alert zones?)")
    limit = budget_per_hour * hours
    evaluations = 0

    def over(i: int) -> bool:
        nonlocal evaluations
        evaluations += 1
        return _count(series, ema, cfg, cand[i]) > limit

    # cand[0] is the largest smoothed score: nothing lies above it, so it always fits
    grid = np.unique(np.round(np.geomspace(1, len(cand), _COARSE_POINTS)).astype(np.int64) - 1)
    ok, bad = 0, None
    for i in grid[1:]:
        if over(int(i)):
            bad = int(i)
            break
        ok = int(i)
    if bad is not None:
        ok = _scan(over, ok, bad)
    thr = float(cand[ok])
    alerts = _count(series, ema, cfg, thr)
    return Calibration(threshold=thr, budget_per_hour=float(budget_per_hour), alerts=alerts, hours=float(hours),
                       rate_per_hour=alerts / hours, windows=len(series), tracks=series.segments,
                       evaluations=evaluations + 1)


def _scan(over, ok: int, bad: int) -> int:
    """Candidates ``ok`` (fits) < ... < ``bad`` (over budget): the last one before the first over budget."""
    while bad - ok > _LINEAR_SCAN:
        step = max(1, (bad - ok) // _LINEAR_SCAN)
        for i in range(ok + step, bad, step):
            if over(i):
                bad = i
                break
            ok = i
    for i in range(ok + 1, bad):
        if over(i):
            return i - 1
    return bad - 1
