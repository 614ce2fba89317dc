"""The anonymized keypoint stream: track pseudonyms, normalization, sampling and batching.

Per camera, frames are sampled to at most ``sample_fps`` and grouped into batches of at most
``1 / max_hz`` seconds of camera time (buckets aligned to ``floor(t * max_hz)``, so a replay cuts the
same batches every time). Coordinates are divided by the frame size and clipped to [0, 1], rounded
to 4 decimals (confidences to 3). Frames with nobody in them are not sent.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
from collections import OrderedDict

import numpy as np

from edge.records import Poses
from edge.transport.messages import MAX_FRAMES_PER_BATCH, MAX_TRACKS_PER_FRAME


class Pseudonyms:
    """``track -> hex16`` via HMAC-SHA256 with a key that never leaves the device. A fresh random
    key per process unless one is given (a replay keeps its key so a resumed run maps alike)."""

    def __init__(self, key: bytes | None = None, cache: int = 4096):
        self.key = key if key is not None else secrets.token_bytes(32)
        self._cache: OrderedDict[tuple[str, int], str] = OrderedDict()
        self._size = cache
        self._lock = threading.Lock()

    def __call__(self, camera_id: str, track_id: int) -> str:
        k = (camera_id, int(track_id))
        with self._lock:
            v = self._cache.get(k)
            if v is None:
                v = hmac.new(self.key, f"{camera_id}/{k[1]}".encode(), hashlib.sha256).hexdigest()[:16]
                self._cache[k] = v
                if len(self._cache) > self._size:
                    self._cache.popitem(last=False)
            return v


def _unit(a: np.ndarray, scale: np.ndarray, decimals: int) -> np.ndarray:
    a = np.nan_to_num(a.astype(np.float64) / scale, nan=0.0, posinf=1.0, neginf=0.0)
    return np.round(np.clip(a, 0.0, 1.0), decimals)


def normalize_frame(poses: Poses, pseudonym, max_tracks: int = MAX_TRACKS_PER_FRAME) -> list[dict]:
    """Tracks of one frame as plain python values, ready for :class:`PoseTrack`."""
    w, h = poses.frame_size
    n = min(len(poses), max_tracks)
    if n == 0:
        return []
    kp = poses.keypoints[:n]
    xy = _unit(kp[..., :2], np.array([w, h], np.float64), 4)
    c = _unit(kp[..., 2:3], np.array([1.0]), 3)
    kp_flat = np.concatenate([xy, c], axis=-1).reshape(n, 51)
    box = _unit(poses.boxes[:n], np.array([w, h, w, h], np.float64), 4)
    return [{"track": pseudonym(poses.camera_id, tid), "box": b, "kp": k}
            for tid, b, k in zip(poses.track_ids[:n].tolist(), box.tolist(), kp_flat.tolist())]


class PoseBatcher:
    """Collects frames per camera; ``add`` returns the batches that are complete."""

    def __init__(self, max_hz: float, sample_fps: float, pseudonym):
        if max_hz <= 0 or sample_fps <= 0:
            raise ValueError("max_hz and sample_fps must be positive")
        self.max_hz = float(max_hz)
        self.sample_fps = float(sample_fps)
        self.pseudonym = pseudonym
        self._open: dict[str, dict] = {}
        self._last_slot: dict[str, int] = {}
        self.truncated_tracks = 0
        self._lock = threading.Lock()

    def add(self, poses: Poses) -> list[dict]:
        cam = poses.camera_id
        bucket = math.floor(poses.t * self.max_hz)
        slot = math.floor(poses.t * self.sample_fps)
        done = []
        with self._lock:
            cur = self._open.get(cam)
            if cur is not None and (bucket != cur["bucket"] or len(cur["frames"]) >= MAX_FRAMES_PER_BATCH
                                    or tuple(poses.frame_size) != tuple(cur["frame_size"])):
                done.append(self._close(cam))
                cur = None
            if len(poses) == 0 or self._last_slot.get(cam) == slot:
                return done
            self._last_slot[cam] = slot
            if len(poses) > MAX_TRACKS_PER_FRAME:
                self.truncated_tracks += len(poses) - MAX_TRACKS_PER_FRAME
            frame = {"frame_index": int(poses.frame_index), "t": round(float(poses.t), 3),
                     "tracks": normalize_frame(poses, self.pseudonym)}
            if cur is None:
                cur = self._open[cam] = {"camera_id": cam, "bucket": bucket,
                                         "frame_size": [int(poses.frame_size[0]), int(poses.frame_size[1])],
                                         "frames": []}
            cur["frames"].append(frame)
        return done

    def flush(self) -> list[dict]:
        """Close every open batch (end of stream, shutdown)."""
        with self._lock:
            return [self._close(cam) for cam in list(self._open)]

    def _close(self, cam: str) -> dict:
        b = self._open.pop(cam)
        b.pop("bucket")
        return b
