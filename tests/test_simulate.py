"""Store simulator: deterministic, valid PoseLift output, the real release's shape, plausible bodies."""

from __future__ import annotations

import csv
import pickle
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from conftest import ROOT, shared_path
from edge.datasets import read_poselift_dataset
from edge.simulate import behaviours as bh
from edge.simulate.script import Script
from edge.simulate.body import forward_kinematics, random_shape
from edge.simulate.camera import CAMERAS
from edge.simulate.dataset import (
    PER_CAMERA, TEST_ANOMALOUS, TEST_FRAMES, DatasetPlan, drawn_paper_plan, generate, inventory_plan, make_plan,
    simulate_dataset,
)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    ds, plan, _ = simulate_dataset(out, seed=3, scale="small")
    return out, ds, plan


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_small_is_valid_poselift(small):
    out, ds, plan = small
    back = read_poselift_dataset(out)
    assert len(back.train) == 12 and len(back.test) == 8
    assert not (out / "Pickle_files" / "GT" / "1_10.npy").exists()
    assert {v.camera for v in back.train} == set(range(1, 7))
    for v in back.train + back.test:
        assert v.bbox_order == "x1y1x2y2"
        assert v.tracks, v.name
        assert (v.fps, v.frame_size) == (15.0, (1920, 1080))
    assert all(v.labels is None for v in back.train)
    lab = np.concatenate([v.labels for v in back.test])
    assert 0.2 < lab.mean() < 0.6
    assert sum(int(v.labels.sum()) == 0 for v in back.test) == 2  # two all-normal test videos
    by_name = {v.name: v for v in back.test}
    for a in ds.test:
        b = by_name[a.name]
        np.testing.assert_array_equal(a.labels, b.labels)
        for k in a.tracks:
            np.testing.assert_array_equal(a.tracks[k].keypoints, b.tracks[k].keypoints)
    # enough material to train on: tracks long enough for 24-frame windows
    long_tracks = sum(len(t) >= 25 for v in back.train for t in v.tracks.values())
    assert long_tracks >= 24
    raw = pickle.loads((out / "Pickle_files" / "Train" / "1_10.pkl").read_bytes())
    assert list(raw) == list(range(len(raw)))


def test_same_seed_same_bytes_other_seed_differs(small, tmp_path):
    out, _, _ = small
    simulate_dataset(tmp_path / "a", seed=3, scale="small")
    simulate_dataset(tmp_path / "b", seed=4, scale="small")
    a, ref, b = _files(tmp_path / "a"), _files(out), _files(tmp_path / "b")
    assert a.keys() == ref.keys() and all(a[k] == ref[k] for k in a)
    assert any(a[k] != b.get(k) for k in a)


def test_keypoints_inside_the_frame(small):
    _, ds, _ = small
    kp = np.concatenate([t.keypoints for v in ds.train + ds.test for t in v.tracks.values()])
    x, y = kp[..., 0], kp[..., 1]
    assert ((x >= 0) & (x <= 1919) & (y >= 0) & (y <= 1079)).all()
    on_border = (x == 0) | (x == 1919) | (y == 0) | (y == 1079)
    assert on_border.mean() < 0.02  # people are mostly fully in view
    c = kp[..., 2]
    assert ((c >= 0) & (c <= 1)).all() and 0.6 < c.mean() < 0.9
    assert (c < 0.3).mean() > 0.01  # some keypoints are dropped or hidden


def test_plausible_anatomy(small):
    _, ds, _ = small
    kp = np.concatenate([t.keypoints for v in ds.train for t in v.tracks.values()])
    boxes = np.concatenate([t.boxes for v in ds.train for t in v.tracks.values()])
    y = kp[..., 1]
    shoulders, hips = y[:, [5, 6]].mean(1), y[:, [11, 12]].mean(1)
    knees, ankles, nose = y[:, [13, 14]].mean(1), y[:, [15, 16]].mean(1), y[:, 0]
    upright = (hips - shoulders) > 0  # image y grows downwards
    assert upright.mean() > 0.97
    assert (nose < shoulders).mean() > 0.95
    assert (ankles > knees).mean() > 0.9 and (knees > hips).mean() > 0.85
    h = boxes[:, 3] - boxes[:, 1]
    assert np.median(h) > 150 and (h > 40).all()
    # boxes contain the keypoints
    inside = ((kp[..., 0] >= boxes[:, :1] - 30) & (kp[..., 0] <= boxes[:, 2:3] + 30)
              & (kp[..., 1] >= boxes[:, 1:2] - 30) & (kp[..., 1] <= boxes[:, 3:4] + 30))
    assert inside.mean() > 0.97


