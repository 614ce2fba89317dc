"""Live windows: per camera and track, the last ``seg_len`` poses, cut into model inputs as they arrive.

The cutting rule is the offline one (:mod:`edge.windowing.stgnf`): a window is ``seg_len``
consecutive detections of a track, kept when at least ``seg_len - 2`` of its frames lie in
``[f0, f0 + seg_len)``, and candidates start every ``stride`` detections counted from the track's
first detection. One difference, on purpose: the offline reference never produces a track's last
possible window (its candidate count is ``ceil((F - L) / s)``), but a live track has no known end, so
every window is emitted as soon as its last detection arrives. Fed a complete track with stride 1,
this yields the offline windows plus that final one. The rule counts frames inside the window's first
``seg_len`` frames only, so a window whose last one or two detections come after a long gap is still
kept, offline and live alike.

With ``fill_gaps = G > 0`` windows are cut in frame time instead, for a device that cannot process
every camera frame (inference falling behind drops frames, and with every other frame dropped the
detection rule above would never find a window): the window is the ``seg_len`` frames ending at the
track's newest detection, every gap of at most ``G`` frames inside it (or just before its first frame)
is filled by linear interpolation of x, y and confidence, and a window with a longer gap is skipped.
On an undisturbed stream both rules cut the same windows.

Each window is attributed to frame ``f0 + seg_len // 2`` (as the benchmark protocol does), and
carries an anchor for alert zones: the person's ground point at the detection nearest to that frame
(mid-point of the confident ankles, else the bottom centre of the box).

An optional pose-quality gate skips windows the model cannot judge fairly: a window is not emitted
(and counted in ``gated_windows``) when in any of its detections a keypoint lies within
``border_px`` pixels of the frame border or beyond it (the person is not fully in view: entering,
leaving, cut off by the frame; a pose estimator puts the joints it cannot see on the border), or when
fewer than ``min_confident`` of its keypoints reach ``min_confidence``. Such poses are rare in the
normal recordings a model is trained on, so their high scores say "unusual view", not "unusual
behaviour".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.records import Poses, TrackEventKind, Windows
from edge.windowing.stgnf import (
    DEFAULT_DIVISORS, DEFAULT_SEG_LEN, MAX_MISSING_FRAMES, WINDOW_MEAN, check_normalization, coco17_to_18,
    normalize_window,
)

_L_ANKLE, _R_ANKLE = 15, 16


@dataclass
class _TrackBuffer:
    cap: int
    frames: np.ndarray = field(init=False)
    keypoints: np.ndarray = field(init=False)
    boxes: np.ndarray = field(init=False)
    good: np.ndarray = field(init=False)  # per detection: passes the pose-quality gate
    count: int = 0  # detections since the track started: the stride's phase

    def __post_init__(self):
        self.frames = np.zeros(self.cap, dtype=np.int64)
        self.keypoints = np.zeros((self.cap, 17, 3), dtype=np.float32)
        self.boxes = np.zeros((self.cap, 4), dtype=np.float32)
        self.good = np.ones(self.cap, dtype=np.bool_)

    @property
    def last_frame(self) -> int:
        return int(self.frames[(self.count - 1) % self.cap]) if self.count else -1

    def push(self, frame: int, kp: np.ndarray, box: np.ndarray, good: bool = True) -> None:
        i = self.count % self.cap
        self.frames[i] = frame
        self.keypoints[i] = kp
        self.boxes[i] = box
        self.good[i] = good
        self.count += 1

    def last(self, n: int) -> np.ndarray:
        """Ring indices of the last ``n`` detections, oldest first."""
        return (self.count - n + np.arange(n)) % self.cap


class LiveWindows:
    """``update(poses) -> Windows``: feed every (filtered) frame of every camera, in frame order per camera.

    ``min_confidence`` decides which ankles count for the anchor (and which keypoints count as
    confident for the gate). ``border_px`` (None: off) and ``min_confident`` (0: off) set the
    pose-quality gate described in the module docstring. Per-track state is dropped on a
    ``removed`` track event, and for tracks not seen for ``idle_frames`` frames of their camera
    (a safety net for sources that never remove tracks).
    """

    def __init__(self, seg_len: int = DEFAULT_SEG_LEN, stride: int = 1,
                 divisors: tuple[float, float] = DEFAULT_DIVISORS, *, min_confidence: float = 0.2,
                 max_missing: int = MAX_MISSING_FRAMES, idle_frames: int = 900, fill_gaps: int = 0,
                 border_px: float | None = None, min_confident: float = 0.0, normalization: str = WINDOW_MEAN):
        if seg_len < max_missing + 1 or stride < 1 or fill_gaps < 0:
            raise ValueError(f"seg_len must exceed max_missing, stride must be >= 1 and fill_gaps >= 0, "
                             f"got {seg_len}, {stride}, {fill_gaps}")
        if not 0.0 <= min_confident <= 1.0:
            raise ValueError(f"min_confident must lie in [0, 1], got {min_confident}")
        self.border_px = None if border_px is None else float(border_px)
        self.min_confident = float(min_confident)
        self.fill_gaps = int(fill_gaps)
        self.seg_len = int(seg_len)
        self.stride = int(stride)
        self.divisors = (float(divisors[0]), float(divisors[1]))
        self.normalization = check_normalization(normalization)
        self.min_confidence = float(min_confidence)
        self.max_missing = int(max_missing)
        self.idle_frames = int(idle_frames)
        self._tracks: dict[tuple[str, int], _TrackBuffer] = {}
        self._last_purge: dict[str, int] = {}
        self.out_of_order = 0  # detections dropped because their frame was not after the track's last
        self.invalid_windows = 0  # windows dropped for non-finite coordinates
        self.gated_windows = 0  # windows skipped by the pose-quality gate

    @property
    def tracks(self) -> int:
        return len(self._tracks)

    def update(self, poses: Poses) -> Windows:
        cam, L = poses.camera_id, self.seg_len
        ready: list[tuple[int, _TrackBuffer]] = []
        good = self._quality(poses)
        for i in range(len(poses)):
            key = (cam, int(poses.track_ids[i]))
            buf = self._tracks.get(key)
            if buf is None:
                buf = self._tracks[key] = _TrackBuffer(L + max(self.max_missing, self.fill_gaps + 1))
            if buf.count and poses.frame_index <= buf.last_frame:
                self.out_of_order += 1
                continue
            buf.push(int(poses.frame_index), poses.keypoints[i], poses.boxes[i], bool(good[i]))
            if self.fill_gaps:
                if buf.count >= 2 and buf.count % self.stride == 0 and self._span(buf) is not None:
                    ready.append((key[1], buf))
            elif buf.count >= L and (buf.count - L) % self.stride == 0 and self._continuous(buf):
                ready.append((key[1], buf))
        for ev in poses.events:
            if ev.kind == TrackEventKind.REMOVED:
                self._tracks.pop((ev.camera_id, int(ev.track_id)), None)
        self._purge_idle(cam, int(poses.frame_index))
        return self._emit(poses, ready)

    def reset(self, camera_id: str | None = None) -> None:
        """Forget every track (of one camera, or all)."""
        for key in [k for k in self._tracks if camera_id is None or k[0] == camera_id]:
            del self._tracks[key]

    def _quality(self, poses: Poses) -> np.ndarray:
        """Per detection: fully in view and mostly confident (True everywhere with the gate off)."""
        kp = poses.keypoints
        good = np.ones(len(poses), dtype=np.bool_)
        if len(poses) == 0:
            return good
        if self.border_px is not None:
            w, h = float(poses.frame_size[0]), float(poses.frame_size[1])
            m = self.border_px
            x, y = kp[..., 0], kp[..., 1]
            inside = (x > m) & (x < w - 1 - m) & (y > m) & (y < h - 1 - m)
            good &= inside.all(axis=1)
        if self.min_confident > 0:
            conf = kp[..., 2]
            good &= np.mean(conf >= self.min_confidence, axis=1) >= self.min_confident
        return good

    def _continuous(self, buf: _TrackBuffer) -> bool:
        f = buf.frames[buf.last(self.seg_len)]
        return int(np.count_nonzero(f < f[0] + self.seg_len)) >= self.seg_len - self.max_missing

    def _span(self, buf: _TrackBuffer) -> np.ndarray | None:
        """Ring indices of the detections a frame-time window needs (oldest first), or None when a gap
        inside it is longer than ``fill_gaps`` or the track does not reach back to its first frame."""
        idx = buf.last(min(buf.count, len(buf.frames)))
        frames = buf.frames[idx]
        start = frames[-1] - self.seg_len + 1
        inside = np.nonzero(frames >= start)[0]
        first = inside[0] if frames[inside[0]] == start else inside[0] - 1
        if first < 0 or start - frames[first] > self.fill_gaps:
            return None
        if np.diff(frames[first:]).max(initial=1) > self.fill_gaps + 1:
            return None
        return idx[first:]

    def _window_index(self, buf: _TrackBuffer) -> np.ndarray:
        """Ring indices of the detections a window is cut from."""
        return self._span(buf) if self.fill_gaps else buf.last(self.seg_len)

    def _window_pixels(self, buf: _TrackBuffer) -> tuple[np.ndarray, np.ndarray]:
        """(frames, COCO-17 pixels) of one window, gaps interpolated in frame-time mode."""
        L = self.seg_len
        if not self.fill_gaps:
            idx = buf.last(L)
            return buf.frames[idx], buf.keypoints[idx]
        idx = self._span(buf)
        have = buf.frames[idx].astype(np.float64)
        grid = np.arange(int(have[-1]) - L + 1, int(have[-1]) + 1)
        values = buf.keypoints[idx].reshape(len(idx), -1).astype(np.float64)
        filled = np.empty((L, values.shape[1]), dtype=np.float32)
        for c in range(values.shape[1]):
            filled[:, c] = np.interp(grid, have, values[:, c])
        return grid, filled.reshape(L, 17, 3)

    def _emit(self, poses: Poses, ready) -> Windows:
        L, n = self.seg_len, len(ready)
        if n == 0:
            return self._empty(poses)
        pix = np.empty((n, L, 17, 3), dtype=np.float32)
        centres = np.empty(n, dtype=np.int64)
        anchors = np.empty((n, 2), dtype=np.float32)
        keep = np.ones(n, dtype=np.bool_)
        for j, (_, buf) in enumerate(ready):
            keep[j] = bool(buf.good[self._window_index(buf)].all())
            frames, pix[j] = self._window_pixels(buf)
            centres[j] = frames[0] + L // 2
            recent = buf.last(min(buf.count, len(buf.frames)))
            k = recent[int(np.argmin(np.abs(buf.frames[recent] - centres[j])))]
            anchors[j] = self._ground_point(buf.keypoints[k], buf.boxes[k])
        ids = np.array([tid for tid, _ in ready], dtype=np.int64)
        finite = np.isfinite(pix[..., :2]).all(axis=(1, 2, 3)) & np.isfinite(anchors).all(axis=1)
        # a pose source that reports NaN/inf coordinates must not stop the other tracks
        self.invalid_windows += int(np.count_nonzero(~finite))
        self.gated_windows += int(np.count_nonzero(finite & ~keep))
        ok = finite & keep
        if not ok.any():
            return self._empty(poses)
        if not ok.all():
            pix, centres, anchors, ids = pix[ok], centres[ok], anchors[ok], ids[ok]
        x = normalize_window(coco17_to_18(pix), self.divisors, method=self.normalization)
        return Windows(poses.camera_id, poses.frame_index, poses.t, ids, centres, anchors, x, poses.events)

    def _empty(self, poses: Poses) -> Windows:
        return Windows(poses.camera_id, poses.frame_index, poses.t, np.zeros(0, np.int64), np.zeros(0, np.int64),
                       np.zeros((0, 2), np.float32), np.zeros((0, 2, self.seg_len, 18), np.float32), poses.events)

    def _ground_point(self, kp: np.ndarray, box: np.ndarray) -> np.ndarray:
        ankles = kp[[_L_ANKLE, _R_ANKLE]]
        ok = (ankles[:, 2] >= self.min_confidence) & (ankles[:, 2] > 0)
        if ok.any():
            return ankles[ok, :2].mean(axis=0)
        return np.array([(box[0] + box[2]) * 0.5, box[3]], dtype=np.float32)

    def _purge_idle(self, cam: str, frame: int) -> None:
        # a full scan is cheap but pointless every frame; once per idle period is enough
        if frame - self._last_purge.get(cam, -1 << 62) < self.idle_frames:
            return
        self._last_purge[cam] = frame
        stale = [k for k, b in self._tracks.items() if k[0] == cam and frame - b.last_frame > self.idle_frames]
        for k in stale:
            del self._tracks[k]
