"""The tracking stage: records in and out, pseudonymous ids, lifecycle events, dropped input."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from edge.config import TrackingConfig
from edge.records import Detections, TrackEventKind, Tracks
from edge.tracking.bytetrack import ByteTracker
from edge.tracking.pseudonyms import KeyedPseudonyms, RandomPseudonyms, load_or_create_key
from edge.tracking.stage import TrackingStage
from edge.tracking.synthetic import crowded_scene


def det(frame, boxes, scores, cam="cam-1"):
    return Detections(cam, frame, frame / 15.0, np.asarray(boxes, np.float32).reshape(-1, 4),
                      np.asarray(scores, np.float32))


def run_stage(stage, scene, start=1):
    return [stage.update(det(start + k, b, s)) for k, (b, s) in enumerate(scene)]


def test_stage_tracks_like_the_tracker_with_pseudonyms():
    scene = crowded_scene(10, 60, seed=2)
    stage = TrackingStage(TrackingConfig(), fps=30)
    trk = ByteTracker()
    mapping = {}
    for k, (b, s) in enumerate(scene):
        tr = stage.update(det(k + 1, b, s))
        # the stage sees float32 boxes as a detector hands them over
        ref = trk.update(np.asarray(b, np.float32), np.asarray(s, np.float32))
        assert isinstance(tr, Tracks) and tr.frame_index == k + 1 and tr.camera_id == "cam-1"
        assert np.allclose(tr.boxes, ref.xyxy, atol=1e-3)
        for pid, tid in zip(tr.track_ids.tolist(), ref.ids.tolist()):
            assert mapping.setdefault(pid, tid) == tid
    assert len(mapping) > 5
    pids = np.array(list(mapping))
    assert (pids > 0).all() and len(set(mapping.values())) == len(mapping)
    # pseudonyms are not the counter: random 63-bit values are far from 1..N
    assert pids.min() > 10**6


def test_events_announce_start_loss_and_removal_with_the_same_ids():
    stage = TrackingStage(TrackingConfig(track_buffer=5), fps=30)
    box = [[100, 100, 150, 220]]
    seen = []
    out = stage.update(det(1, box, [0.9]))
    seen += out.events
    pid = int(out.track_ids[0])
    assert [e.kind for e in out.events] == [TrackEventKind.STARTED] and out.events[0].track_id == pid
    for f in range(2, 12):
        out = stage.update(det(f, np.zeros((0, 4)), []))
        seen += out.events
        assert len(out) == 0
    kinds = [(e.kind, e.track_id) for e in seen]
    assert kinds == [(TrackEventKind.STARTED, pid), (TrackEventKind.LOST, pid), (TrackEventKind.REMOVED, pid)]
    assert all(e.camera_id == "cam-1" for e in seen)
    # a new person gets a new pseudonym
    stage.update(det(12, box, [0.9]))
    out = stage.update(det(13, box, [0.9]))
    assert len(out) == 1 and int(out.track_ids[0]) != pid


def test_finish_removes_everything_downstream_knows():
    stage = TrackingStage(TrackingConfig(), fps=15)
    tracks = run_stage(stage, crowded_scene(6, 10, seed=3))
    live = set(tracks[-1].track_ids.tolist())
    ended = stage.finish()
    assert {e.track_id for e in ended} >= live and all(e.kind == TrackEventKind.REMOVED for e in ended)
    assert stage.finish() == ()
    # after finish the stage starts over cleanly
    out = stage.update(det(1, [[0, 0, 40, 100]], [0.9]))
    assert len(out) == 1 and int(out.track_ids[0]) not in live


def test_stage_drops_and_counts_invalid_detections():
    scene = crowded_scene(8, 30, seed=4)
    clean = TrackingStage(TrackingConfig(), fps=30, pseudonyms=KeyedPseudonyms(b"k" * 32, b"s"))
    dirty = TrackingStage(TrackingConfig(), fps=30, pseudonyms=KeyedPseudonyms(b"k" * 32, b"s"))
    junk = np.array([[np.nan, 0, 10, 10], [0, 0, 0, 10], [5, 5, 1, 1], [0, 0, 10, 10]], np.float32)
    for k, (b, s) in enumerate(scene):
        a = clean.update(det(k + 1, b, s))
        d = dirty.update(det(k + 1, np.vstack([junk, b]), np.concatenate([[0.9, 0.9, 0.9, 3.0], s])))
        assert a.track_ids.tolist() == d.track_ids.tolist() and np.array_equal(a.boxes, d.boxes)
    assert dirty.counters["invalid_detections"] == 4 * len(scene)
    assert clean.counters["invalid_detections"] == 0


def test_stale_frames_and_other_cameras_are_dropped_without_touching_state():
    scene = crowded_scene(8, 30, seed=6)
    keyed = lambda: KeyedPseudonyms(b"k" * 32, b"session")  # noqa: E731
    a = TrackingStage(TrackingConfig(), fps=30, pseudonyms=keyed())
    b = TrackingStage(TrackingConfig(), fps=30, pseudonyms=keyed())
    for k, (bx, s) in enumerate(scene):
        ra = a.update(det(k + 1, bx, s))
        rb = b.update(det(k + 1, bx, s))
        if k % 5 == 4:  # a repeated, an older frame and a foreign camera in between
            assert len(b.update(det(k + 1, bx, s))) == 0
            assert len(b.update(det(k - 2, bx, s))) == 0
            assert len(b.update(det(k + 2, bx, s, cam="cam-2"))) == 0
        assert ra.track_ids.tolist() == rb.track_ids.tolist()
    assert b.counters["stale_frames"] == 2 * (len(scene) // 5)
    assert b.counters["other_camera"] == len(scene) // 5


def test_skipped_frame_numbers_step_through_empty_frames():
    scene = crowded_scene(6, 40, seed=8)
    gappy = TrackingStage(TrackingConfig(), fps=30, pseudonyms=KeyedPseudonyms(b"k" * 32, b"s"))
    dense = TrackingStage(TrackingConfig(), fps=30, pseudonyms=KeyedPseudonyms(b"k" * 32, b"s"))
    for k, (b, s) in enumerate(scene):
        f = k + 1
        if f % 7 in (3, 4):  # frames 3, 4, 10, 11, ... never arrive at the gappy stage
            dense.update(det(f, np.zeros((0, 4)), []))
            continue
        assert gappy.update(det(f, b, s)).track_ids.tolist() == dense.update(det(f, b, s)).track_ids.tolist()
    assert gappy.counters["skipped_frames"] > 0
    # a very long gap ends every track, quickly, without stepping each frame
    out = gappy.update(det(10**9, np.zeros((0, 4)), []))
    assert len(out) == 0 and any(e.kind == TrackEventKind.REMOVED for e in out.events)
    assert gappy.tracker.n_listed == 0


def test_empty_frames_and_records_roundtrip():
    stage = TrackingStage(TrackingConfig(), fps=30)
    for f in range(1, 5):
        out = stage.update(det(f, np.zeros((0, 4)), []))
        assert len(out) == 0 and out.boxes.shape == (0, 4) and out.track_ids.dtype == np.int64


def test_random_pseudonyms_are_unique_and_stable_per_track():
    p = RandomPseudonyms()
    ids = [p("cam", t) for t in range(1, 2001)]
    assert len(set(ids)) == 2000 and all(0 < i < 2**63 for i in ids)
    assert p("cam", 5) == ids[4]
    assert p("other", 5) != ids[4]
    q = RandomPseudonyms()
    assert q("cam", 5) != ids[4]  # another session, another id


def test_keyed_pseudonyms_depend_on_key_and_session():
    key = os.urandom(32)
    a, b = KeyedPseudonyms(key, b"s1"), KeyedPseudonyms(key, b"s1")
    assert [a("c", t) for t in range(50)] == [b("c", t) for t in range(50)]
    assert KeyedPseudonyms(key, b"s2")("c", 1) != a("c", 1)
    assert KeyedPseudonyms(os.urandom(32), b"s1")("c", 1) != a("c", 1)
    a.forget("c", 1)
    assert a("c", 1) != b("c", 1)  # a finished track's id is never handed out again in the session
    with pytest.raises(ValueError, match="at least 16 bytes"):
        KeyedPseudonyms(b"short")



def test_pseudonym_permutation_is_a_bijection():
    from edge.tracking.pseudonyms import _Feistel

    small = _Feistel(b"k" * 32, bits=16)  # the same network on 16 bits, checked exhaustively
    out = [small(x) for x in range(1, small.limit)]
    assert sorted(out) == list(range(1, small.limit))
    assert sum(a == b for a, b in zip(out, range(1, small.limit))) < 10  # not the identity
    assert _Feistel(b"j" * 32, bits=16)(5) != small(5) or _Feistel(b"j" * 32, bits=16)(6) != small(6)
    with pytest.raises(ValueError, match="outside"):
        small(0)


def test_keyed_pseudonyms_follow_each_camera_not_the_interleaving():
    key = os.urandom(32)
    a, b = KeyedPseudonyms(key, b"s"), KeyedPseudonyms(key, b"s")
    ids_a = {(c, t): a(c, t) for t in range(1, 40) for c in ("cam1", "cam2")}
    ids_b = {(c, t): b(c, t) for c in ("cam2", "cam1") for t in range(1, 40)}
    assert ids_a == ids_b and len(set(ids_a.values())) == len(ids_a)


def test_pseudonyms_stay_unique_with_constant_memory():
    """A months-long session: tracks come and go (the tracker's numbers repeat after restarts); the ids
    never repeat, and nothing but the open tracks is kept."""
    import tracemalloc

    def churn(p, first, n, seen=None):
        for t in range(first, first + n):
            v = p(f"cam{t % 4}", t % 1000)
            if seen is not None:
                seen.add(v)
            p.forget(f"cam{t % 4}", t % 1000)

    for p in (RandomPseudonyms(), KeyedPseudonyms(b"k" * 32, b"s")):
        seen = set()
        churn(p, 0, 20_000, seen)
        assert len(seen) == 20_000 and all(0 < v < 2**63 for v in seen)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        churn(p, 20_000, 20_000)
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        assert grown < 50_000, grown  # a set of 20,000 used ids alone takes over a megabyte

def test_device_key_is_created_once_and_private(tmp_path):
    path = tmp_path / "state" / "pseudonym.key"
    k1 = load_or_create_key(path)
    assert len(k1) == 32 and load_or_create_key(path) == k1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match="too short"):
        load_or_create_key(path)


def test_stage_rejects_a_nonsense_frame_rate():
    with pytest.raises(ValueError, match="fps"):
        TrackingStage(TrackingConfig(), fps=0)


def test_pseudonym_kind_from_config(tmp_path):
    from edge.tracking.pseudonyms import KEY_FILE, pseudonyms_for

    assert isinstance(pseudonyms_for("random"), RandomPseudonyms)
    keyed = pseudonyms_for("keyed", tmp_path)
    assert isinstance(keyed, KeyedPseudonyms) and (tmp_path / KEY_FILE).exists()
    with pytest.raises(ValueError, match="state directory"):
        pseudonyms_for("keyed")
    with pytest.raises(ValueError, match="unknown"):
        pseudonyms_for("counter")
    with pytest.raises(ValueError, match="keyed"):
        TrackingStage(TrackingConfig(pseudonyms="keyed"), fps=15)
    stage = TrackingStage(TrackingConfig(pseudonyms="keyed"), fps=15, pseudonyms=keyed)
    stage.update(det(1, [[0, 0, 40, 100]], [0.9]))
    assert stage.update(det(2, [[1, 0, 41, 100]], [0.9])).track_ids[0] > 0
