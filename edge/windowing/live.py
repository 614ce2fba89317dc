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

Each window is attributed to frame ``f0 + seg_len // 2`` (as the benchmark protocol does), and
carries an anchor for alert zones: the person's ground point at the detection nearest to that frame
(mid-point of the confident ankles, else the bottom centre of the box).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.records import Poses, TrackEventKind, Windows
from edge.windowing.stgnf import DEFAULT_DIVISORS, DEFAULT_SEG_LEN, MAX_MISSING_FRAMES, coco17_to_18, normalize_window

_L_ANKLE, _R_ANKLE = 15, 16


@dataclass
class _TrackBuffer:
    cap: int
    frames: np.ndarray = field(init=False)
    keypoints: np.ndarray = field(init=False)
    boxes: np.ndarray = field(init=False)
    count: int = 0  # detections since the track started: the stride's phase

    def __post_init__(self):
        self.frames = np.zeros(self.cap, dtype=np.int64)
        self.keypoints = np.zeros((self.cap, 17, 3), dtype=np.float32)
        self.boxes = np.zeros((self.cap, 4), dtype=np.float32)

    @property
    def last_frame(self) -> int:
        return int(self.frames[(self.count - 1) % self.cap]) if self.count else -1

    def push(self, frame: int, kp: np.ndarray, box: np.ndarray) -> None:
        i = self.count % self.cap
        self.frames[i] = frame
        self.keypoints[i] = kp
        self.boxes[i] = box
        self.count += 1

    def last(self, n: int) -> np.ndarray:
        """Ring indices of the last ``n`` detections, oldest first."""
        return (self.count - n + np.arange(n)) % self.cap


class LiveWindows:
    """``update(poses) -> Windows``: feed every (filtered) frame of every camera, in frame order per camera.

    ``min_confidence`` decides which ankles count for the anchor. Per-track state is dropped on a
    ``removed`` track event, and for tracks not seen for ``idle_frames`` frames of their camera
    (a safety net for sources that never remove tracks).
    """

    def __init__(self, seg_len: int = DEFAULT_SEG_LEN, stride: int = 1,
                 divisors: tuple[float, float] = DEFAULT_DIVISORS, *, min_confidence: float = 0.2,
                 max_missing: int = MAX_MISSING_FRAMES, idle_frames: int = 900):
        if seg_len < max_missing + 1 or stride < 1:
            raise ValueError(f"seg_len must exceed max_missing and stride must be >= 1, got {seg_len}, {stride}")
        self.seg_len = int(seg_len)
        self.stride = int(stride)
        self.divisors = (float(divisors[0]), float(divisors[1]))
        self.min_confidence = float(min_confidence)
        self.max_missing = int(max_missing)
        self.idle_frames = int(idle_frames)
        self._tracks: dict[tuple[str, int], _TrackBuffer] = {}
        self._last_purge: dict[str, int] = {}
        self.out_of_order = 0  # detections dropped because their frame was not after the track's last
        self.invalid_windows = 0  # windows dropped for non-finite coordinates

    @property
    def tracks(self) -> int:
        return len(self._tracks)

    def update(self, poses: Poses) -> Windows:
        cam, L = poses.camera_id, self.seg_len
        ready: list[tuple[int, _TrackBuffer]] = []
        for i in range(len(poses)):
            key = (cam, int(poses.track_ids[i]))
            buf = self._tracks.get(key)
            if buf is None:
                buf = self._tracks[key] = _TrackBuffer(L + self.max_missing)
            if buf.count and poses.frame_index <= buf.last_frame:
                self.out_of_order += 1
                continue
            buf.push(int(poses.frame_index), poses.keypoints[i], poses.boxes[i])
            if buf.count >= L and (buf.count - L) % self.stride == 0 and self._continuous(buf):
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

    def _continuous(self, buf: _TrackBuffer) -> bool:
        f = buf.frames[buf.last(self.seg_len)]
        return int(np.count_nonzero(f < f[0] + self.seg_len)) >= self.seg_len - self.max_missing

    def _emit(self, poses: Poses, ready) -> Windows:
        L, n = self.seg_len, len(ready)
        if n == 0:
            return Windows(poses.camera_id, poses.frame_index, poses.t, np.zeros(0, np.int64), np.zeros(0, np.int64),
                           np.zeros((0, 2), np.float32), np.zeros((0, 2, L, 18), np.float32), poses.events)
        pix = np.empty((n, L, 17, 3), dtype=np.float32)
        centres = np.empty(n, dtype=np.int64)
        anchors = np.empty((n, 2), dtype=np.float32)
        for j, (_, buf) in enumerate(ready):
            idx = buf.last(L)
            frames = buf.frames[idx]
            pix[j] = buf.keypoints[idx]
            centres[j] = frames[0] + L // 2
            k = idx[int(np.argmin(np.abs(frames - centres[j])))]
            anchors[j] = self._ground_point(buf.keypoints[k], buf.boxes[k])
        ids = np.array([tid for tid, _ in ready], dtype=np.int64)
        ok = np.isfinite(pix[..., :2]).all(axis=(1, 2, 3)) & np.isfinite(anchors).all(axis=1)
        if not ok.all():
            # a pose source that reports NaN/inf coordinates must not stop the other tracks
            self.invalid_windows += int(np.count_nonzero(~ok))
            pix, centres, anchors, ids = pix[ok], centres[ok], anchors[ok], ids[ok]
        x = normalize_window(coco17_to_18(pix), self.divisors)
        return Windows(poses.camera_id, poses.frame_index, poses.t, ids, centres, anchors, x, poses.events)

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
