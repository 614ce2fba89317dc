"""The typed values that flow between pipeline stages.

Data flows one way: source -> perception -> tracking -> filtering -> windowing -> scoring ->
alerting -> transport. Every stage takes one of these records and returns another; none of them
holds a reference to a neighbouring stage. Arrays are contiguous numpy arrays with fixed dtypes so
that Numba kernels can take them without copies.

Conventions:
- boxes are ``(N, 4)`` float32 ``x1, y1, x2, y2`` in frame pixels;
- keypoints are ``(N, 17, 3)`` float32 ``x, y, confidence`` in frame pixels, COCO-17 order;
- track ids are int64 per-session pseudonyms (random), never the tracker's internal counter;
- ``t`` is monotonic seconds (``time.monotonic()`` on a device, frame_index / fps in a replay).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
NUM_KEYPOINTS = 17


def _f32(a, shape_tail: tuple[int, ...]) -> np.ndarray:
    arr = np.ascontiguousarray(a, dtype=np.float32)
    if arr.size == 0:
        arr = arr.reshape((0, *shape_tail))
    if arr.shape[1:] != shape_tail:
        raise ValueError(f"expected shape (N, {', '.join(map(str, shape_tail))}), got {arr.shape}")
    return arr


def _ids(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64).reshape(-1)


@dataclass(frozen=True)
class Frame:
    """One decoded camera frame (BGR uint8, H x W x 3). Never leaves the device."""

    camera_id: str
    frame_index: int
    t: float
    image: np.ndarray


@dataclass(frozen=True)
class Detections:
    """Person detections of one frame."""

    camera_id: str
    frame_index: int
    t: float
    boxes: np.ndarray
    scores: np.ndarray
    frame_size: tuple[int, int] = (1920, 1080)  # (width, height)

    def __post_init__(self):
        object.__setattr__(self, "boxes", _f32(self.boxes, (4,)))
        object.__setattr__(self, "scores", np.ascontiguousarray(self.scores, dtype=np.float32).reshape(-1))
        if len(self.scores) != len(self.boxes):
            raise ValueError(f"{len(self.boxes)} boxes but {len(self.scores)} scores")

    def __len__(self) -> int:
        return len(self.boxes)


class TrackEventKind(str, Enum):
    STARTED = "started"
    LOST = "lost"
    REMOVED = "removed"


@dataclass(frozen=True)
class TrackEvent:
    """A track lifecycle change, so later stages can create or drop per-track state."""

    kind: TrackEventKind
    camera_id: str
    track_id: int
    frame_index: int


@dataclass(frozen=True)
class Tracks:
    """Tracked boxes of one frame (the tracker's Kalman-updated boxes) and lifecycle events."""

    camera_id: str
    frame_index: int
    t: float
    track_ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    events: tuple[TrackEvent, ...] = ()
    frame_size: tuple[int, int] = (1920, 1080)

    def __post_init__(self):
        object.__setattr__(self, "track_ids", _ids(self.track_ids))
        object.__setattr__(self, "boxes", _f32(self.boxes, (4,)))
        object.__setattr__(self, "scores", np.ascontiguousarray(self.scores, dtype=np.float32).reshape(-1))
        if not (len(self.track_ids) == len(self.boxes) == len(self.scores)):
            raise ValueError("track_ids, boxes and scores differ in length")

    def __len__(self) -> int:
        return len(self.track_ids)


@dataclass(frozen=True)
class Poses:
    """Keypoints of the tracked people in one frame.

    ``keypoints[i]`` belongs to ``track_ids[i]``. A missing keypoint has confidence 0.
    """

    camera_id: str
    frame_index: int
    t: float
    track_ids: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray
    events: tuple[TrackEvent, ...] = ()
    frame_size: tuple[int, int] = (1920, 1080)

    def __post_init__(self):
        object.__setattr__(self, "track_ids", _ids(self.track_ids))
        object.__setattr__(self, "boxes", _f32(self.boxes, (4,)))
        object.__setattr__(self, "keypoints", _f32(self.keypoints, (NUM_KEYPOINTS, 3)))
        if not (len(self.track_ids) == len(self.boxes) == len(self.keypoints)):
            raise ValueError("track_ids, boxes and keypoints differ in length")

    def __len__(self) -> int:
        return len(self.track_ids)


@dataclass(frozen=True)
class Windows:
    """Normalized pose windows ready for the scorer: ``x`` is ``(N, 2, T, 18)`` float32.

    ``centre_frames[i]`` is the frame the window's score is attributed to (start + T // 2) and
    ``anchors[i]`` the person's ground point (image pixels) at that frame, for alert zones.
    """

    camera_id: str
    frame_index: int
    t: float
    track_ids: np.ndarray
    centre_frames: np.ndarray
    anchors: np.ndarray
    x: np.ndarray
    events: tuple[TrackEvent, ...] = ()  # the frame's track events, passed on so later stages can drop state

    def __post_init__(self):
        object.__setattr__(self, "track_ids", _ids(self.track_ids))
        object.__setattr__(self, "centre_frames", _ids(self.centre_frames))
        object.__setattr__(self, "anchors", _f32(self.anchors, (2,)))
        x = np.ascontiguousarray(self.x, dtype=np.float32)
        if x.size == 0:
            x = x.reshape(0, 2, 24, 18)
        if x.ndim != 4 or x.shape[1] != 2 or x.shape[3] != 18:
            raise ValueError(f"windows must be (N, 2, T, 18), got {x.shape}")
        object.__setattr__(self, "x", x)

    def __len__(self) -> int:
        return len(self.track_ids)


@dataclass(frozen=True)
class Scores:
    """Anomaly scores per window: NLL in bits per dimension (higher = more anomalous)."""

    camera_id: str
    frame_index: int
    t: float
    track_ids: np.ndarray
    centre_frames: np.ndarray
    anchors: np.ndarray
    nll: np.ndarray
    events: tuple[TrackEvent, ...] = ()  # the frame's track events (alerting ends alerts of removed tracks)

    def __post_init__(self):
        object.__setattr__(self, "track_ids", _ids(self.track_ids))
        object.__setattr__(self, "centre_frames", _ids(self.centre_frames))
        object.__setattr__(self, "anchors", _f32(self.anchors, (2,)))
        object.__setattr__(self, "nll", np.ascontiguousarray(self.nll, dtype=np.float32).reshape(-1))

    def __len__(self) -> int:
        return len(self.track_ids)


class AlertPhase(str, Enum):
    NEW = "new"
    UPDATE = "update"
    END = "end"


@dataclass(frozen=True)
class AlertEvent:
    """One step of an alert's lifecycle: new, then any number of updates, then end (always)."""

    alert_id: str
    event: AlertPhase
    camera_id: str
    track_id: int
    started_t: float
    t: float
    frame_index: int
    score: float
    peak_score: float
    threshold: float
    zone: str | None = None
    reason: str = field(default="")
