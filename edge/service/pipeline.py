"""The scoring pipeline of one device: poses -> pose filter -> live windows -> STG-NF -> alerts.

``ScoringPipeline.process(poses)`` takes one frame of one camera; ``process_batch([...])`` takes the
frames of several cameras (or several frames of one) and scores all their windows in one batch of at
most ``scoring.max_batch``. Each stage only sees records: the filter (one per camera) returns Poses,
the window builder Windows, the scorer fills Scores, the alert engine returns AlertEvents.

A camera whose frame index goes backwards (a replay starting its next video, a source restarted) is
treated as a new stream: its filter is flushed, and window state it still had is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from edge.alerting import AlertEngine, ZoneMap
from edge.config import EdgeConfig
from edge.filtering import PoseFilter
from edge.records import AlertEvent, AlertPhase, Poses, Scores, Windows
from edge.windowing.live import LiveWindows
from edge.windowing.stgnf import DEFAULT_DIVISORS, DEFAULT_SEG_LEN, WINDOW_MEAN


class PipelineError(RuntimeError):
    """The pipeline cannot run as configured (no threshold, a scorer that breaks its contract)."""


@dataclass
class PipelineStats:
    """Counters for health messages."""

    frames: int = 0
    windows_scored: int = 0
    score_calls: int = 0
    score_ms: float = 0.0
    alerts_new: int = 0
    alerts_update: int = 0
    alerts_end: int = 0
    camera_restarts: int = 0
    invalid_windows: int = 0  # dropped for non-finite coordinates
    gated_windows: int = 0  # not scored: the person not fully in view or mostly low-confidence keypoints
    out_of_order: int = 0  # detections dropped because their frame did not follow the track's last
    skipped_scores: int = 0  # non-finite scores the alert engine ignored
    live_tracks: int = 0  # tracks the window builder holds state for

    def as_dict(self) -> dict:
        d = asdict(self)
        d["score_ms_per_window"] = self.score_ms / self.windows_scored if self.windows_scored else 0.0
        return d


def resolve_threshold(config: EdgeConfig, scorer, threshold: float | None) -> float | None:
    """Explicit argument, else ``alerting.threshold``, else the model card's calibrated threshold."""
    if threshold is not None:
        return float(threshold)
    if config.alerting.threshold is not None:
        return float(config.alerting.threshold)
    card_thr = getattr(getattr(scorer, "card", None), "threshold", None)
    return None if card_thr is None else float(card_thr)


