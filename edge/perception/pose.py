"""Top-down pose stage: (Frame, Tracks) -> Poses, batching person crops across people and cameras."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.records import Frame, Poses, TrackEventKind, Tracks
from engines.adapters import pose_adapter


def run_batched(engine, input_name: str, x: np.ndarray, max_batch: int, fixed_batch: int | None
                ) -> dict[str, np.ndarray]:
    """Run ``x`` (N, ...) through the engine in chunks; a fixed-batch model gets padded chunks."""
    n = len(x)
    step = fixed_batch if fixed_batch else max_batch
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, n, step):
        chunk = x[i:i + step]
        m = len(chunk)
        if fixed_batch and m < fixed_batch:
            chunk = np.concatenate([chunk, np.zeros((fixed_batch - m, *chunk.shape[1:]), chunk.dtype)])
        out = engine.infer({input_name: np.ascontiguousarray(chunk)})
        for k, v in out.items():
            parts.setdefault(k, []).append(np.asarray(v)[:m])
    return {k: np.concatenate(v) for k, v in parts.items()}


class PoseEstimator:
    """Keypoints for every tracked box; crops of all people (and cameras) share engine calls.

    With ``reuse_rois`` (BlazePose) a track keeps the region its auxiliary points gave on the
    previous frame and is run once instead of twice; the region is dropped when the track is
    removed or when it no longer lies on the track's box.
    """

    def __init__(self, engine, family: str = "blazepose", max_batch: int = 16, reuse_rois: bool = False,
                 **adapter_options):
        self.engine = engine
        self.family = family
        self.adapter = pose_adapter(family, engine, **adapter_options)
        self.max_batch = max(1, int(max_batch))
        self.reuse_rois = reuse_rois and self.adapter.passes > 1
        self._rois: dict[tuple[str, int], np.ndarray] = {}

    def estimate(self, frame: Frame, tracks: Tracks) -> Poses:
        return self.estimate_many([(frame, tracks)])[0]

    def estimate_many(self, items: Sequence[tuple[Frame, Tracks]]) -> list[Poses]:
        n_pass = self.adapter.passes
        rois, start, kps = [], [], []
        for frame, tracks in items:
            if frame.camera_id != tracks.camera_id or frame.frame_index != tracks.frame_index:
                raise ValueError(f"tracks of camera {tracks.camera_id!r} frame {tracks.frame_index} paired with "
                                 f"frame {frame.frame_index} of camera {frame.camera_id!r}")
            img = frame.image
            if not (isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8):
                raise ValueError(f"camera {frame.camera_id!r} frame {frame.frame_index}: expected an H x W x 3 "
                                 f"uint8 image, got {getattr(img, 'shape', None)} {getattr(img, 'dtype', None)}")
            r = self.adapter.initial_rois(tracks.boxes)
            s = np.zeros(len(r), dtype=np.int64)
            if self.reuse_rois:
                self._drop_removed(tracks)
                for i, tid in enumerate(tracks.track_ids.tolist()):
                    prev = self._rois.get((tracks.camera_id, tid))
                    if prev is not None and _on_box(prev, tracks.boxes[i]):
                        r[i] = prev
                        s[i] = n_pass - 1
            rois.append(r)
            start.append(s)
            kps.append(np.zeros((len(r), 17, 3), np.float32))
        for p in range(n_pass):
            active = [np.nonzero(s <= p)[0] for s in start]
            crops, affines, owners = [], [], []
            for j, (frame, _) in enumerate(items):
                if active[j].size:
                    x, m = self.adapter.crop(frame.image, rois[j][active[j]])
                    crops.append(x)
                    affines.append(m)
                    owners.append(j)
            if not crops:
                continue
            x = np.concatenate(crops)
            out = run_batched(self.engine, self.adapter.input_name, x, self.max_batch, self.adapter.fixed_batch)
            lo = 0
            for j, m in zip(owners, affines):
                hi = lo + len(m)
                kp, nxt = self.adapter.decode({k: v[lo:hi] for k, v in out.items()}, m)
                idx = active[j]
                kps[j][idx] = kp
                if nxt is not None:
                    found = (kp[..., 2].max(axis=1) > 0) & np.isfinite(nxt).all(axis=1) & (nxt[:, 2] > 1)
                    rois[j][idx[found]] = nxt[found]
                lo = hi
        results = []
        for (frame, tracks), kp, r in zip(items, kps, rois):
            if self.reuse_rois:
                for i, tid in enumerate(tracks.track_ids.tolist()):
                    self._rois[(tracks.camera_id, tid)] = r[i].copy()
            h, w = frame.image.shape[:2]
            results.append(Poses(camera_id=tracks.camera_id, frame_index=tracks.frame_index, t=tracks.t,
                                 track_ids=tracks.track_ids, boxes=tracks.boxes, keypoints=kp,
                                 events=tracks.events, frame_size=(w, h)))
        return results

    def _drop_removed(self, tracks: Tracks) -> None:
        for ev in tracks.events:
            if ev.kind == TrackEventKind.REMOVED:
                self._rois.pop((ev.camera_id, ev.track_id), None)


def _on_box(roi: np.ndarray, box: np.ndarray) -> bool:
    """A kept region still describes the box: its centre inside it and its size comparable."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy, side = float(roi[0]), float(roi[1]), float(roi[2])
    longest = max(x2 - x1, y2 - y1, 1.0)
    return x1 <= cx <= x2 and y1 <= cy <= y2 and 0.5 * longest <= side <= 3.0 * longest
