"""The tracking stage of one camera: ``Detections`` in, ``Tracks`` (pseudonymous ids + events) out.

Input that a tracker must not see is dropped and counted in ``counters``, never raised:

- detections with NaN/inf coordinates, empty or negative extent, or a score outside 0..1
  (``invalid_detections``);
- a frame whose index is not after the last one accepted (``stale_frames``): state stays as it was;
- a record of another camera than the one this stage serves (``other_camera``).

Events: ``started`` when a track is first shown (its first confirmed frame), ``lost`` when a shown
track stops being matched (it may come back under the same id within the lost-track buffer),
``removed`` when the tracker lets it go; ``finish()`` removes whatever is left at the end of a stream.
Ids in ``Tracks`` and in events are pseudonyms from ``pseudonyms`` (random per session by default).

Skipped frame numbers are real time passing: the tracker steps through each missing frame with no
detections (up to the point where every track would have been removed anyway), so prediction and
the lost-track buffer behave as if the camera had delivered empty frames.
"""

from __future__ import annotations

import numpy as np

from edge.config import TrackingConfig
from edge.records import Detections, TrackEvent, TrackEventKind, Tracks
from edge.tracking.pseudonyms import Pseudonyms, RandomPseudonyms

_KINDS = (TrackEventKind.STARTED, TrackEventKind.LOST, TrackEventKind.REMOVED)


class TrackingStage:
    def __init__(self, cfg: TrackingConfig | None = None, fps: float = 30.0, pseudonyms: Pseudonyms | None = None):
        from edge.tracking.bytetrack import ByteTracker  # Numba loads with the first stage, not on import

        cfg = cfg or TrackingConfig()
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.cfg = cfg
        self.fps = float(fps)
        self.tracker = ByteTracker(cfg.track_thresh, cfg.match_thresh, cfg.track_buffer, fps,
                                   cfg.fuse_score, cfg.iou)
        if pseudonyms is None:
            if cfg.pseudonyms != "random":
                raise ValueError("tracking.pseudonyms = 'keyed' needs a generator: pass "
                                 "pseudonyms_for('keyed', device.state_dir), shared by the cameras")
            pseudonyms = RandomPseudonyms()
        self.pseudonyms = pseudonyms
        self.camera_id: str | None = None
        self.last_frame: int | None = None
        self.counters = {"frames": 0, "invalid_detections": 0, "stale_frames": 0, "skipped_frames": 0,
                         "other_camera": 0}
        self._started: dict[int, int] = {}   # tracker number -> pseudonym, for tracks downstream knows
        self._pid = np.zeros(self.tracker.capacity, np.int64)  # pseudonym by state slot, for the hot path

    def _events(self, out, camera_id: str, frame_index: int) -> list[TrackEvent]:
        if len(self._pid) < self.tracker.capacity:
            grown = np.zeros(self.tracker.capacity, np.int64)
            grown[: len(self._pid)] = self._pid
            self._pid = grown
        events = []
        for kind, tid, slot in zip(out.event_kinds.tolist(), out.event_ids.tolist(), out.event_slots.tolist()):
            if kind == 0:
                pid = self.pseudonyms(camera_id, tid)
                self._pid[slot] = pid
                self._started[tid] = pid
            else:
                pid = int(self._pid[slot])
            events.append(TrackEvent(_KINDS[kind], camera_id, pid, frame_index))
            if kind == 2:
                self._pid[slot] = 0
                del self._started[tid]
                forget = getattr(self.pseudonyms, "forget", None)
                if forget is not None:
                    forget(camera_id, tid)
        return events

    def _empty(self, det: Detections, events=()) -> Tracks:
        return Tracks(det.camera_id, det.frame_index, det.t, np.zeros(0, np.int64), np.zeros((0, 4), np.float32),
                      np.zeros(0, np.float32), tuple(events), det.frame_size)

    def update(self, det: Detections) -> Tracks:
        if self.camera_id is None:
            self.camera_id = det.camera_id
        elif det.camera_id != self.camera_id:
            self.counters["other_camera"] += 1
            return self._empty(det)
        if self.last_frame is not None and det.frame_index <= self.last_frame:
            self.counters["stale_frames"] += 1
            return self._empty(det)
        events: list[TrackEvent] = []
        if self.last_frame is not None and det.frame_index > self.last_frame + 1:
            gap = det.frame_index - self.last_frame - 1
            self.counters["skipped_frames"] += gap
            # Past this many empty frames every track is gone; more steps would change nothing.
            for k in range(min(gap, self.tracker.max_time_lost + 2)):
                out = self.tracker.update(np.zeros((0, 4)), np.zeros(0))
                events += self._events(out, det.camera_id, self.last_frame + 1 + k)
        self.last_frame = det.frame_index
        self.counters["frames"] += 1
        before = self.tracker.dropped
        out = self.tracker.update(det.boxes, det.scores)
        self.counters["invalid_detections"] += self.tracker.dropped - before
        events += self._events(out, det.camera_id, det.frame_index)
        ids = self._pid[out.slots]
        return Tracks(det.camera_id, det.frame_index, det.t, ids, out.xyxy.astype(np.float32),
                      out.scores.astype(np.float32), tuple(events), det.frame_size)

    def finish(self, frame_index: int | None = None) -> tuple[TrackEvent, ...]:
        """End of stream: a removed event for every track downstream still knows, then a fresh state."""
        cam = self.camera_id or ""
        fi = self.last_frame if frame_index is None else frame_index
        events = tuple(TrackEvent(TrackEventKind.REMOVED, cam, pid, fi if fi is not None else 0)
                       for pid in self._started.values())
        forget = getattr(self.pseudonyms, "forget", None)
        if forget is not None:
            for tid in self._started:
                forget(cam, tid)
        self._started.clear()
        t = self.tracker
        self.tracker = type(t)(t.track_thresh, t.match_thresh, self.cfg.track_buffer, self.fps,
                               t.fuse_score, "legacy" if t.legacy else "plain")
        self._pid[:] = 0
        self.last_frame = None
        return events
