"""The Numba tracker against the numpy reference where no reference file reaches, and its state."""

from __future__ import annotations

import numpy as np
import pytest

from edge.tracking.bytetrack import ByteTracker
from edge.tracking.reference import NumpyByteTracker
from edge.tracking.synthetic import crowded_scene


def same_outputs(a, b):
    return (np.array_equal(a.ids, b.ids) and np.allclose(a.tlwh, b.tlwh, atol=1e-6, rtol=0)
            and np.allclose(a.scores, b.scores)
            and sorted(zip(a.event_kinds.tolist(), a.event_ids.tolist()))
            == sorted(zip(b.event_kinds.tolist(), b.event_ids.tolist())))


@pytest.mark.parametrize("people,frames,params", [
    (8, 150, dict(track_thresh=0.5, match_thresh=0.8, track_buffer=30, frame_rate=30, fuse_score=True, iou="plain")),
    (8, 150, dict(track_thresh=0.6, match_thresh=0.9, track_buffer=10, frame_rate=15, fuse_score=False,
                  iou="legacy")),
    (40, 60, dict(track_thresh=0.45, match_thresh=0.7, track_buffer=5, frame_rate=30, fuse_score=False,
                  iou="plain")),
    (40, 60, dict(track_thresh=0.7, match_thresh=0.8, track_buffer=30, frame_rate=60, fuse_score=True,
                  iou="legacy")),
])
def test_matches_numpy_reference_on_crowded_scenes(people, frames, params):
    scene = crowded_scene(people, frames, seed=people + frames)
    a = ByteTracker(**params, capacity=8)  # small on purpose: the state must grow along the way
    b = NumpyByteTracker(**params)
    n_rows = 0
    for k, (boxes, scores) in enumerate(scene):
        oa, ob = a.update(boxes, scores), b.update(boxes, scores)
        assert same_outputs(oa, ob), f"frame {k + 1}: {oa.ids} vs {ob.ids}"
        n_rows += len(oa)
    assert n_rows > frames  # tracks were actually confirmed and followed
    assert len(a._state["tid"]) > 8


def test_low_score_detections_keep_tracks_alive():
    trk = ByteTracker(track_thresh=0.5)
    box = np.array([[100.0, 100.0, 150.0, 220.0]])
    trk.update(box, [0.9])
    for k in range(1, 5):
        out = trk.update(box + [k, 0, k, 0], [0.3])  # below track_thresh: second association only
        assert out.ids.tolist() == [1]
        assert out.scores[0] == pytest.approx(0.3)
    assert trk.update(box, [0.05]).ids.tolist() == []  # below 0.1: ignored entirely -> lost


def test_lifecycle_events_and_buffer():
    trk = ByteTracker(track_buffer=3, frame_rate=30)
    box = np.array([[10.0, 10.0, 60.0, 130.0]])
    o = trk.update(box, [0.95])
    assert o.event_kinds.tolist() == [0] and o.event_ids.tolist() == [1]  # frame 1: confirmed at once
    o = trk.update(box, [0.95])
    assert len(o.event_kinds) == 0
    o = trk.update(np.zeros((0, 4)), [])
    assert o.event_kinds.tolist() == [1]  # lost
    removed_at = None
    for k in range(8):
        o = trk.update(np.zeros((0, 4)), [])
        if 2 in o.event_kinds.tolist():
            removed_at = k
            break
    # last seen at frame 2: marked removed at frame 6 (6 - 2 > 3), out of the lists at frame 7 (k = 3)
    assert removed_at == 3
    assert trk.n_listed == 0


def test_new_tracks_after_first_frame_need_a_second_detection():
    trk = ByteTracker()
    trk.update(np.zeros((0, 4)), [])
    box = np.array([[10.0, 10.0, 60.0, 130.0]])
    assert len(trk.update(box, [0.9])) == 0  # unconfirmed
    out = trk.update(box, [0.9])
    assert out.ids.tolist() == [1] and out.event_kinds.tolist() == [0]
    # a detection seen once and never again is dropped without an id ever being shown
    trk.update(np.vstack([box, box + 500]), [0.9, 0.9])
    out = trk.update(box, [0.9])
    assert out.ids.tolist() == [1]


def test_start_threshold_is_track_thresh_plus_a_tenth():
    trk = ByteTracker(track_thresh=0.5)
    box = np.array([[10.0, 10.0, 60.0, 130.0]])
    for _ in range(3):
        assert len(trk.update(box, [0.58])) == 0  # high, but under 0.6: never starts a track


def test_state_is_independent_between_trackers():
    scene = crowded_scene(10, 40, seed=5)
    a, b = ByteTracker(), ByteTracker()
    for boxes, scores in scene[:20]:
        a.update(boxes, scores)
    c = ByteTracker()
    for boxes, scores in scene:
        oc = c.update(boxes, scores)
        ob = b.update(boxes, scores)
        assert same_outputs(ob, oc)
