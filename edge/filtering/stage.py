"""Live pose filter of one camera: ``PoseFilter(cfg, fps).update(poses) -> Poses``.

Per track it keeps a preallocated ring buffer of the last raw poses (and, for One-Euro, the filter
state) and runs the same kernels as :mod:`edge.filtering.offline` on it, so a stream filtered live
equals the offline result of the same track (tests hold it to that).

Delay:

* ``none``, ``causal``, ``causal_mean``, ``one_euro``: no delay. ``update`` returns the record of the
  frame it was given, with filtered keypoints. A keypoint not measured in this frame comes out missing
  (confidence 0): a causal filter cannot know whether its gap will close within ``max_gap``. Gaps that
  did close are bridged in the history the smoother sees.
* ``centered``: the output lags by ``delay = window // 2 + max_gap`` received records: the window needs
  ``window // 2`` frames ahead, and deciding whether a point lies in a bridgeable gap needs up to
  ``max_gap`` more. The record returned by ``update`` is then the one received ``delay`` calls earlier
  (its ``frame_index``, ``t`` and events are that frame's); ``None`` while the delay line fills, and
  :meth:`flush` returns the rest at the end of a stream. Tracks missing for a bridged gap reappear in
  the delayed records for those frames, with interpolated boxes.

Track state is dropped when the record carrying the track's ``REMOVED`` event is emitted, and a track
not seen for longer than any filter can reach back is dropped without one. Frame numbers must increase;
a frame number lower than the previous one (a replay starting its next video on the same camera)
starts a new segment that no filter bridges into; a repeated frame number is an error.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from edge.filtering import _kernels as K
from edge.records import Poses, TrackEventKind

_FAR = np.iinfo(np.int64).min // 4


class _Track:
    __slots__ = ("frames", "kp", "boxes", "head", "count", "first", "last", "euro", "euro_last", "euro_val")

    def __init__(self, capacity: int, one_euro: bool):
        self.frames = np.zeros(capacity, dtype=np.int64)
        self.kp = np.zeros((capacity, 17, 3), dtype=np.float32)
        self.boxes = np.zeros((capacity, 4), dtype=np.float32)
        self.head = 0
        self.count = 0
        self.first = None
        self.last = None
        if one_euro:
            self.euro = np.zeros((17, 5))
            self.euro_last = np.full(17, _FAR, dtype=np.int64)
            self.euro_val = np.zeros((17, 3))

    def push(self, frame: int, kp: np.ndarray, box: np.ndarray) -> None:
        cap = len(self.frames)
        self.frames[self.head] = frame
        self.kp[self.head] = kp
        self.boxes[self.head] = box
        self.head = (self.head + 1) % cap
        self.count = min(self.count + 1, cap)
        if self.first is None:
            self.first = frame
        self.last = frame

    def box_at(self, frame: int, lo: int, hi: int) -> np.ndarray:
        """The box at ``frame``: its own, or interpolated between the observations around it."""
        cap = len(self.frames)
        idx = (self.head - self.count + np.arange(self.count)) % cap
        fr = self.frames[idx]
        keep = (fr >= lo) & (fr <= hi)
        return _box_at(fr[keep], self.boxes[idx[keep]], frame)


class PoseFilter:
    """Gap bridging and smoothing of every track of one camera (see the module docstring)."""

    def __init__(self, cfg, fps: float):
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.cfg = cfg
        self.fps = float(fps)
        self._mode = cfg.smoother
        self._half = cfg.window // 2
        if self._mode == "centered":
            self.delay = self._half + cfg.max_gap
            reach = 2 * self.delay + 1
            capacity = 2 * self.delay + 2
        elif self._mode in ("causal", "causal_mean"):
            self.delay = 0
            reach = cfg.window + cfg.max_gap
            capacity = reach + 1
        elif self._mode in ("one_euro", "none"):
            self.delay = 0
            reach = cfg.max_gap + 1
            capacity = 1
        else:
            raise ValueError(f"unknown smoother {self._mode!r}")
        self._reach = reach
        if self._mode == "centered":
            span, centre = 2 * self.delay + 1, self.delay
        else:
            span, centre = reach, reach - 1
        # head, count, lo (set per call), span, centre, centered, half, even, window, fit, max_gap
        self._ip = np.array([0, 0, 0, span, centre, self._mode == "centered", self._half, cfg.window % 2 == 0,
                             cfg.window, self._mode == "causal", cfg.max_gap], dtype=np.int64)
        self._fp = np.array([cfg.min_confidence, K.CONF_DECAY], dtype=np.float64)
        self._capacity = capacity
        self._tracks: dict[int, _Track] = {}
        self._pending: deque = deque()
        self._camera: str | None = None
        self._last_frame: int | None = None
        self._offset = 0  # internal frame = frame_index + offset (grows when a new segment starts)

    @property
    def n_tracks(self) -> int:
        """Tracks with live state (for health reporting and tests)."""
        return len(self._tracks)

    def update(self, poses: Poses) -> Poses | None:
        self._accept(poses)
        if self._mode == "centered":
            self._pending.append((poses.frame_index + self._offset, poses.frame_index, poses.t,
                                  poses.frame_size, poses.events))
            if len(self._pending) <= self.delay:
                return None
            return self._emit_centered(*self._pending.popleft())
        out = self._emit_causal(poses)
        self._drop_removed(poses.events)
        self._evict(poses.frame_index + self._offset - self._reach)
        return out

    def flush(self) -> list[Poses]:
        """End of stream: the records still in the delay line, then all state is cleared."""
        out = [self._emit_centered(*self._pending.popleft()) for _ in range(len(self._pending))]
        self.reset()
        return out

    finish = flush

    def reset(self) -> None:
        self._tracks.clear()
        self._pending.clear()
        self._camera = None
        self._last_frame = None
        self._offset = 0

    # -- input -------------------------------------------------------------------------------------

    def _accept(self, poses: Poses) -> None:
        if self._camera is not None and poses.camera_id != self._camera:
            raise ValueError(f"PoseFilter is per camera: got camera {poses.camera_id!r} after {self._camera!r}")
        ids = poses.track_ids
        if len(set(ids.tolist())) != len(ids):
            uniq, counts = np.unique(ids, return_counts=True)
            raise ValueError(f"camera {poses.camera_id!r} frame {poses.frame_index}: duplicate track ids "
                             f"{uniq[counts > 1].tolist()}")
        if self._last_frame is not None and poses.frame_index == self._last_frame:
            raise ValueError(f"camera {poses.camera_id!r}: frame {poses.frame_index} does not follow frame "
                             f"{self._last_frame}")
        if self._last_frame is not None and poses.frame_index < self._last_frame:
            # frame numbers restarted (a replay's next video): a new segment, far enough away in
            # internal frames that nothing before it reaches into it
            self._offset += self._last_frame - poses.frame_index + 2 * (self._reach + self.delay) + 2
        self._camera = poses.camera_id
        self._last_frame = poses.frame_index
        one_euro = self._mode == "one_euro"
        for i, tid in enumerate(ids.tolist()):
            tr = self._tracks.get(tid)
            if tr is None:
                tr = self._tracks[tid] = _Track(self._capacity, one_euro)
            tr.push(poses.frame_index + self._offset, poses.keypoints[i], poses.boxes[i])

    def _drop_removed(self, events) -> None:
        for ev in events:
            if ev.kind == TrackEventKind.REMOVED:
                self._tracks.pop(int(ev.track_id), None)

    def _evict(self, older_than: int) -> None:
        for tid in [t for t, tr in self._tracks.items() if tr.last < older_than]:
            del self._tracks[tid]

    # -- output ------------------------------------------------------------------------------------

    def _emit_causal(self, poses: Poses) -> Poses:
        cfg = self.cfg
        out = np.zeros((len(poses), 17, 3))
        frame = poses.frame_index + self._offset
        one = np.zeros(1, dtype=np.int64)
        trailing = self._mode in ("causal", "causal_mean")
        for i, tid in enumerate(poses.track_ids.tolist()):
            tr = self._tracks[tid]
            raw = poses.keypoints[i]
            row = out[i:i + 1]
            if trailing:
                ip = self._ip
                ip[0], ip[1], ip[2] = tr.head, tr.count, frame - self._reach + 1
                K.live_row(tr.frames, tr.kp, ip, self._fp, row[0])
                continue
            if self._mode == "one_euro":
                K.one_euro_live(tr.euro, tr.euro_last, tr.euro_val, frame, raw, cfg.max_gap, cfg.min_confidence,
                                K.CONF_DECAY, 1.0 / self.fps, cfg.one_euro_min_cutoff, cfg.one_euro_beta,
                                cfg.one_euro_d_cutoff, row[0])
            else:
                K.densify(one, raw[None], 1, 0, cfg.min_confidence, K.CONF_DECAY, row,
                          np.zeros((1, 17), dtype=np.bool_), np.zeros(1, dtype=np.bool_))
            K.fill_missing(row, one, raw[None], 0, 1)
        return Poses(poses.camera_id, poses.frame_index, poses.t, poses.track_ids, poses.boxes,
                     out.astype(np.float32), poses.events, poses.frame_size)

    def _emit_centered(self, frame: int, frame_index: int, t: float, frame_size, events) -> Poses:
        cfg = self.cfg
        reach = self.delay
        length = 2 * reach + 1
        lo = frame - reach
        ids, boxes, kps = [], [], []
        for tid, tr in self._tracks.items():
            if tr.first > frame or tr.last < frame:
                continue
            row = np.empty((17, 3))
            ip = self._ip
            ip[0], ip[1], ip[2] = tr.head, tr.count, lo
            slot = K.live_row(tr.frames, tr.kp, ip, self._fp, row)
            if slot == -1:
                continue
            ids.append(tid)
            kps.append(row)
            boxes.append(tr.boxes[slot] if slot >= 0 else tr.box_at(frame, lo, frame + reach))
        for ev in events:
            if ev.kind == TrackEventKind.REMOVED:
                self._tracks.pop(int(ev.track_id), None)
        self._evict(frame - reach)
        n = len(ids)
        return Poses(self._camera or "", frame_index, t, np.array(ids, dtype=np.int64),
                     np.array(boxes, dtype=np.float32).reshape(n, 4),
                     np.array(kps, dtype=np.float32).reshape(n, 17, 3), events, frame_size)


def _box_at(frames: np.ndarray, boxes: np.ndarray, frame: int) -> np.ndarray:
    """The track's box at ``frame``: its own, or interpolated between the observations around it."""
    k = int(np.searchsorted(frames, frame))
    if k < len(frames) and frames[k] == frame:
        return boxes[k]
    a, b = k - 1, k
    f = (frame - frames[a]) / float(frames[b] - frames[a])
    return boxes[a] + np.float32(f) * (boxes[b] - boxes[a])
