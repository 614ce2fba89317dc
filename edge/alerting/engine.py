"""Alert state machine: per camera and track, window scores become alerts with a lifecycle.

Per track the window NLL is smoothed by an exponential moving average. An alert fires (``new``) once
the smoothed score has stayed above the threshold for ``min_duration_s`` while the person stands in
an allowed zone, counting only after the track's first ``warmup_windows`` scores (which do feed the
average); while it is open, ``update`` events carry the current score and the running peak, at most
every ``update_interval_s``; it ends (``end``) once the score has stayed below the release
level (``threshold * release_ratio``; for a negative threshold the same fraction of its magnitude
below it) or the person has been outside the zones for ``end_after_s``. ``end`` is always emitted:
also when the track is removed, when it has had no score for ``lost_after_s`` (its state is then
forgotten), and on :meth:`AlertEngine.finish`. After an end, the track gets no new alert for
``cooldown_s``.

Time is the ``t`` of the Scores record (the frame being processed). Alert ids are random UUIDs, or,
with ``id_key``, derived from the key, the camera, the track and the frame the alert fired at, so a
replay restarted from the beginning reproduces the same ids (consumers dedupe by id).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from edge.alerting.zones import ZoneMap
from edge.config import AlertingConfig
from edge.records import AlertEvent, AlertPhase, Scores, TrackEventKind

REASON_RELEASED = "score below release level"
REASON_LEFT_ZONE = "left the alert zones"
REASON_REMOVED = "track removed"
REASON_FINISHED = "stopped"
REASON_LOST = "track lost"
_SWEEP_EVERY_S = 1.0
# times are frame / fps in replays: 1.9 - 0.9 < 1.0 in floating point must still count as a second
TIME_EPS = 1e-6


def release_level(threshold: float, release_ratio: float) -> float:
    """The hysteresis level below the threshold, also for negative thresholds."""
    return threshold - (1.0 - release_ratio) * abs(threshold)


@dataclass
class _Open:
    alert_id: str
    started_t: float
    zone: str | None
    peak: float
    last_event_t: float
    cold_since: float | None = None
    cold_reason: str = REASON_RELEASED


@dataclass
class _Track:
    ema: float | None = None
    hot_since: float | None = None
    hot_peak: float = -math.inf
    hot_zone: str | None = None
    cooldown_until: float = -math.inf
    last_frame: int = -1
    last_t: float = -math.inf
    windows: int = 0  # scores seen: the first warmup_windows cannot fire
    open: _Open | None = None


class AlertEngine:
    """``update(scores) -> [AlertEvent]`` per frame of a camera; ``finish(t)`` ends every open alert.

    ``zones`` maps camera id to its zones (``ZoneConfig``, ``Zone`` or ``{"name", "polygon"}``), or is
    a :class:`ZoneMap`; cameras without zones alert anywhere. ``id_key`` switches to deterministic
    alert ids.
    """

    def __init__(self, cfg: AlertingConfig, threshold: float, zones: Mapping | ZoneMap | None = None,
                 *, id_key: str | bytes | None = None):
        if threshold is None or not math.isfinite(float(threshold)):
            raise ValueError(f"alert threshold must be a finite number, got {threshold!r}")
        self.cfg = cfg
        self.threshold = float(threshold)
        self.release = release_level(self.threshold, cfg.release_ratio)
        self.zones = zones if isinstance(zones, ZoneMap) else ZoneMap(zones)
        self._namespace = None
        if id_key is not None:
            key = id_key.decode("utf-8", "replace") if isinstance(id_key, bytes) else str(id_key)
            self._namespace = uuid.uuid5(uuid.NAMESPACE_URL, "poselift-edge/alert/" + key)
        self._tracks: dict[tuple[str, int], _Track] = {}
        self._swept: dict[str, float] = {}
        self.skipped_scores = 0  # non-finite scores ignored (degenerate windows)

    @property
    def open_alerts(self) -> int:
        return sum(1 for s in self._tracks.values() if s.open is not None)

    def update(self, scores: Scores) -> list[AlertEvent]:
        cam, t = scores.camera_id, float(scores.t)
        out = self._sweep(cam, t)
        if len(scores):
            allowed, names = self.zones.locate(cam, scores.anchors)
            for i in range(len(scores)):
                x = float(scores.nll[i])
                if not math.isfinite(x):
                    self.skipped_scores += 1
                    continue
                key = (cam, int(scores.track_ids[i]))
                st = self._tracks.get(key)
                if st is not None and t - st.last_t > self.cfg.lost_after_s:
                    # back after a long silence: a new track as far as alerting goes
                    if st.open is not None:
                        out.append(self._end(st, key, t, st.last_frame, REASON_LOST))
                    st = None
                if st is None:
                    st = self._tracks[key] = _Track()
                ev = self._step(st, key, t, int(scores.centre_frames[i]), x, bool(allowed[i]), names[i])
                if ev is not None:
                    out.append(ev)
        for event in scores.events:
            if event.kind == TrackEventKind.REMOVED:
                st = self._tracks.pop((event.camera_id, int(event.track_id)), None)
                if st is not None and st.open is not None:
                    out.append(self._end(st, (event.camera_id, int(event.track_id)), t,
                                         int(event.frame_index), REASON_REMOVED))
        return out

    def finish(self, t: float, camera_id: str | None = None) -> list[AlertEvent]:
        """End every open alert (of one camera, or all) and forget the tracks' state."""
        out = []
        for key in [k for k in self._tracks if camera_id is None or k[0] == camera_id]:
            st = self._tracks.pop(key)
            if st.open is not None:
                out.append(self._end(st, key, float(t), st.last_frame, REASON_FINISHED))
        return out

    def _sweep(self, cam: str, t: float) -> list[AlertEvent]:
        """Forget this camera's tracks that have had no score for ``lost_after_s`` (ending their alerts)."""
        if t - self._swept.get(cam, -math.inf) < _SWEEP_EVERY_S:
            return []
        self._swept[cam] = t
        out = []
        limit = self.cfg.lost_after_s
        for key in [k for k, st in self._tracks.items() if k[0] == cam and t - st.last_t > limit]:
            st = self._tracks.pop(key)
            if st.open is not None:
                out.append(self._end(st, key, t, st.last_frame, REASON_LOST))
        return out

    def _step(self, st: _Track, key, t: float, frame: int, x: float, allowed: bool, zone):
        a = self.cfg.ema_alpha
        st.ema = x if st.ema is None else a * x + (1.0 - a) * st.ema
        st.last_frame = frame
        st.last_t = t
        st.windows += 1
        s = st.ema
        op = st.open
        if op is None:
            warm = st.windows > self.cfg.warmup_windows
            if s > self.threshold and allowed and warm and t >= st.cooldown_until - TIME_EPS:
                if st.hot_since is None:
                    st.hot_since, st.hot_peak, st.hot_zone = t, s, zone
                st.hot_peak = max(st.hot_peak, s)
                if t - st.hot_since >= self.cfg.min_duration_s - TIME_EPS:
                    return self._new(st, key, t, frame, s)
            else:
                st.hot_since = None
            return None
        op.peak = max(op.peak, s)
        cold_reason = REASON_LEFT_ZONE if not allowed else REASON_RELEASED if s < self.release else None
        if cold_reason is None:
            op.cold_since = None
        else:
            if op.cold_since is None:
                op.cold_since = t
            op.cold_reason = cold_reason
            if t - op.cold_since >= self.cfg.end_after_s - TIME_EPS:
                return self._end(st, key, t, frame, cold_reason)
        if t - op.last_event_t >= self.cfg.update_interval_s - TIME_EPS:
            op.last_event_t = t
            return self._event(AlertPhase.UPDATE, op, key, t, frame, s)
        return None

    def _new(self, st: _Track, key, t: float, frame: int, s: float) -> AlertEvent:
        if self._namespace is None:
            alert_id = str(uuid.uuid4())
        else:
            alert_id = str(uuid.uuid5(self._namespace, f"{key[0]}/{key[1]}/{frame}"))
        st.open = _Open(alert_id, st.hot_since, st.hot_zone, st.hot_peak, t)
        st.hot_since = None
        return self._event(AlertPhase.NEW, st.open, key, t, frame, s)

    def _end(self, st: _Track, key, t: float, frame: int, reason: str) -> AlertEvent:
        op = st.open
        st.open = None
        st.cooldown_until = t + self.cfg.cooldown_s
        st.hot_since = None
        s = st.ema if st.ema is not None else float("nan")
        return self._event(AlertPhase.END, op, key, t, frame, s, reason)

    def _event(self, phase, op: _Open, key, t, frame, s, reason="") -> AlertEvent:
        return AlertEvent(alert_id=op.alert_id, event=phase, camera_id=key[0], track_id=int(key[1]),
                          started_t=float(op.started_t), t=float(t), frame_index=int(frame), score=float(s),
                          peak_score=float(op.peak), threshold=self.threshold, zone=op.zone, reason=reason)