def test_body_kinematics_keep_bone_lengths():
    rng = np.random.default_rng(0)
    cam = CAMERAS[1]
    shape = random_shape(rng)
    sc = Script(shape, rng, cam, 15.0, cam.floor_point(0.0, 0.0), 1.0)
    sc.walk_to(cam.floor_point(2.0, 0.5))
    bh.do_stop(sc, "pick")
    bh.conceal(sc, "pocket", -1)
    ctrl, label = sc.controls()
    j = forward_kinematics(shape, ctrl)
    assert j.shape == (len(label), 17, 3) and label.max() == 1
    for a, b, length in ((5, 7, shape.upper_arm), (7, 9, shape.forearm), (11, 13, shape.thigh),
                         (13, 15, shape.shin)):
        np.testing.assert_allclose(np.linalg.norm(j[:, a] - j[:, b], axis=1), length, rtol=1e-6)
    assert (j[:, 0, 2] > j[:, 5, 2]).all() and (j[:, 5, 2] > j[:, 11, 2]).all()
    # during the concealment the right wrist is at the right hip
    d = np.linalg.norm(j[label == 1][:, 10] - j[label == 1][:, 12], axis=1)
    assert d.min() < 0.15


def test_cameras_differ_and_see_their_aisle():
    views = {(c.height, c.tilt, c.focal, c.aisle_angle) for c in CAMERAS.values()}
    assert len(CAMERAS) == 6 and len(views) == 6
    for c in CAMERAS.values():
        lo, hi = c.aisle_range
        assert hi - lo > 2.0


def _inventory():
    d = shared_path("poselift")
    rows = {}
    for split in ("train", "test"):
        with open(d / f"{split}_inventory.csv", newline="") as fh:
            rows[split] = list(csv.DictReader(fh))
    return d, rows


@pytest.mark.shared
def test_paper_plan_matches_the_inventory():
    d, rows = _inventory()
    plan = inventory_plan(d)
    assert make_plan("paper", inventory=d) == plan
    for split, plans in (("train", plan.train), ("test", plan.test)):
        assert [p.name for p in plans] == [r["video"] for r in rows[split]]
        assert [p.n_frames for p in plans] == [int(r["n_frames_pkl"]) for r in rows[split]]
        per_cam = Counter(p.camera for p in plans)
        assert per_cam == Counter(int(r["cam"]) for r in rows[split])
        assert per_cam == Counter({c: v[0 if split == "train" else 1] for c, v in PER_CAMERA.items()})
    assert [p.label_frames for p in plan.test] == [int(r["gt_frames"]) for r in rows["test"]]


@pytest.mark.shared
@pytest.mark.slow
def test_paper_test_split_generated_has_the_release_shape(tmp_path):
    d, rows = _inventory()
    plan = inventory_plan(d)
    test_only = DatasetPlan((), plan.test, plan.source)
    ds = generate(test_only, seed=0)
    lab = np.concatenate([v.labels for v in ds.test])
    assert len(lab) == TEST_FRAMES and int(lab.sum()) == TEST_ANOMALOUS
    assert abs(lab.mean() - 0.317) < 0.001
    for v, r in zip(ds.test, rows["test"]):
        assert v.name == r["video"] and len(v.labels) == int(r["gt_frames"])
        assert int(v.labels.sum()) == int(r["anomaly_frames"])
        assert all(int(t.frames.max()) < int(r["n_frames_pkl"]) for t in v.tracks.values())
        assert 1 <= len(v.tracks) <= 2 * int(r["n_tracks"]) + 1
    assert sum(int(v.labels.sum()) == 0 for v in ds.test) == 6


def test_drawn_paper_plan_has_the_documented_shape():
    plan = drawn_paper_plan(seed=1)
    assert Counter(p.camera for p in plan.train) == Counter({c: v[0] for c, v in PER_CAMERA.items()})
    assert Counter(p.camera for p in plan.test) == Counter({c: v[1] for c, v in PER_CAMERA.items()})
    assert sum(p.label_frames for p in plan.test) == TEST_FRAMES
    assert sum(p.anomaly_frames for p in plan.test) == TEST_ANOMALOUS
    assert sum(p.anomaly_frames == 0 for p in plan.test) == 6
    assert all(15 <= p.label_frames <= 440 and p.anomaly_frames < p.label_frames for p in plan.test)


def test_simulate_cli(tmp_path):
    r = subprocess.run([sys.executable, "-m", "edge.cli", "simulate", "--out", str(tmp_path), "--seed", "2"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "12 train and 8 test videos" in r.stdout
    assert len(list((tmp_path / "Pickle_files" / "Test").glob("*.pkl"))) == 8
    assert len(list((tmp_path / "Pickle_files" / "GT").glob("*.npy"))) == 8
