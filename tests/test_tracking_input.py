"""Bad input to the tracker, the file reader and the track command: clear errors or counted drops."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_path
from edge.cli import main as cli_main
from edge.tracking.bytetrack import ByteTracker
from edge.tracking.motio import MotFormatError, read_detections, read_results
from edge.tracking.synthetic import crowded_scene

GOOD = "1,-1,10,20,30,60,0.9,-1,-1,-1\n"


@pytest.mark.parametrize("line,message", [
    ("1,-1,nan,20,30,60,0.9", "NaN or infinite"),
    ("1,-1,10,inf,30,60,0.9", "NaN or infinite"),
    ("1,-1,10,20,0,60,0.9", "width and height must be > 0"),
    ("1,-1,10,20,30,-5,0.9", "width and height must be > 0"),
    ("1,-1,10,20,30,60,1.5", "score must be within 0..1"),
    ("1,-1,10,20,30,60,-0.1", "score must be within 0..1"),
    ("1,-1,10,20,30,60", "at least 7"),
    ("1,-1,10,twenty,30,60,0.9", "non-numeric"),
    ("0,-1,10,20,30,60,0.9", "frame must be an integer >= 1"),
    ("2.5,-1,10,20,30,60,0.9", "frame must be an integer >= 1"),
])
def test_reader_rejects_bad_lines_naming_file_and_line(tmp_path, line, message):
    p = tmp_path / "det.txt"
    p.write_text(GOOD + GOOD + line + "\n")
    with pytest.raises(MotFormatError) as e:
        read_detections(p)
    assert f"{p}:3:" in str(e.value) and message in str(e.value)


def test_reader_errors_for_unreadable_files(tmp_path):
    with pytest.raises(MotFormatError, match="cannot read"):
        read_detections(tmp_path / "missing.txt")
    p = tmp_path / "binary.txt"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(MotFormatError, match="not a text file"):
        read_detections(p)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# nothing\n")
    assert read_detections(empty).last_frame == 0


def test_unsorted_file_gives_the_same_tracks_as_the_sorted_one(tmp_path):
    src = shared_path("tracking", "detections", "TUD-Campus.txt")
    lines = src.read_text().splitlines()
    frames = {}
    for ln in lines:
        frames.setdefault(int(ln.split(",")[0]), []).append(ln)
    order = np.random.default_rng(0).permutation(sorted(frames))
    # Frames shuffled, and each frame's lines interleaved with other frames, within-frame order kept.
    shuffled = [ln for f in order for ln in frames[f]]
    shuffled = shuffled[1::2] + shuffled[0::2]
    p = tmp_path / "shuffled.txt"
    p.write_text("\n".join(shuffled) + "\n")
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    assert cli_main(["track", "--detections", str(src), "--out", str(a)]) == 0
    assert cli_main(["track", "--detections", str(p), "--out", str(b)]) == 0
    ra, rb = read_results(a), read_results(b)
    # Lines of one frame now come in another order, so creation order (ids) may differ: compare boxes.
    key = lambda r: sorted(map(tuple, np.round(r[:, [0, 2, 3, 4, 5]], 3)))  # noqa: E731
    assert len(ra) == len(rb) and key(ra) == key(rb)


def test_skipped_frames_are_stepped_as_empty_frames(tmp_path):
    p = tmp_path / "gaps.txt"
    rows = ["1,-1,100,100,50,120,0.9", "2,-1,104,100,50,120,0.9", "5,-1,116,100,50,120,0.9",
            "6,-1,120,100,50,120,0.9"]
    p.write_text("\n".join(rows) + "\n")
    det = read_detections(p)
    seen = [f for f, _, _ in det.by_frame()]
    assert seen == [1, 2, 3, 4, 5, 6]
    out = tmp_path / "out.txt"
    assert cli_main(["track", "--detections", str(p), "--out", str(out)]) == 0
    res = read_results(out)
    assert res[:, 0].tolist() == [1, 2, 5, 6] and set(res[:, 1].tolist()) == {1}


def test_track_command_reports_bad_input(tmp_path, capsys):
    p = tmp_path / "det.txt"
    p.write_text(GOOD + "1,-1,10,20,30,60,7\n")
    assert cli_main(["track", "--detections", str(p), "--out", str(tmp_path / "o.txt")]) == 2
    err = capsys.readouterr().err
    assert f"{p}:2:" in err and "score" in err and "Traceback" not in err
    assert not (tmp_path / "o.txt").exists()
    with pytest.raises(SystemExit) as e:
        cli_main(["track", "--detections", str(p), "--out", "x", "--track-thresh", "1.5"])
    assert e.value.code == 2
    assert "--track-thresh must be within 0..1" in capsys.readouterr().err


@pytest.mark.shared
def test_track_command_writes_the_original_rows(tmp_path, capsys):
    ref = shared_path("tracking", "reference_bytetrack", "bytetrack_orig", "eval_t06_m09", "TUD-Stadtmitte.txt")
    det = shared_path("tracking", "detections", "TUD-Stadtmitte.txt")
    out = tmp_path / "o.txt"
    assert cli_main(["track", "--detections", str(det), "--out", str(out), "--iou", "legacy",
                     "--track-thresh", "0.6", "--match-thresh", "0.9"]) == 0
    assert "rows" in capsys.readouterr().out
    assert out.read_bytes() == ref.read_bytes()


def test_tracker_drops_invalid_rows_and_keeps_its_state():
    scene = crowded_scene(12, 50, seed=11)
    clean, dirty = ByteTracker(), ByteTracker()
    junk_boxes = np.array([[np.nan, 1, 2, 3], [0, 0, np.inf, 5], [10, 10, 10, 30], [10, 10, 5, 30],
                           [10, 10, 50, 5], [0, 0, 40, 80], [0, 0, 40, 80], [0, 0, 40, 80],
                           [1e300, 0, 2e300, 80], [5, 5, 5 + 1e-9, 5 + 1e-9]])
    junk_scores = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 1.2, np.nan, -0.5, 0.9, 0.9])
    for k, (boxes, scores) in enumerate(scene):
        oc = clean.update(boxes, scores)
        pos = k % (len(boxes) + 1)
        b = np.insert(boxes, pos, junk_boxes, axis=0)
        s = np.insert(scores, pos, junk_scores)
        od = dirty.update(b, s)
        assert np.array_equal(oc.ids, od.ids) and np.allclose(oc.tlwh, od.tlwh)
    assert dirty.dropped == len(junk_scores) * len(scene) and clean.dropped == 0


def test_tracker_rejects_wrong_shapes_clearly():
    trk = ByteTracker()
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        trk.update(np.zeros((3, 5)), np.zeros(3))
    with pytest.raises(ValueError, match="2 boxes but 3 scores"):
        trk.update(np.zeros((2, 4)), np.zeros(3))
    assert trk.frame == 0  # a rejected call does not advance time
    assert len(trk.update([], [])) == 0 and trk.frame == 1
    with pytest.raises(ValueError, match="iou"):
        ByteTracker(iou="giou")
    with pytest.raises(ValueError, match="track_thresh"):
        ByteTracker(track_thresh=2.0)


def test_random_garbage_never_crashes_or_poisons_the_state():
    from edge.tracking.reference import NumpyByteTracker

    rng = np.random.default_rng(12)
    scene = crowded_scene(10, 80, seed=12)
    trk, ref = ByteTracker(capacity=8), NumpyByteTracker()
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e7, 1e-12, 2.0])
    for boxes, scores in scene:
        n = rng.integers(0, 6)
        junk = rng.normal(500, 400, (n, 4))
        if n:
            junk.flat[rng.integers(0, junk.size, rng.integers(0, 4))] = rng.choice(specials)
        js = rng.choice(np.r_[rng.random(4), specials], n)
        b = np.vstack([boxes, junk])
        s = np.concatenate([scores, js])
        order = rng.permutation(len(s))
        out = trk.update(b[order], s[order])
        oref = ref.update(b[order], s[order])
        assert np.isfinite(out.tlwh).all() and np.isfinite(out.scores).all()
        assert np.array_equal(out.ids, oref.ids) and np.allclose(out.tlwh, oref.tlwh, atol=1e-6)
    assert trk.dropped > 0
