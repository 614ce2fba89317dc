"""Replaying PoseLift videos as pipeline records."""

from __future__ import annotations

import numpy as np

from edge.datasets.poselift import PoseVideo, Track
from edge.records import Poses, TrackEventKind
from edge.sources.replay import iter_poses, iter_replay, replay_schedule


def _video(name="1_5", n=12, spans=None, fps=15.0):
    spans = spans or {4: [0, 1, 2, 5, 6], 46: [3, 4, 5, 11]}
    tracks = {}
    for pid, frames in spans.items():
        f = np.asarray(frames, np.int64)
        kp = np.zeros((len(f), 17, 3), np.float64)
        kp[..., 0] = pid * 10 + f[:, None]
        kp[..., 1] = np.arange(17)
        kp[..., 2] = 0.9
        boxes = np.tile(np.array([1.0, 2.0, 3.0, 4.0]), (len(f), 1)) + f[:, None]
        tracks[pid] = Track(f, kp, boxes)
    return PoseVideo(name=name, camera=int(name.split("_")[0]), n_frames=n, fps=fps, tracks=tracks)


def test_every_frame_in_order_with_times_and_dtypes():
    v = _video()
    recs = list(iter_poses(v, "cam1"))
    assert all(isinstance(r, Poses) for r in recs)
    assert [r.frame_index for r in recs] == list(range(12)) + [12]  # closing record for track 46
    assert all(r.camera_id == "cam1" for r in recs)
    np.testing.assert_allclose([r.t for r in recs], np.arange(13) / 15.0)
    assert [r.track_ids.tolist() for r in recs[:7]] == [[4], [4], [4], [46], [46], [4, 46], [4]]
    assert len(recs[7]) == 0 and recs[7].keypoints.shape == (0, 17, 3)  # an empty frame is still a record
    r5 = recs[5]
    assert r5.keypoints.dtype == np.float32 and r5.boxes.dtype == np.float32 and r5.track_ids.dtype == np.int64
    np.testing.assert_array_equal(r5.keypoints[1, :, 0], np.full(17, 465.0))
    np.testing.assert_array_equal(r5.boxes[0], [6, 7, 8, 9])


def test_track_events_started_and_removed():
    recs = list(iter_poses(_video(), "cam1"))
    ev = [(r.frame_index, e.kind, e.track_id) for r in recs for e in r.events]
    assert ev == [(0, TrackEventKind.STARTED, 4), (3, TrackEventKind.STARTED, 46),
                  (7, TrackEventKind.REMOVED, 4), (12, TrackEventKind.REMOVED, 46)]
    # REMOVED comes after the last pose of the track, never with it
    for r in recs:
        for e in r.events:
            if e.kind == TrackEventKind.REMOVED:
                assert e.track_id not in r.track_ids


def test_no_closing_record_when_tracks_end_early_and_offsets():
    v = _video(spans={7: [1, 2]}, n=5)
    recs = list(iter_poses(v, "c", t0=100.0, id_offset=1 << 32))
    assert len(recs) == 5
    assert recs[1].track_ids.tolist() == [(1 << 32) + 7]
    assert recs[3].events[0].kind == TrackEventKind.REMOVED and recs[3].events[0].track_id == (1 << 32) + 7
    assert abs(recs[4].t - (100 + 4 / 15)) < 1e-9
    empty = PoseVideo(name="2_1", camera=2, n_frames=3)
    assert [len(r) for r in iter_poses(empty, "c")] == [0, 0, 0]


def test_replay_interleaves_cameras_in_time_order_with_unique_ids():
    vids = [_video("1_5"), _video("2_6", n=20), _video("1_7", n=12)]
    items = replay_schedule(vids, gap_s=1.0)
    assert [(i.camera_id, i.id_offset) for i in items] == [("cam1", 0), ("cam2", 0), ("cam1", 1 << 32)]
    assert items[2].t0 > 12 / 15.0  # after the first video of its camera, with the gap
    out = list(iter_replay(vids, gap_s=1.0))
    ts = [r.t for _, r in out]
    assert ts == sorted(ts)
    per_cam = {}
    for it, r in out:
        per_cam.setdefault(r.camera_id, []).append((it.video.name, r.frame_index))
    assert per_cam["cam1"][:13] == [("1_5", f) for f in range(13)]
    assert per_cam["cam1"][13:] == [("1_7", f) for f in range(13)]
    assert len(per_cam["cam2"]) == 20
    ids = {(r.camera_id, int(t)) for it, r in out if it.video.name == "1_7" for t in r.track_ids}
    ids_first = {(r.camera_id, int(t)) for it, r in out if it.video.name == "1_5" for t in r.track_ids}
    assert ids and not ids & ids_first
