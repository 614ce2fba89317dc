"""STG-NF JSON layout: reading the reference's preprocessing inputs, writing, and conversion both ways."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import ROOT, shared_path
from edge.datasets import DatasetError, read_dataset
from edge.datasets.convert import convert
from edge.datasets.poselift import read_poselift_dataset
from edge.datasets.stgnf_json import (
    SUFFIX, poselift_to_stgnf_name, read_stgnf_dataset, read_stgnf_video, stgnf_to_poselift_name, write_stgnf_dataset,
)

pytestmark = pytest.mark.shared


def _ref_root():
    return shared_path("reference", "stgnf", "preproc", "data", "ShanghaiTech")


def _same(a, b, boxes=True):
    assert (a.name, a.n_frames) == (b.name, b.n_frames)
    assert sorted(a.tracks) == sorted(b.tracks)
    for k in a.tracks:
        np.testing.assert_array_equal(a.tracks[k].frames, b.tracks[k].frames)
        np.testing.assert_array_equal(a.tracks[k].keypoints, b.tracks[k].keypoints)
        if boxes:
            np.testing.assert_array_equal(a.tracks[k].boxes, b.tracks[k].boxes)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_names_map_both_ways():
    assert poselift_to_stgnf_name("1_126") == "01_0126"
    assert poselift_to_stgnf_name("6_112") == "06_0112"
    assert stgnf_to_poselift_name("01_0126") == "1_126"
    for n in ("1_126", "12_3", "3_99999", "clip_a"):
        assert stgnf_to_poselift_name(poselift_to_stgnf_name(n)) == n


def test_reads_the_reference_preprocessing_inputs():
    root = _ref_root()
    ds = read_stgnf_dataset(root)
    assert [v.name for v in ds.test] == ["1_1", "1_2", "2_3"]
    v1, v2, v3 = ds.test
    assert v1.n_frames == 120 and v2.n_frames == 80 and v3.n_frames == 50 and not v3.tracks
    assert sorted(v1.tracks) == [1, 2, 3, 4] and sorted(v2.tracks) == [1, 7]
    t2 = v1.tracks[2]  # frames 10..80 with 40 and 60..63 missing
    assert t2.frames[0] == 10 and t2.frames[-1] == 80 and 40 not in t2.frames and 61 not in t2.frames
    assert int(v1.labels.sum()) == 51 and v1.labels[45] == 1 and v1.labels[44] == 0
    # values as the raw JSON has them, at float32 precision
    raw = json.loads((root / "pose" / "test" / ("01_0001" + SUFFIX)).read_text())
    first = raw["1"]["0000"]
    np.testing.assert_array_equal(v1.tracks[1].keypoints[0].ravel(), np.float32(first["keypoints"]))
    assert v1.tracks[1].scores[0] == np.float32(first["scores"])
    # the windows the reference cut from these files come out of our tracks (first frames per person)
    ref = np.load(shared_path("reference", "stgnf", "preproc", "preproc_and_scoring.npz"))
    meta, segs = ref["test_meta"], ref["test_segs_coco17_pixels"]
    for (scene, clip, pid, f0), seg in zip(meta[::37], segs[::37]):
        v = {(1, 1): v1, (1, 2): v2}[(int(scene), int(clip))]
        t = v.tracks[int(pid)]
        j = int(np.searchsorted(t.frames, f0))
        np.testing.assert_allclose(t.keypoints[j: j + 24], seg, atol=1e-4)


def test_json_round_trip_against_reference_files(tmp_path):
    ds = read_stgnf_dataset(_ref_root())
    write_stgnf_dataset(tmp_path, ds.train, ds.test)
    names = sorted(p.name for p in (tmp_path / "pose" / "test").iterdir())
    assert names == ["01_0001" + SUFFIX, "01_0002" + SUFFIX]
    assert sorted(p.name for p in (tmp_path / "gt" / "test_frame_mask").iterdir()) == \
        ["01_0001.npy", "01_0002.npy", "02_0003.npy"]
    back = read_stgnf_dataset(tmp_path)
    for a, b in zip(ds.test, back.test):
        _same(a, b)
    # same structure as the reference files: person -> zero-padded frame -> keypoints/scores
    orig = json.loads((_ref_root() / "pose" / "test" / ("01_0002" + SUFFIX)).read_text())
    ours = json.loads((tmp_path / "pose" / "test" / ("01_0002" + SUFFIX)).read_text())
    assert ours.keys() == orig.keys()
    for p in orig:
        assert list(ours[p]) == list(orig[p])
        for f in orig[p]:
            np.testing.assert_allclose(ours[p][f]["keypoints"], orig[p][f]["keypoints"], rtol=0, atol=1e-4)
            assert abs(ours[p][f]["scores"] - orig[p][f]["scores"]) < 1e-4


def test_convert_both_ways_round_trip(tmp_path):
    src = _ref_root()
    convert(src, tmp_path / "pl", dst_layout="poselift")
    pl = read_poselift_dataset(tmp_path / "pl")
    assert [v.name for v in pl.test] == ["1_1", "1_2", "2_3"]
    convert(tmp_path / "pl", tmp_path / "js", src_layout="poselift", dst_layout="json")
    js = read_dataset(tmp_path / "js")
    orig = read_stgnf_dataset(src)
    for a, b, c in zip(orig.test, pl.test, js.test):
        _same(a, b)
        _same(a, c)
    # and PoseLift -> JSON -> PoseLift keeps boxes exactly
    convert(tmp_path / "js", tmp_path / "pl2", dst_layout="poselift")
    for a, b in zip(pl.test, read_poselift_dataset(tmp_path / "pl2").test):
        _same(a, b)


def test_convert_cli(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "edge.cli", "convert", *map(str, a)], cwd=ROOT,
                                    capture_output=True, text=True)
    r = run("--from", "json", _ref_root(), "--to", "poselift", tmp_path / "pl")
    assert r.returncode == 0, r.stderr
    assert "3 test videos" in r.stdout
    assert (tmp_path / "pl" / "Pickle_files" / "Test" / "1_1.pkl").is_file()
    assert (tmp_path / "pl" / "Pickle_files" / "GT" / "2_3.npy").is_file()
    r = run("--from", "poselift", tmp_path / "pl", "--to", "json", tmp_path / "js")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "js" / "pose" / "test" / ("01_0001" + SUFFIX)).is_file()
    r = run(tmp_path / "nothing", "--to", "json", tmp_path / "x")
    assert r.returncode == 2 and "nothing" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("content, pattern", [
    ("{", "not valid JSON"),
    ("[1, 2]", "unknown layout"),
    ('{"1": {"0003": {"keypoints": [1, 2, 3], "scores": 1}}}', r"frame 3, person 1: 3 keypoint numbers"),
    ('{"1": {"0003": {"keypoints": [NaN' + ", 1" * 50 + '], "scores": 1}}}', r"frame 3, person 1: .*NaN"),
    ('{"x": {}}', "person key 'x'"),
])
def test_bad_json_names_file_and_frame(tmp_path, content, pattern):
    p = tmp_path / ("01_0005" + SUFFIX)
    p.write_text(content)
    with pytest.raises(DatasetError, match=pattern) as exc:
        read_stgnf_video(p)
    assert "01_0005" in str(exc.value)


def test_json_frames_beyond_mask_are_dropped_with_warning(tmp_path):
    kp = [float(i) for i in range(51)]
    p = tmp_path / ("01_0005" + SUFFIX)
    p.write_text(json.dumps({"2": {str(f).zfill(4): {"keypoints": kp, "scores": 1.0} for f in range(10)}}))
    m = tmp_path / "01_0005.npy"
    np.save(m, np.zeros(6))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        v = read_stgnf_video(p, m)
    assert any("01_0005.npy" in str(w.message) and "truncated" in str(w.message) for w in rec)
    assert v.n_frames == 6 and v.tracks[2].frames.tolist() == list(range(6))
