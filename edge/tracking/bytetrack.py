"""ByteTrack (Zhang et al., 2022): the tracker object around the Numba step.

``ByteTracker.update(boxes, scores)`` takes one frame of detections (x1, y1, x2, y2 pixels, scores in
0..1) and returns the Kalman-updated boxes of the confirmed tracks with the tracker's own track
numbers, plus lifecycle events. Those numbers are sequential and must not leave the device; the
pipeline stage maps them to pseudonyms.

Rows with NaN or infinite values, a side under 0.001 px (empty or negative extent), a coordinate
beyond a million pixels, or a score outside 0..1 are dropped inside the step and counted in
``dropped``; they never reach the filter or the assignment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from edge.tracking import _core

EVENT_NAMES = ("started", "lost", "removed")


@dataclass(frozen=True)
class TrackerOutput:
    """Confirmed tracks of one frame and the lifecycle events the frame caused."""

    ids: np.ndarray          # (M,) int64, the tracker's own numbers (1, 2, ...)
    tlwh: np.ndarray         # (M, 4) float64 x, y, w, h
    scores: np.ndarray       # (M,) float64, score of each track's last matched detection
    event_kinds: np.ndarray  # (E,) int8: 0 started, 1 lost, 2 removed
    event_ids: np.ndarray    # (E,) int64
    slots: np.ndarray | None = None        # (M,) int64 state slot of each track (stable while it lives)
    event_slots: np.ndarray | None = None  # (E,) int64

    @property
    def xyxy(self) -> np.ndarray:
        b = self.tlwh.copy()
        b[:, 2:] += b[:, :2]
        return b

    def __len__(self) -> int:
        return len(self.ids)


class ByteTracker:
    """One camera's ByteTrack state.

    ``fuse_score`` multiplies the IoU by the detection score in the first and the unconfirmed
    associations (the original's default; its ``mot20`` mode turns it off). ``iou="legacy"`` counts
    box sides with +1 pixel as the original's ``cython_bbox`` does; ``"plain"`` is the usual IoU.
    """

    def __init__(self, track_thresh: float = 0.5, match_thresh: float = 0.8, track_buffer: int = 30,
                 frame_rate: float = 30.0, fuse_score: bool = True, iou: Literal["plain", "legacy"] = "plain",
                 capacity: int = 64):
        if iou not in ("plain", "legacy"):
            raise ValueError(f"iou must be 'plain' or 'legacy', got {iou!r}")
        for name, value in (("track_thresh", track_thresh), ("match_thresh", match_thresh)):
            if not (0.0 <= float(value) <= 1.0):
                raise ValueError(f"{name} must be within 0..1, got {value}")
        if track_buffer < 1 or not frame_rate > 0:
            raise ValueError(f"track_buffer must be >= 1 and frame_rate > 0, got {track_buffer}, {frame_rate}")
        self.track_thresh = float(track_thresh)
        self.match_thresh = float(match_thresh)
        self.det_thresh = self.track_thresh + 0.1
        self.max_time_lost = int(frame_rate / 30.0 * track_buffer)
        self.fuse_score = bool(fuse_score)
        self.legacy = iou == "legacy"
        self.dropped = 0
        self._meta = np.zeros(5, dtype=np.int64)
        self._alloc(max(8, int(capacity)))

    @property
    def frame(self) -> int:
        """Frames stepped so far (the original's ``frame_id``)."""
        return int(self._meta[_core.M_FRAME])

    def _alloc(self, cap: int) -> None:
        old = getattr(self, "_state", None)
        st = {
            "mean": np.zeros((cap, 8)), "cov": np.zeros((cap, 8, 8)),
            "tid": np.zeros(cap, np.int64), "state": np.zeros(cap, np.int8),
            "activated": np.zeros(cap, np.bool_), "tracklet": np.zeros(cap, np.int64),
            "score": np.zeros(cap), "frame_id": np.zeros(cap, np.int64), "start_frame": np.zeros(cap, np.int64),
            "ever_removed": np.zeros(cap, np.bool_), "started": np.zeros(cap, np.bool_),
            "was_out": np.zeros(cap, np.bool_), "alive": np.zeros(cap, np.bool_),
            "tl": np.zeros(cap, np.int64), "ll": np.zeros(cap, np.int64), "free": np.zeros(cap, np.int64),
        }
        if old is None:
            st["free"][:] = np.arange(cap - 1, -1, -1)
            self._meta[_core.M_NFREE] = cap
        else:
            n_old = len(old["tid"])
            for k, a in old.items():
                if k != "free":
                    st[k][:n_old] = a
            nf = int(self._meta[_core.M_NFREE])
            # New slots go below the old free ones: existing slot order (hence ids) is unaffected.
            st["free"][: cap - n_old] = np.arange(cap - 1, n_old - 1, -1)
            st["free"][cap - n_old: cap - n_old + nf] = old["free"][:nf]
            self._meta[_core.M_NFREE] = nf + cap - n_old
        self._state = st
        self._out_id = np.zeros(cap, np.int64)
        self._out_slot = np.zeros(cap, np.int64)
        self._out_tlwh = np.zeros((cap, 4))
        self._out_score = np.zeros(cap)
        self._ev_kind = np.zeros(3 * cap, np.int8)
        self._ev_id = np.zeros(3 * cap, np.int64)
        self._ev_slot = np.zeros(3 * cap, np.int64)

    def update(self, boxes, scores) -> TrackerOutput:
        """Step one frame. ``boxes`` (N, 4) x1, y1, x2, y2; ``scores`` (N,). N may be 0."""
        b = np.ascontiguousarray(boxes, dtype=np.float64)
        s = np.ascontiguousarray(scores, dtype=np.float64)
        if b.size == 0:
            b = b.reshape(0, 4)
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f"boxes must have shape (N, 4), got {b.shape}")
        s = s.reshape(-1)
        if len(s) != len(b):
            raise ValueError(f"{len(b)} boxes but {len(s)} scores")
        need = len(b)
        nf = int(self._meta[_core.M_NFREE])
        if nf < need:
            cap = len(self._state["tid"])
            new_cap = cap
            while nf + new_cap - cap < need:
                new_cap *= 2
            self._alloc(new_cap)
        st = self._state
        n_out, n_ev, dropped = _core.step(
            b, s, self.track_thresh, self.match_thresh, self.det_thresh, self.max_time_lost,
            self.fuse_score, self.legacy, self._meta,
            st["mean"], st["cov"], st["tid"], st["state"], st["activated"], st["tracklet"], st["score"],
            st["frame_id"], st["start_frame"], st["ever_removed"], st["started"], st["was_out"], st["alive"],
            st["tl"], st["ll"], st["free"],
            self._out_id, self._out_slot, self._out_tlwh, self._out_score, self._ev_kind, self._ev_id,
            self._ev_slot)
        self.dropped += dropped
        return TrackerOutput(self._out_id[:n_out].copy(), self._out_tlwh[:n_out].copy(),
                             self._out_score[:n_out].copy(), self._ev_kind[:n_ev].copy(),
                             self._ev_id[:n_ev].copy(), self._out_slot[:n_out].copy(),
                             self._ev_slot[:n_ev].copy())

    @property
    def capacity(self) -> int:
        """Track slots currently allocated (grows by doubling when a frame needs more)."""
        return len(self._state["tid"])

    @property
    def n_listed(self) -> int:
        """Tracks the tracker still holds (tracked, unconfirmed and lost)."""
        return int(self._meta[_core.M_NT] + self._meta[_core.M_NL])
