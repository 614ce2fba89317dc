"""Live per-track windows agree with the offline reference cutting, and keep their state in bounds."""

from __future__ import annotations

import numpy as np
import pytest

from edge.records import Poses, TrackEvent, TrackEventKind
from edge.windowing.live import LiveWindows
from edge.windowing.stgnf import model_input, track_windows

L = 24


def make_track(seed: int, n: int = 200, missing=(40, 60, 61, 62, 100, 101, 102, 103, 150, 151)):
    rng = np.random.default_rng(seed)
    frames = np.setdiff1d(np.arange(n), missing)
    kp = np.empty((len(frames), 17, 3), np.float32)
    kp[..., 0] = rng.uniform(300, 900, (len(frames), 17))
    kp[..., 1] = rng.uniform(100, 700, (len(frames), 17))
    kp[..., 2] = rng.uniform(0.3, 1.0, (len(frames), 17))
    boxes = np.stack([kp[..., 0].min(1), kp[..., 1].min(1), kp[..., 0].max(1), kp[..., 1].max(1)], 1)
    return frames, kp, boxes


def feed(builder, frames, kp, boxes, track=7, cam="cam1"):
    out = []
    for f, k, b in zip(frames, kp, boxes):
        w = builder.update(Poses(cam, int(f), f / 15.0, [track], [b], k[None]))
        assert w.camera_id == cam and w.frame_index == f
        out.append(w)
    return out


