"""Live pose filter of one camera: ``PoseFilter(cfg, fps).update(poses) -> Poses``.

Per track it keeps a ring buffer of the last raw poses (and, for One-Euro, the filter state) in
preallocated slabs (one slot per track, grown by doubling), and runs the same kernels as
:mod:`edge.filtering.offline` on it, so a stream filtered live equals the offline result of the same
track (tests hold it to that). One Numba call per record handles all tracks of the camera.

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
from edge.filtering import _live as L
from edge.records import Poses, TrackEventKind

_FAR = np.iinfo(np.int64).min // 4
_INITIAL_SLOTS = 16


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
            span, centre = 2 * self.delay + 1, self.delay
        elif self._mode in ("causal", "causal_mean"):
            self.delay = 0
            reach = cfg.window + cfg.max_gap
            capacity = reach + 1
            span, centre = reach, reach - 1
        elif self._mode in ("one_euro", "none"):
            self.delay = 0
            reach = cfg.max_gap + 1
            capacity = 1
            span, centre = 1, 0
        else:
            raise ValueError(f"unknown smoother {self._mode!r}")
        self._reach = reach
        self._capacity = capacity
        self._ip = np.array([span, centre, self._mode == "centered", self._half, cfg.window % 2 == 0, cfg.window,
                             self._mode == "causal", cfg.max_gap], dtype=np.int64)
        self._fp = np.array([cfg.min_confidence, K.CONF_DECAY], dtype=np.float64)
        self.reset()

    @property
    def n_tracks(self) -> int:
        """Tracks with live state (for health reporting and tests)."""
        return len(self._slots)

    def update(self, poses: Poses) -> Poses | None:
        """Filter one record of this camera; see the module docstring for what comes back when."""
        slots = self._accept(poses)
        frame = poses.frame_index + self._offset
        if self._mode == "centered":
            self._pending.append((frame, poses.frame_index, poses.t, poses.frame_size, poses.events))
            if len(self._pending) <= self.delay:
                return None
            return self._emit_centered(*self._pending.popleft())
        out = np.zeros((len(slots), 17, 3))
        cfg = self.cfg
        if self._mode in ("causal", "causal_mean"):
            L.window_rows(slots, frame, self._fr, self._kp, self._head, self._count, self._ip, self._fp, out,
                          np.empty(len(slots), np.int64))
        elif self._mode == "one_euro":
            L.one_euro_rows(slots, frame, poses.keypoints, self._euro, self._euro_last, self._euro_val, cfg.max_gap,
                            cfg.min_confidence, K.CONF_DECAY, 1.0 / self.fps, cfg.one_euro_min_cutoff,
                            cfg.one_euro_beta, cfg.one_euro_d_cutoff, out)
        else:
            L.mask_rows(poses.keypoints, cfg.min_confidence, K.CONF_DECAY, out)
        self._drop_removed(poses.events)
        self._evict(frame - self._reach)
        return Poses(poses.camera_id, poses.frame_index, poses.t, poses.track_ids, poses.boxes,
                     out.astype(np.float32), poses.events, poses.frame_size)

    def flush(self) -> list[Poses]:
        """End of stream: the records still in the delay line, then all state is cleared."""
        out = [self._emit_centered(*self._pending.popleft()) for _ in range(len(self._pending))]
        self.reset()
        return out

    finish = flush

    def reset(self) -> None:
        """Forget every track and the delay line."""
        self._slots: dict[int, int] = {}
        self._free: list[int] = []
        self._alloc(_INITIAL_SLOTS)
        self._pending: deque = deque()
        self._camera: str | None = None
        self._last_frame: int | None = None
        self._offset = 0  # internal frame = frame_index + offset (grows when a new segment starts)

    # -- state -------------------------------------------------------------------------------------

    def _alloc(self, n_slots: int) -> None:
        """(Re)allocate the slabs for ``n_slots`` tracks, keeping what is there."""
        cap = self._capacity
        old = getattr(self, "_fr", None)
        have = 0 if old is None or not self._slots else len(old)
        new = {
            "_fr": np.zeros((n_slots, cap), np.int64), "_kp": np.zeros((n_slots, cap, 17, 3), np.float32),
            "_bx": np.zeros((n_slots, cap, 4), np.float32), "_head": np.zeros(n_slots, np.int64),
            "_count": np.zeros(n_slots, np.int64), "_first": np.zeros(n_slots, np.int64),
            "_last": np.zeros(n_slots, np.int64), "_euro": np.zeros((n_slots, 17, 5)),
            "_euro_last": np.full((n_slots, 17), _FAR, np.int64), "_euro_val": np.zeros((n_slots, 17, 3)),
        }
        for name, arr in new.items():
            if have:
                arr[:have] = getattr(self, name)[:have]
            setattr(self, name, arr)
        self._free.extend(range(n_slots - 1, have - 1, -1))

    def _slot(self, tid: int, frame: int) -> int:
        s = self._slots.get(tid)
        if s is None:
            if not self._free:
                self._alloc(2 * len(self._fr))
            s = self._free.pop()
            self._slots[tid] = s
            self._head[s] = self._count[s] = 0
            self._first[s] = frame
            self._euro[s] = 0.0
            self._euro_last[s] = _FAR
        return s

    def _release(self, tid: int) -> None:
        s = self._slots.pop(tid, None)
        if s is not None:
            self._free.append(s)

    def _accept(self, poses: Poses) -> np.ndarray:
        if self._camera is not None and poses.camera_id != self._camera:
            raise ValueError(f"PoseFilter is per camera: got camera {poses.camera_id!r} after {self._camera!r}")
        ids = poses.track_ids.tolist()
        if len(set(ids)) != len(ids):
            uniq, counts = np.unique(poses.track_ids, return_counts=True)
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
        frame = poses.frame_index + self._offset
        slots = np.array([self._slot(t, frame) for t in ids], dtype=np.int64)
        L.push(slots, frame, poses.keypoints, poses.boxes, self._fr, self._kp, self._bx, self._head, self._count,
               self._last)
        return slots

    def _drop_removed(self, events) -> None:
        for ev in events:
            if ev.kind == TrackEventKind.REMOVED:
                self._release(int(ev.track_id))

    def _evict(self, older_than: int) -> None:
        for tid in [t for t, s in self._slots.items() if self._last[s] < older_than]:
            self._release(tid)

    # -- delayed output ----------------------------------------------------------------------------

    def _emit_centered(self, frame: int, frame_index: int, t: float, frame_size, events) -> Poses:
        tids = np.fromiter(self._slots.keys(), np.int64, len(self._slots))
        slots = np.fromiter(self._slots.values(), np.int64, len(self._slots))
        cand = (self._first[slots] <= frame) & (self._last[slots] >= frame)
        tids, slots = tids[cand], slots[cand]
        out = np.zeros((len(slots), 17, 3))
        own = np.empty(len(slots), np.int64)
        L.window_rows(slots, frame, self._fr, self._kp, self._head, self._count, self._ip, self._fp, out, own)
        keep = own != -1
        tids, slots, out, own = tids[keep], slots[keep], out[keep], own[keep]
        boxes = np.zeros((len(slots), 4), np.float32)
        L.box_rows(slots, frame, self._fr, self._bx, self._head, self._count, own, boxes)
        self._drop_removed(events)
        self._evict(frame - self.delay)
        return Poses(self._camera or "", frame_index, t, tids, boxes, out.astype(np.float32), events, frame_size)