class ScoringPipeline:
    """Filter, windows, scorer and alert engine for every camera of a device.

    ``scorer`` has ``score(x (N, 2, T, 18) float32) -> (N,) NLL`` and a ``card`` (``seg_len``,
    ``divisors``, ``window_normalization``, ``threshold``). ``threshold`` overrides the configured and
    the calibrated one; without any, :meth:`score_batch` still works (calibration uses it) but
    :meth:`process` refuses.
    ``alert_id_key`` makes alert ids deterministic (see :class:`~edge.alerting.AlertEngine`).
    ``fps`` is used for cameras the configuration does not list. ``score_sink``, when given, sees every
    Scores record before the alert engine does (for monitoring; it must not keep the arrays' views).
    """

    def __init__(self, config: EdgeConfig, scorer, threshold: float | None = None,
                 alert_id_key: str | bytes | None = None, *, fps: float = 15.0,
                 score_sink: Callable[[Scores], None] | None = None):
        self.config = config
        self.scorer = scorer
        card = getattr(scorer, "card", None)
        self.seg_len = int(getattr(card, "seg_len", DEFAULT_SEG_LEN) or DEFAULT_SEG_LEN)
        divisors = tuple(getattr(card, "divisors", DEFAULT_DIVISORS) or DEFAULT_DIVISORS)
        normalization = getattr(card, "window_normalization", WINDOW_MEAN)
        self.threshold = resolve_threshold(config, scorer, threshold)
        self.zones = ZoneMap.from_cameras(config.cameras)
        self._fps = {c.id: float(c.fps) for c in config.cameras}
        self._default_fps = float(fps)
        self._filters: dict[str, PoseFilter] = {}
        self._last_frame: dict[str, int] = {}
        self._windows = LiveWindows(self.seg_len, config.scoring.window_stride, divisors,
                                    min_confidence=config.filtering.min_confidence,
                                    fill_gaps=config.scoring.window_fill_gaps,
                                    border_px=config.scoring.gate_border_px if config.scoring.gate_in_view else None,
                                    min_confident=config.scoring.gate_min_confident,
                                    normalization=normalization)
        self._alerts = None
        if self.threshold is not None:
            self._alerts = AlertEngine(config.alerting, self.threshold, self.zones, id_key=alert_id_key)
        self.stats = PipelineStats()
        self._last_t = 0.0
        self._sink = score_sink

    # -- public ---------------------------------------------------------------------------------

    def process(self, poses: Poses) -> list[AlertEvent]:
        return self.process_batch([poses])

    def process_batch(self, batch: Sequence[Poses]) -> list[AlertEvent]:
        """Frames in time order (any mix of cameras); alert events in the same order."""
        alerts = self._require_alerts()
        out: list[AlertEvent] = []
        for item in self._run(batch):
            if isinstance(item, _Restart):
                out += alerts.finish(item.t, camera_id=item.camera_id)
            else:
                out += alerts.update(item)
        self.stats.skipped_scores = alerts.skipped_scores
        return self._count(out)

    def score_batch(self, batch: Sequence[Poses]) -> list[Scores]:
        """Filter and window every frame, score all windows together; one Scores per window record."""
        return [s for s in self._run(batch) if not isinstance(s, _Restart)]

    def drain(self) -> list[Scores]:
        """End of all streams without alerting: delayed filter output scored, per-stream state dropped."""
        tail: list[Windows] = []
        for cam in list(self._filters):
            tail += [self._windows.update(p) for p in self._flush(cam)]
        scores = self._score(tail)
        self._windows.reset()
        self._last_frame.clear()
        return scores

    def finish(self, t: float | None = None) -> list[AlertEvent]:
        """End of all streams: flush delayed filter output through scoring, then end every open alert."""
        out: list[AlertEvent] = []
        scores = self.drain()
        if self._alerts is not None:
            for s in scores:
                out += self._alerts.update(s)
            if t is None:
                t = max([s.t for s in scores], default=self._last_t)
            out += self._alerts.finish(float(t))
        return self._count(out)

    @property
    def open_alerts(self) -> int:
        return 0 if self._alerts is None else self._alerts.open_alerts

    # -- stages ---------------------------------------------------------------------------------

    def _run(self, batch: Sequence[Poses]) -> list:
        items: list = []
        for poses in batch:
            cam = poses.camera_id
            last = self._last_frame.get(cam)
            if last is not None and poses.frame_index <= last:
                # a new stream on this camera: what the old one still holds goes out first
                self.stats.camera_restarts += 1
                items += [self._windows.update(p) for p in self._flush(cam)]
                self._windows.reset(cam)
                items.append(_Restart(cam, float(poses.t)))
            self._last_frame[cam] = poses.frame_index
            self._last_t = max(self._last_t, float(poses.t))
            flt = self._filters.get(cam)
            if flt is None:
                flt = self._filters[cam] = PoseFilter(self.config.filtering, self._fps.get(cam, self._default_fps))
            self.stats.frames += 1
            filtered = flt.update(poses)
            if filtered is not None:
                items.append(self._windows.update(filtered))
        windows = [w for w in items if not isinstance(w, _Restart)]
        scored = iter(self._score(windows))
        st, wb = self.stats, self._windows
        st.invalid_windows, st.out_of_order, st.live_tracks = wb.invalid_windows, wb.out_of_order, wb.tracks
        st.gated_windows = wb.gated_windows
        return [w if isinstance(w, _Restart) else next(scored) for w in items]

    def _flush(self, cam: str) -> list[Poses]:
        flt = self._filters.pop(cam, None)
        return [] if flt is None else list(flt.flush())

    def _score(self, windows: list[Windows]) -> list[Scores]:
        sizes = [len(w) for w in windows]
        total = sum(sizes)
        nll = np.zeros(0, dtype=np.float32)
        if total:
            x = np.concatenate([w.x for w in windows if len(w)])
            nll = np.empty(total, dtype=np.float32)
            step = self.config.scoring.max_batch
            for lo in range(0, total, step):
                chunk = x[lo:lo + step]
                t0 = time.perf_counter()
                res = np.asarray(self.scorer.score(chunk), dtype=np.float32).reshape(-1)
                self.stats.score_ms += (time.perf_counter() - t0) * 1e3
                self.stats.score_calls += 1
                if res.shape != (len(chunk),):
                    raise PipelineError(f"scorer returned {res.shape[0]} scores for {len(chunk)} windows")
                nll[lo:lo + len(chunk)] = res
            self.stats.windows_scored += total
        out, lo = [], 0
        for w, n in zip(windows, sizes):
            out.append(Scores(w.camera_id, w.frame_index, w.t, w.track_ids, w.centre_frames, w.anchors,
                              nll[lo:lo + n], w.events))
            lo += n
        if self._sink is not None:
            for sc in out:
                if len(sc):
                    self._sink(sc)
        return out

    def _require_alerts(self) -> AlertEngine:
        if self._alerts is None:
            raise PipelineError("no alert threshold: set alerting.threshold in the configuration or calibrate "
                                "the model (poselift-edge calibrate-threshold --model DIR --data DIR)")
        return self._alerts

    def _count(self, events: list[AlertEvent]) -> list[AlertEvent]:
        for e in events:
            if e.event == AlertPhase.NEW:
                self.stats.alerts_new += 1
            elif e.event == AlertPhase.UPDATE:
                self.stats.alerts_update += 1
            else:
                self.stats.alerts_end += 1
        return events


@dataclass(frozen=True)
class _Restart:
    camera_id: str
    t: float