@pytest.mark.parametrize("stride", [1, 2, 6])
def test_live_windows_equal_offline_reference(stride):
    frames, kp, boxes = make_track(0)
    wins = feed(LiveWindows(L, stride, (856, 480)), frames, kp, boxes)
    x = np.concatenate([w.x for w in wins])
    centres = np.concatenate([w.centre_frames for w in wins])
    starts, ref_pix = track_windows(frames, kp, L, stride)
    ref = model_input(ref_pix, (856, 480))
    assert len(ref) > 10
    # the reference never cuts a track's last possible window; live tracks have no known end, so the
    # live builder emits it as well: exactly one window more (when it falls on the stride and is kept)
    n_last = len(frames) - L
    extra = 1 if n_last % stride == 0 else 0
    assert len(x) == len(ref) + extra
    np.testing.assert_array_equal(x[:len(ref)], ref)
    np.testing.assert_array_equal(centres[:len(ref)], starts + L // 2)
    if extra:
        assert centres[-1] == frames[n_last] + L // 2
    # every window is emitted on the frame of its last detection
    emitted_at = np.concatenate([[w.frame_index] * len(w) for w in wins])
    first_det = np.searchsorted(frames, centres - L // 2)
    np.testing.assert_array_equal(emitted_at, frames[first_det + L - 1])


def test_gap_longer_than_two_frames_breaks_windows():
    frames = np.concatenate([np.arange(0, 30), np.arange(33, 70)])  # 3 missing frames
    _, kp, boxes = make_track(1, n=70, missing=(30, 31, 32))
    wins = feed(LiveWindows(L), frames, kp, boxes)
    starts = np.concatenate([w.centre_frames for w in wins]) - L // 2
    ref_starts, _ = track_windows(frames, kp, L)
    np.testing.assert_array_equal(starts[:len(ref_starts)], ref_starts)
    # a window is kept while at most two of its detections come after the gap
    assert {7, 8} <= set(starts.tolist())  # one or two detections after the gap
    assert set(range(9, 33)).isdisjoint(starts.tolist())


def test_short_track_gives_no_window_until_seg_len_detections():
    frames, kp, boxes = make_track(2, n=L, missing=())
    wins = feed(LiveWindows(L), frames, kp, boxes)
    assert [len(w) for w in wins] == [0] * (L - 1) + [1]  # offline: none at all for 24 detections


def test_anchor_is_ground_point_at_centre_frame():
    frames, kp, boxes = make_track(3, n=30, missing=())
    kp[:, 15, :] = [400, 600, 0.9]
    kp[:, 16, :] = [420, 610, 0.9]
    kp[12, 16, 2] = 0.05  # right ankle unreliable at the first window's centre frame
    kp[13, 15:, 2] = 0.0  # no ankles at all at the next one: box bottom-centre
    wins = [w for w in feed(LiveWindows(L, min_confidence=0.2), frames, kp, boxes) if len(w)]
    assert wins[0].centre_frames[0] == 12
    np.testing.assert_allclose(wins[0].anchors[0], [400, 600])
    np.testing.assert_allclose(wins[1].anchors[0], [(boxes[13, 0] + boxes[13, 2]) / 2, boxes[13, 3]])
    np.testing.assert_allclose(wins[2].anchors[0], [410, 605])


def test_cameras_and_tracks_are_independent_and_removed_state_dropped():
    lw = LiveWindows(L)
    frames, kp, boxes = make_track(4, n=40, missing=())
    for f, k, b in zip(frames, kp, boxes):
        w1 = lw.update(Poses("cam1", int(f), f / 15, [1, 2], [b, b], np.stack([k, k])))
        w2 = lw.update(Poses("cam2", int(f), f / 15, [1], [b], k[None]))
        if f >= L - 1:
            assert w1.track_ids.tolist() == [1, 2] and w2.track_ids.tolist() == [1]
            np.testing.assert_array_equal(w1.x[0], w2.x[0])
    assert lw.tracks == 3
    removed = (TrackEvent(TrackEventKind.REMOVED, "cam1", 1, 40),)
    w = lw.update(Poses("cam1", 40, 40 / 15, [2], [boxes[0]], kp[:1], removed))
    assert w.events == removed  # events travel on to scoring and alerting
    assert lw.tracks == 2
    # a reused id starts from scratch
    w = lw.update(Poses("cam1", 41, 41 / 15, [1], [boxes[0]], kp[:1]))
    assert 1 not in w.track_ids.tolist()


def test_idle_tracks_are_purged_and_out_of_order_frames_dropped():
    lw = LiveWindows(L, idle_frames=50)
    frames, kp, boxes = make_track(5, n=10, missing=())
    feed(lw, frames, kp, boxes, track=1)
    lw.update(Poses("cam1", 5, 0.3, [1], boxes[:1], kp[:1]))  # frame 5 again
    assert lw.out_of_order == 1
    lw.update(Poses("cam1", 100, 100 / 15, [2], boxes[:1], kp[:1]))
    assert lw.tracks == 1  # track 1 last seen at frame 9


def test_degenerate_pose_gives_finite_window():
    frames = np.arange(L)
    kp = np.zeros((L, 17, 3), np.float32)  # every keypoint missing at (0, 0)
    boxes = np.zeros((L, 4), np.float32)
    wins = feed(LiveWindows(L), frames, kp, boxes)
    assert np.isfinite(wins[-1].x).all()


def test_non_finite_coordinates_drop_only_the_affected_windows():
    frames, kp, boxes = make_track(6, n=30, missing=())
    kp[5, 3, 0] = np.nan
    lw = LiveWindows(L)
    out = []
    for f, k, b in zip(frames, kp, boxes):
        out.append(lw.update(Poses("cam1", int(f), f / 15, [1, 2], [b, b], np.stack([k, kp[0]]))))
    per_track = np.concatenate([w.track_ids for w in out])
    # track 1's windows that contain frame 5 (starts 0..5) are dropped; track 2 is unaffected
    assert (per_track == 2).sum() == 30 - L + 1
    assert (per_track == 1).sum() == 1 and lw.invalid_windows == 6  # start 6 no longer holds frame 5
    assert all(np.isfinite(w.x).all() for w in out)


def _linear_track(frames):
    """A person moving at constant speed: interpolation across any gap is exact."""
    base = np.random.default_rng(3).uniform(300, 600, (17, 2))
    kp = np.empty((len(frames), 17, 3), np.float32)
    kp[..., :2] = base[None] + np.asarray(frames, float)[:, None, None] * np.array([2.0, 0.5])
    kp[..., 2] = 0.9
    boxes = np.stack([kp[..., 0].min(1), kp[..., 1].min(1), kp[..., 0].max(1), kp[..., 1].max(1)], 1)
    return kp, boxes


def test_frame_time_windows_equal_reference_on_an_undisturbed_stream():
    frames = np.arange(80)
    kp, boxes = _linear_track(frames)
    ref = feed(LiveWindows(L), frames, kp, boxes)
    filled = feed(LiveWindows(L, fill_gaps=3), frames, kp, boxes)
    for a, b in zip(ref, filled):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.centre_frames, b.centre_frames)


def test_frame_time_windows_survive_dropped_frames():
    """Inference that keeps only every other or third camera frame still yields windows, equal to the
    windows of the full-rate stream (exact here because the motion is linear)."""
    dense = np.arange(120)
    kp_d, boxes_d = _linear_track(dense)
    full = {int(c): x for w in feed(LiveWindows(L, fill_gaps=3), dense, kp_d, boxes_d)
            for c, x in zip(w.centre_frames, w.x)}
    for step in (2, 3):
        sparse = dense[::step]
        kp, boxes = _linear_track(sparse)
        assert not any(len(w) for w in feed(LiveWindows(L), sparse, kp, boxes))  # the reference rule finds none
        wins = [w for w in feed(LiveWindows(L, fill_gaps=3), sparse, kp, boxes) if len(w)]
        assert len(wins) >= len(sparse) - L // step - 1
        for w in wins:
            for c, x in zip(w.centre_frames, w.x):
                np.testing.assert_allclose(x, full[int(c)], atol=1e-4)


def test_frame_time_windows_skip_gaps_longer_than_allowed():
    frames = np.concatenate([np.arange(0, 30), np.arange(35, 80)])  # 4 missing frames
    kp, boxes = _linear_track(frames)
    wins = feed(LiveWindows(L, fill_gaps=3), frames, kp, boxes)
    centres = np.concatenate([w.centre_frames for w in wins])
    spans = [(c - L // 2, c - L // 2 + L - 1) for c in centres]
    assert all(not (s <= 31 and e >= 34) for s, e in spans)  # no window spans the long gap
    assert any(e < 30 for s, e in spans) and any(s >= 35 for s, e in spans)


def _count_windows(builder, frames, kp, boxes):
    return sum(len(w) for w in feed(builder, frames, kp, boxes))


def test_quality_gate_skips_windows_of_people_not_fully_in_view():
    frames, kp, boxes = make_track(4, n=120, missing=())
    kp[..., 2] = 0.9
    at_edge = kp.copy()
    at_edge[50, 9, 0] = 0.0  # a wrist on the left border in frame 50 (a pose model clamps unseen joints there)
    all_windows = _count_windows(LiveWindows(L, 1, fill_gaps=3), frames, at_edge, boxes)
    assert all_windows == 120 - L + 1
    gated = LiveWindows(L, 1, fill_gaps=3, border_px=1.0)
    assert _count_windows(gated, frames, kp, boxes) == all_windows  # fully in view: nothing gated
    gated = LiveWindows(L, 1, fill_gaps=3, border_px=1.0)
    kept = feed(gated, frames, at_edge, boxes)
    centres = np.concatenate([w.centre_frames for w in kept])
    assert gated.gated_windows == L and len(centres) == all_windows - L  # every window holding frame 50
    assert not np.any((centres - L // 2 <= 50) & (50 < centres - L // 2 + L))
    beyond = kp.copy()
    beyond[70, 3, 1] = 1080.0 + 40  # below the bottom of a 1920x1080 frame
    gated = LiveWindows(L, 1, border_px=1.0)
    _count_windows(gated, frames, beyond, boxes)
    assert gated.gated_windows == L


def test_quality_gate_uses_each_records_frame_size():
    frames, kp, boxes = make_track(5, n=60, missing=())
    gated = LiveWindows(L, 1, border_px=1.0)
    for f, k, b in zip(frames, kp, boxes):  # keypoints reach x = 900: outside a 640-wide frame
        gated.update(Poses("cam1", int(f), f / 15.0, [7], [b], k[None], frame_size=(640, 480)))
    assert gated.gated_windows == 60 - L + 1


def test_quality_gate_skips_mostly_low_confidence_poses():
    frames, kp, boxes = make_track(6, n=80, missing=())
    kp[..., 2] = 0.9
    kp[30, :10, 2] = 0.05  # 10 of 17 keypoints below min_confidence in frame 30
    gated = LiveWindows(L, 1, min_confidence=0.2, min_confident=0.5)
    n = _count_windows(gated, frames, kp, boxes)
    assert gated.gated_windows == L and n == 80 - L + 1 - L
    kp[30, :6, 2] = 0.9  # now 13 of 17 are confident
    gated = LiveWindows(L, 1, min_confidence=0.2, min_confident=0.5)
    assert _count_windows(gated, frames, kp, boxes) == 80 - L + 1 and gated.gated_windows == 0
    with pytest.raises(ValueError, match="min_confident"):
        LiveWindows(L, 1, min_confident=1.5)


def test_a_frame_whose_only_windows_are_all_invalid_gives_an_empty_record():
    frames, kp, boxes = make_track(7, n=30, missing=())
    kp[5, 3, 0] = np.nan
    lw = LiveWindows(L)
    wins = feed(lw, frames, kp, boxes)
    assert lw.invalid_windows == 6 and sum(len(w) for w in wins) == 30 - L + 1 - 6
    assert all(w.x.shape[1:] == (2, L, 18) for w in wins)
