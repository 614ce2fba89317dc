"""Replay recorded pose videos as the pipeline's ``Poses`` records, so everything after perception runs
without a camera or a GPU.

``iter_poses`` yields one record per frame (empty frames included) with ``t = t0 + frame / fps``. A
track's ``STARTED`` event rides on its first frame; ``REMOVED`` rides on the frame after its last one, and
for tracks still present at the end of the video on one closing record (frame ``n_frames``, nobody in
it), so per-track state downstream is always released before the next video on the same camera.

``iter_replay`` plays a whole test set in real-time order: the videos of each camera back to back
(``gap_s`` apart), all cameras interleaved by time, track ids made unique per camera.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from edge.datasets.poselift import PoseVideo
from edge.records import Poses, TrackEvent, TrackEventKind

_EMPTY_KP = np.zeros((0, 17, 3), np.float32)
_EMPTY_BOX = np.zeros((0, 4), np.float32)


def iter_poses(video: PoseVideo, camera_id: str, *, t0: float = 0.0, id_offset: int = 0,
               closing_record: bool = True) -> Iterator[Poses]:
    """Records of ``video`` in frame order; track ids are ``id_offset + person id``."""
    n = int(video.n_frames)
    pids = sorted(video.tracks)
    starts: dict[int, list[int]] = {}
    ends: dict[int, list[int]] = {}
    # per frame: (ids, boxes, keypoints) gathered with one argsort instead of a per-frame search
    if pids:
        fr = np.concatenate([video.tracks[p].frames for p in pids]).astype(np.int64)
        ids = np.concatenate([np.full(len(video.tracks[p]), p, np.int64) for p in pids])
        bx = np.concatenate([video.tracks[p].boxes for p in pids]).astype(np.float32)
        kp = np.concatenate([video.tracks[p].keypoints for p in pids]).astype(np.float32)
        o = np.lexsort((ids, fr))
        fr, ids, bx, kp = fr[o], ids[o], bx[o], kp[o]
        bounds = np.searchsorted(fr, np.arange(n + 1))
        for p in pids:
            f = video.tracks[p].frames
            if len(f):
                starts.setdefault(int(f[0]), []).append(p)
                ends.setdefault(int(f[-1]) + 1, []).append(p)
    else:
        bounds = np.zeros(n + 1, np.int64)
    fps = float(video.fps)
    size = tuple(video.frame_size)
    for f in range(n):
        ev = [TrackEvent(TrackEventKind.REMOVED, camera_id, id_offset + p, f) for p in ends.get(f, ())]
        ev += [TrackEvent(TrackEventKind.STARTED, camera_id, id_offset + p, f) for p in starts.get(f, ())]
        a, b = bounds[f], bounds[f + 1]
        if b > a:
            yield Poses(camera_id, f, t0 + f / fps, ids[a:b] + id_offset, bx[a:b], kp[a:b], tuple(ev), size)
        else:
            yield Poses(camera_id, f, t0 + f / fps, np.zeros(0, np.int64), _EMPTY_BOX, _EMPTY_KP, tuple(ev), size)
    tail = [p for e, ps in ends.items() if e >= n for p in ps]
    if closing_record and tail:
        ev = tuple(TrackEvent(TrackEventKind.REMOVED, camera_id, id_offset + p, n) for p in sorted(tail))
        yield Poses(camera_id, n, t0 + n / fps, np.zeros(0, np.int64), _EMPTY_BOX, _EMPTY_KP, ev, size)


@dataclass(frozen=True)
class ReplayItem:
    """Where one video sits in a replay: its camera, start time and the offset added to its track ids."""

    video: PoseVideo
    camera_id: str
    t0: float
    id_offset: int


def default_camera_id(video: PoseVideo) -> str:
    return f"cam{video.camera}"


def replay_schedule(videos: Iterable[PoseVideo], *, gap_s: float = 1.0,
                    camera_id: Callable[[PoseVideo], str] = default_camera_id) -> list[ReplayItem]:
    """Per camera, the videos back to back in the given order, ``gap_s`` seconds apart."""
    clock: dict[str, float] = {}
    count: dict[str, int] = {}
    items = []
    for v in videos:
        cam = camera_id(v)
        t0 = clock.get(cam, 0.0)
        k = count.get(cam, 0)
        items.append(ReplayItem(v, cam, t0, k << 32))
        clock[cam] = t0 + (v.n_frames + 1) / float(v.fps) + gap_s
        count[cam] = k + 1
    return items


def iter_replay(videos: Iterable[PoseVideo], *, gap_s: float = 1.0,
                camera_id: Callable[[PoseVideo], str] = default_camera_id) -> Iterator[tuple[ReplayItem, Poses]]:
    """All records of ``videos`` in real-time order across cameras, each with the item it came from."""
    items = replay_schedule(videos, gap_s=gap_s, camera_id=camera_id)
    per_cam: dict[str, list[ReplayItem]] = {}
    for it in items:
        per_cam.setdefault(it.camera_id, []).append(it)

    def cam_stream(rank: int, seq: list[ReplayItem]):
        for it in seq:
            for rec in iter_poses(it.video, it.camera_id, t0=it.t0, id_offset=it.id_offset):
                yield (rec.t, rank, it, rec)

    streams = [cam_stream(r, seq) for r, seq in enumerate(per_cam.values())]
    for _, _, it, rec in heapq.merge(*streams, key=lambda x: (x[0], x[1])):
        yield it, rec
