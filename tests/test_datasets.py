"""PoseLift pickles: reading (bbox order detection, labels, bad files, unsafe pickles) and writing."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from edge.datasets import DatasetError, DatasetWarning, read_dataset, read_poselift_dataset, read_poselift_video
from edge.datasets.poselift import PoseVideo, Track, write_poselift_dataset, write_poselift_video


def _skeleton(rng, n, cx=900.0, cy=500.0, h=400.0):
    """Upright-ish COCO-17 poses, ``n`` frames, person ``h`` pixels tall."""
    base = np.array([[0, -0.45], [0.03, -0.47], [-0.03, -0.47], [0.06, -0.45], [-0.06, -0.45],
                     [0.12, -0.33], [-0.12, -0.33], [0.16, -0.15], [-0.16, -0.15], [0.17, 0.0], [-0.17, 0.0],
                     [0.08, 0.02], [-0.08, 0.02], [0.09, 0.25], [-0.09, 0.25], [0.09, 0.48], [-0.09, 0.48]])
    xy = base[None] * h + np.array([cx, cy]) + rng.normal(0, 3, (n, 17, 2)) + np.arange(n)[:, None, None] * [2, 0]
    conf = rng.uniform(0.5, 1.0, (n, 17, 1))
    return np.concatenate([xy, conf], -1).astype(np.float32)


def _raw(kp, order):
    """A box around the keypoints, written in ``order``."""
    x1, y1 = kp[:, 0].min() - 10, kp[:, 1].min() - 30
    x2, y2 = kp[:, 0].max() + 10, kp[:, 1].max() + 10
    return {"x1y1x2y2": [x1, y1, x2, y2], "xywh": [x1, y1, x2 - x1, y2 - y1],
            "y1x1y2x2": [y1, x1, y2, x2]}[order], (x1, y1, x2, y2)


def _pickle(tmp_path, name, order, n=30, people=(4, 46), seed=0):
    rng = np.random.default_rng(seed)
    data, truth = {}, {}
    for p_i, pid in enumerate(people):
        kp = _skeleton(rng, n, cx=500 + 600 * p_i)
        for f in range(n):
            raw, box = _raw(kp[f], order)
            data.setdefault(f, {})[pid] = [[float(v) for v in raw], kp[f].astype(np.float64)]
            truth[(f, pid)] = (box, kp[f])
    data[n] = {}  # a trailing empty frame
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(pickle.dumps(data))
    return path, truth, n + 1


@pytest.mark.parametrize("order", ["x1y1x2y2", "xywh", "y1x1y2x2"])
def test_bbox_order_detected_and_reported(tmp_path, caplog, order):
    path, truth, n = _pickle(tmp_path, "1_126", order)
    with caplog.at_level("INFO", logger="edge.datasets.poselift"):
        v = read_poselift_video(path)
    assert v.bbox_order == order
    assert any(order in r.getMessage() and "1_126.pkl" in r.getMessage() for r in caplog.records)
    assert (v.name, v.camera, v.n_frames, v.fps, v.frame_size) == ("1_126", 1, n, 15.0, (1920, 1080))
    assert sorted(v.tracks) == [4, 46]
    for pid, t in v.tracks.items():
        assert t.frames.dtype == np.int64 and t.keypoints.dtype == np.float32 and t.boxes.dtype == np.float32
        assert t.keypoints.shape == (n - 1, 17, 3) and t.boxes.shape == (n - 1, 4)
        np.testing.assert_array_equal(t.frames, np.arange(n - 1))
        for j, f in enumerate(t.frames):
            box, kp = truth[(f, pid)]
            np.testing.assert_allclose(t.boxes[j], box, atol=1e-3)
            np.testing.assert_array_equal(t.keypoints[j], kp)


def test_forced_bbox_order_and_bad_value(tmp_path):
    path, truth, _ = _pickle(tmp_path, "2_5", "xywh")
    v = read_poselift_video(path, bbox_order="x1y1x2y2")
    assert v.bbox_order == "x1y1x2y2"
    with pytest.raises(ValueError, match="bbox_order"):
        read_poselift_video(path, bbox_order="cxcywh")


def test_labels_longer_than_pickle_extend_the_video(tmp_path):
    path, _, n = _pickle(tmp_path, "1_257", "x1y1x2y2")
    lab = tmp_path / "1_257.npy"
    np.save(lab, np.r_[np.zeros(20), np.ones(n + 5 - 20)])
    with pytest.warns(DatasetWarning) as rec:
        v = read_poselift_video(path, lab)
    msg = str(rec[0].message)
    assert "1_257.npy" in msg and f"{n + 5} labels" in msg and f"{n} frames" in msg and "extended" in msg
    assert v.n_frames == n + 5 and len(v.labels) == n + 5 and v.labels.dtype == np.uint8
    assert int(v.labels.sum()) == n + 5 - 20


def test_labels_shorter_than_pickle_truncate_the_video(tmp_path):
    path, _, n = _pickle(tmp_path, "5_299", "x1y1x2y2")
    lab = tmp_path / "5_299.npy"
    np.save(lab, np.ones(20, np.uint8))
    with pytest.warns(DatasetWarning, match=r"5_299\.npy.*truncated the video to 20 frames"):
        v = read_poselift_video(path, lab)
    assert v.n_frames == 20
    assert all(t.frames.max() < 20 for t in v.tracks.values())


def _write(tmp_path, obj, name="3_7.pkl"):
    p = tmp_path / name
    p.write_bytes(pickle.dumps(obj))
    return p


def _good_entry():
    return [[10.0, 10.0, 100.0, 300.0], np.full((17, 3), 50.0)]


@pytest.mark.parametrize("obj, pattern", [
    ({0: {1: _good_entry()}, 1: {1: [[1, 2, 3, 4], np.zeros((17, 2))]}}, r"frame 1, person 1: keypoints have shape \(17, 2\)"),
    ({0: {}, 1: {2: [[1, 2, 3], np.zeros((17, 3))]}}, r"frame 1, person 2: bbox has 3 numbers"),
    ({0: {}, 1: {}, 2: {5: [[1, 2, 3, 4], np.where(np.eye(17, 3) > 0, np.nan, 1.0)]}}, r"frame 2, person 5: keypoints contain NaN"),
    ({0: {1: [[1, np.inf, 3, 4], np.ones((17, 3))]}}, r"frame 0, person 1: bbox contain NaN"),
    ([1, 2, 3], r"unknown layout"),
    ({0: [1, 2]}, r"frame 0: expected dict.*unknown layout"),
    ({"a": {}}, r"frame key 'a' is not an integer"),
    ({0: {1: "text"}}, r"frame 0, person 1: expected \[bbox, keypoints\]"),
])
def test_bad_files_name_file_and_frame(tmp_path, obj, pattern):
    p = _write(tmp_path, obj)
    with pytest.raises(DatasetError, match=pattern) as exc:
        read_poselift_video(p)
    assert "3_7.pkl" in str(exc.value)


def test_truncated_pickle(tmp_path):
    path, _, _ = _pickle(tmp_path, "1_1", "x1y1x2y2")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"1_1\.pkl: truncated or corrupt pickle"):
        read_poselift_video(path)
    path.write_bytes(b"")
    with pytest.raises(DatasetError, match=r"1_1\.pkl"):
        read_poselift_video(path)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    p = _write(tmp_path, {0: {1: [[1, 2, 3, 4], _Evil(marker)]}}, "1_9.pkl")
    with pytest.raises(DatasetError, match=r"1_9\.pkl.*refusing to load (posix|nt|os)\.system"):
        read_poselift_video(p)
    assert not marker.exists()
    # an arbitrary class that is merely importable is refused too
    p2 = _write(tmp_path, {0: {1: [[1, 2, 3, 4], Track(np.zeros(1), np.zeros((1, 17, 3)), np.zeros((1, 4)))]}})
    with pytest.raises(DatasetError, match="refusing to load edge.datasets.poselift.Track"):
        read_poselift_video(p2)


def test_bad_label_file(tmp_path):
    path, _, n = _pickle(tmp_path, "1_2", "x1y1x2y2")
    lab = tmp_path / "1_2.npy"
    np.save(lab, np.full(n, 2))
    with pytest.raises(DatasetError, match=r"1_2\.npy: frame 0: label 2 is not 0 or 1"):
        read_poselift_video(path, lab)
    lab.write_bytes(b"not numpy")
    with pytest.raises(DatasetError, match=r"1_2\.npy: not a valid \.npy"):
        read_poselift_video(path, lab)


def _video(name="4_301", n=40, labels=True, seed=1):
    rng = np.random.default_rng(seed)
    tracks = {}
    for pid, (a, b) in {3: (0, 30), 17: (12, 40)}.items():
        kp = _skeleton(rng, b - a, cx=400 + 50 * pid)
        frames = np.arange(a, b, dtype=np.int64)
        frames = frames[frames != a + 5]
        kp = kp[: len(frames)]
        boxes = np.stack([kp[..., 0].min(1), kp[..., 1].min(1), kp[..., 0].max(1), kp[..., 1].max(1)], 1)
        tracks[pid] = Track(frames, kp, boxes.astype(np.float32))
    lab = (np.arange(n) >= 20).astype(np.uint8) if labels else None
    return PoseVideo(name=name, camera=int(name.split("_")[0]), n_frames=n, tracks=tracks, labels=lab)


def _same(a: PoseVideo, b: PoseVideo):
    assert (a.name, a.camera, a.n_frames) == (b.name, b.camera, b.n_frames)
    assert sorted(a.tracks) == sorted(b.tracks)
    for k in a.tracks:
        np.testing.assert_array_equal(a.tracks[k].frames, b.tracks[k].frames)
        np.testing.assert_array_equal(a.tracks[k].keypoints, b.tracks[k].keypoints)
        np.testing.assert_array_equal(a.tracks[k].boxes, b.tracks[k].boxes)
    if a.labels is None:
        assert b.labels is None
    else:
        np.testing.assert_array_equal(a.labels, b.labels)


def test_writer_round_trip_and_format(tmp_path):
    v = _video()
    write_poselift_video(v, tmp_path / "4_301.pkl", tmp_path / "4_301.npy")
    raw = pickle.loads((tmp_path / "4_301.pkl").read_bytes())
    assert list(raw) == list(range(40))
    for f in range(40):
        assert list(raw[f]) == [k for k in (3, 17) if f in v.tracks[k].frames]
    box, kp = raw[0][3]
    assert isinstance(box, list) and len(box) == 4 and kp.shape == (17, 3)
    back = read_poselift_video(tmp_path / "4_301.pkl", tmp_path / "4_301.npy")
    assert back.bbox_order == "x1y1x2y2"
    _same(v, back)


def test_dataset_tree_and_pickle_files_root(tmp_path):
    train = [_video("1_10", labels=False), _video("1_9", labels=False, seed=3)]
    test = [_video("2_20"), _video("1_21", seed=4)]
    base = write_poselift_dataset(tmp_path, train, test)
    np.save(base / "GT" / "6_112.npy", np.zeros(25, np.uint8))  # labels without poses still count
    for root in (tmp_path, base):
        with pytest.warns(DatasetWarning, match="6_112.npy: labels without a pose file"):
            ds = read_poselift_dataset(root)
        assert [v.name for v in ds.train] == ["1_9", "1_10"]
        assert [v.name for v in ds.test] == ["1_21", "2_20", "6_112"]
        _same(train[1], ds.train[0])
        _same(test[0], ds.test[1])
        assert ds.test[2].n_frames == 25 and not ds.test[2].tracks
    with pytest.warns(DatasetWarning):
        assert len(read_dataset(tmp_path).test) == 3
    with pytest.raises(DatasetError, match="not a PoseLift dataset|neither"):
        read_dataset(tmp_path / "Pickle_files" / "GT")


def test_frame_table(tmp_path):
    v = _video()
    f, i = v.frame_table()
    assert len(f) == sum(len(t) for t in v.tracks.values())
    assert (np.diff(f) >= 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_poselift_video(v, tmp_path / "x.pkl")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_scalars_and_pickle_protocols(tmp_path, protocol):
    rng = np.random.default_rng(5)
    kp = _skeleton(rng, 3)
    data = {np.int64(f): {np.int32(9): [[np.float32(v) for v in _raw(kp[f], "xywh")[0]], kp[f].astype(np.float16)]}
            for f in range(3)}
    p = tmp_path / "2_8.pkl"
    p.write_bytes(pickle.dumps(data, protocol=protocol))
    v = read_poselift_video(p)
    assert v.bbox_order == "xywh" and v.n_frames == 3 and list(v.tracks) == [9]
    np.testing.assert_allclose(v.tracks[9].keypoints, kp.astype(np.float16).astype(np.float32))
