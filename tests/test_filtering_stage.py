"""Live PoseFilter stage: same result as the offline functions, delay, state lifetime, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from edge.config import FilteringConfig
from edge.filtering import PoseFilter, filter_track
from edge.records import Poses, TrackEvent, TrackEventKind

MODES = ("centered", "causal", "causal_mean", "one_euro")


def random_tracks(seed=0, n_frames=90):
    """Three tracks with jittery random walks, low-confidence and NaN keypoints, short and long gaps."""
    rng = np.random.default_rng(seed)
    tracks = {}
    for tid, (a, b) in {11: (0, 90), 22: (5, 60), 33: (30, 88)}.items():
        fr = np.arange(a, b)
        n = len(fr)
        kp = np.zeros((n, 17, 3), np.float32)
        kp[:, :, 0] = 400 + np.cumsum(rng.normal(0, 4, (n, 17)), 0)
        kp[:, :, 1] = 300 + np.cumsum(rng.normal(0, 4, (n, 17)), 0)
        kp[:, :, 2] = rng.uniform(0.05, 1.0, (n, 17))
        kp[rng.random((n, 17)) < 0.02, 0] = np.nan
        keep = rng.random(n) > 0.12
        keep[:2] = True
        if tid == 11:
            keep[40:52] = False  # longer than max_gap
        tracks[tid] = (fr[keep], kp[keep])
    return tracks


def stream(tracks, n_frames, events=None, camera="cam-1", skip=()):
    boxes_of = lambda kp: np.c_[kp[:, :, 0].min(1), kp[:, :, 1].min(1), kp[:, :, 0].max(1), kp[:, :, 1].max(1)]
    for f in range(n_frames):
        if f in skip:
            continue
        ids, kps, boxes = [], [], []
        for tid, (fr, kp) in tracks.items():
            hit = np.flatnonzero(fr == f)
            if len(hit):
                ids.append(tid)
                kps.append(kp[hit[0]])
                boxes.append(np.nan_to_num(boxes_of(kp[hit[0]][None])[0]))
        yield Poses(camera, f, f / 15.0, np.array(ids, np.int64), np.array(boxes).reshape(-1, 4),
                    np.array(kps).reshape(-1, 17, 3), tuple((events or {}).get(f, ())))


def run_live(cfg, records):
    pf = PoseFilter(cfg, 15.0)
    out = [o for o in (pf.update(p) for p in records) if o is not None]
    return pf, out + pf.flush()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("max_gap", [0, 3, 8])
def test_live_equals_offline(mode, max_gap):
    cfg = FilteringConfig(smoother=mode, max_gap=max_gap, window=8)
    tracks = random_tracks()
    _, out = run_live(cfg, stream(tracks, 90))
    assert [o.frame_index for o in out] == list(range(90))
    for tid, (fr, kp) in tracks.items():
        off = filter_track(fr, kp, cfg, 15.0)
        exp = {int(f): k for f, k, p in zip(off.frames, off.keypoints, off.present) if p}
        got = {o.frame_index: o.keypoints[list(o.track_ids).index(tid)] for o in out if tid in o.track_ids}
        assert sorted(got) == sorted(exp), (tid, sorted(set(got) ^ set(exp)))
        err = max(float(np.abs(got[f] - exp[f]).max()) for f in got)
        assert err == 0.0, (tid, err)
        assert np.isfinite(np.stack(list(got.values()))).all()


@pytest.mark.parametrize("mode", MODES)
def test_live_equals_offline_with_dropped_frames(mode):
    """Frames the camera never delivered are gaps of every track; the delay line counts records."""
    cfg = FilteringConfig(smoother=mode, max_gap=4, window=6)
    tracks = random_tracks(seed=3)
    skip = {15, 16, 17, 50}
    tracks = {t: (fr[~np.isin(fr, list(skip))], kp[~np.isin(fr, list(skip))]) for t, (fr, kp) in tracks.items()}
    _, out = run_live(cfg, stream(tracks, 90, skip=skip))
    for tid, (fr, kp) in tracks.items():
        off = filter_track(fr, kp, cfg, 15.0)
        exp = {int(f): k for f, k, p in zip(off.frames, off.keypoints, off.present) if p and f not in skip}
        got = {o.frame_index: o.keypoints[list(o.track_ids).index(tid)] for o in out if tid in o.track_ids}
        assert sorted(got) == sorted(exp)
        assert max(float(np.abs(got[f] - exp[f]).max()) for f in got) == 0.0


def test_centered_delay_and_bridged_frames():
    cfg = FilteringConfig(smoother="centered", max_gap=3, window=8)
    pf = PoseFilter(cfg, 15.0)
    assert pf.delay == 4 + 3
    fr = np.r_[np.arange(0, 10), np.arange(12, 30)]  # frames 10, 11 missing: bridged
    kp = np.zeros((len(fr), 17, 3), np.float32)
    kp[:, :, 0] = fr[:, None] * 2.0
    kp[:, :, 1] = 50
    kp[:, :, 2] = 0.9
    recs = list(stream({5: (fr, kp)}, 30))
    outs = [pf.update(p) for p in recs]
    assert outs[:7] == [None] * 7
    assert [o.frame_index for o in outs[7:]] == list(range(23))
    assert all(o.t == pytest.approx(o.frame_index / 15.0) for o in outs[7:])
    for o in outs[7:]:
        assert list(o.track_ids) == [5]
        np.testing.assert_allclose(o.keypoints[0, :, 0], 2.0 * o.frame_index, atol=1e-4)
    np.testing.assert_allclose(outs[7 + 10].boxes[0], [20.0, 50.0, 20.0, 50.0], atol=1e-4)  # interpolated box
    rest = pf.flush()
    assert [o.frame_index for o in rest] == list(range(23, 30))
    assert pf.n_tracks == 0


def test_causal_modes_have_no_delay_and_keep_order_boxes_events():
    tracks = random_tracks(seed=1)
    ev = {10: (TrackEvent(TrackEventKind.STARTED, "cam-1", 22, 10),)}
    for mode in ("none", "causal", "causal_mean", "one_euro"):
        pf = PoseFilter(FilteringConfig(smoother=mode), 15.0)
        assert pf.delay == 0
        for p in stream(tracks, 40, events=ev):
            o = pf.update(p)
            assert o.frame_index == p.frame_index and o.t == p.t and o.events == p.events
            assert np.array_equal(o.track_ids, p.track_ids) and np.array_equal(o.boxes, p.boxes)
            assert np.isfinite(o.keypoints).all()
            low = ~(p.keypoints[:, :, 2] >= 0.2) | ~np.isfinite(p.keypoints).all(-1)
            assert (o.keypoints[:, :, 2][low] == 0).all()
        assert pf.flush() == []


def test_none_mode_passes_measurements_through():
    tracks = random_tracks(seed=2)
    pf = PoseFilter(FilteringConfig(smoother="none", min_confidence=0.2), 15.0)
    for p in stream(tracks, 30):
        o = pf.update(p)
        ok = np.isfinite(p.keypoints).all(-1) & (p.keypoints[:, :, 2] >= 0.2)
        np.testing.assert_array_equal(o.keypoints[ok], p.keypoints[ok])


@pytest.mark.parametrize("mode", MODES)
def test_state_dropped_on_removal_and_after_silence(mode):
    cfg = FilteringConfig(smoother=mode, max_gap=2, window=4)
    tracks = random_tracks(seed=4)
    ev = {59: (TrackEvent(TrackEventKind.REMOVED, "cam-1", 22, 59),)}  # track 22 ends at frame 59
    pf = PoseFilter(cfg, 15.0)
    seen = []
    for p in stream(tracks, 90, events=ev):
        pf.update(p)
        seen.append(pf.n_tracks)
    # after the removal record left the delay line, only 11 and 33 remain
    assert seen[59 + pf.delay] == 2
    pf.flush()
    assert pf.n_tracks == 0


@pytest.mark.parametrize("mode", MODES)
def test_silent_track_is_evicted_without_an_event(mode):
    cfg = FilteringConfig(smoother=mode, max_gap=2, window=4)
    pf = PoseFilter(cfg, 15.0)
    kp = np.full((1, 17, 3), 0.9, np.float32)
    for f in range(10):
        pf.update(Poses("c", f, f / 15, [7], np.zeros((1, 4)), kp))
    counts = []
    for f in range(10, 40):
        pf.update(Poses("c", f, f / 15, np.zeros(0), np.zeros((0, 4)), np.zeros((0, 17, 3))))
        counts.append(pf.n_tracks)
    reach = 2 * pf.delay + cfg.window + cfg.max_gap + 1
    assert counts[0] == 1 and counts[reach] == 0


def test_removed_track_restarts_fresh():
    cfg = FilteringConfig(smoother="one_euro")
    pf = PoseFilter(cfg, 15.0)
    kp = np.full((1, 17, 3), 0.9, np.float32)
    kp[..., :2] = 100
    pf.update(Poses("c", 0, 0.0, [1], np.zeros((1, 4)), kp))
    pf.update(Poses("c", 1, 0.1, [1], np.zeros((1, 4)), kp, (TrackEvent(TrackEventKind.REMOVED, "c", 1, 1),)))
    assert pf.n_tracks == 0
    kp2 = kp.copy()
    kp2[..., :2] = 300
    o = pf.update(Poses("c", 2, 0.2, [1], np.zeros((1, 4)), kp2))
    np.testing.assert_allclose(o.keypoints[0, :, :2], 300)  # no memory of the removed track


def test_bad_stream_is_named():
    pf = PoseFilter(FilteringConfig(), 15.0)
    kp = np.full((1, 17, 3), 0.9, np.float32)
    pf.update(Poses("a", 5, 0.0, [1], np.zeros((1, 4)), kp))
    with pytest.raises(ValueError, match="frame 5 does not follow frame 5"):
        pf.update(Poses("a", 5, 0.0, [1], np.zeros((1, 4)), kp))
    with pytest.raises(ValueError, match="per camera: got camera 'b'"):
        pf.update(Poses("b", 6, 0.0, [1], np.zeros((1, 4)), kp))
    with pytest.raises(ValueError, match=r"frame 7: duplicate track ids \[3\]"):
        pf.update(Poses("a", 7, 0.0, [3, 3], np.zeros((2, 4)), np.repeat(kp, 2, 0)))
    with pytest.raises(ValueError, match="fps must be > 0"):
        PoseFilter(FilteringConfig(), 0)


@pytest.mark.parametrize("mode", MODES)
def test_replay_of_two_videos_on_one_camera(mode):
    """A replay restarts frame numbers for the next video: a new segment, each video as offline."""
    from edge.datasets.poselift import PoseVideo, Track
    from edge.sources.replay import iter_poses

    cfg = FilteringConfig(smoother=mode, max_gap=3)
    videos = []
    for seed, n in ((5, 90), (6, 20)):  # the second one shorter than the delay line
        tracks = {tid: Track(fr, kp, np.zeros((len(fr), 4), np.float32))
                  for tid, (fr, kp) in random_tracks(seed=seed).items() if (fr < n).sum() > 1}
        tracks = {t: Track(tr.frames[tr.frames < n], tr.keypoints[tr.frames < n], tr.boxes[tr.frames < n])
                  for t, tr in tracks.items()}
        videos.append(PoseVideo(name=f"1_{seed}", camera=1, n_frames=n, tracks=tracks))
    records = [r for k, v in enumerate(videos) for r in iter_poses(v, "cam1", id_offset=k << 32)]
    pf, out = run_live(cfg, records)
    assert pf.n_tracks == 0 and len(out) == len(records)
    for k, v in enumerate(videos):
        for pid, tr in v.tracks.items():
            tid = (k << 32) + pid
            off = filter_track(tr.frames, tr.keypoints, cfg, 15.0)
            exp = {int(f): kp for f, kp, p in zip(off.frames, off.keypoints, off.present) if p}
            got = {o.frame_index: o.keypoints[list(o.track_ids).index(tid)] for o in out if tid in o.track_ids}
            assert sorted(got) == sorted(exp)
            assert max(float(np.abs(got[f] - exp[f]).max()) for f in got) == 0.0


@pytest.mark.parametrize("mode", MODES)
def test_many_tracks_grow_the_slabs_and_reuse_slots(mode):
    cfg = FilteringConfig(smoother=mode, max_gap=2, window=4)
    rng = np.random.default_rng(9)
    tracks = {}
    for tid in range(40):  # more than the initial slots, with turnover
        a = int(rng.integers(0, 60))
        fr = np.arange(a, a + int(rng.integers(3, 40)))
        fr = fr[rng.random(len(fr)) > 0.15]
        kp = rng.uniform(0, 500, (len(fr), 17, 3)).astype(np.float32)
        kp[:, :, 2] = rng.uniform(0.1, 1, (len(fr), 17))
        tracks[1000 + tid] = (fr, kp)
    pf, out = run_live(cfg, stream(tracks, 110))
    for tid, (fr, kp) in tracks.items():
        off = filter_track(fr, kp, cfg, 15.0)
        exp = {int(f): k for f, k, p in zip(off.frames, off.keypoints, off.present) if p}
        got = {o.frame_index: o.keypoints[list(o.track_ids).index(tid)] for o in out if tid in o.track_ids}
        assert sorted(got) == sorted(exp)
        assert all(np.array_equal(got[f], exp[f]) for f in got)
