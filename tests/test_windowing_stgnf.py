"""STG-NF windows: joint mapping, cutting rules, normalisation, and parity with the reference's outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.windowing.live import LiveWindows
from edge.windowing.stgnf import (
    DETRENDED, coco17_to_18, flip_x, model_input, normalize_window, track_windows, training_windows, window_starts,
)

from conftest import shared_path


def _read_json_tracks(path):
    """Small local reader of the STG-NF JSON layout: {person: {frame: {keypoints, scores}}}."""
    data = json.loads(path.read_text())
    out = []
    for pid, frames in data.items():
        f = np.array([int(k) for k in frames], np.int64)
        kp = np.array([frames[k]["keypoints"] for k in frames], np.float64).reshape(-1, 17, 3)
        out.append((int(pid), f, kp))
    return out


def test_coco17_to_18_order_and_neck():
    kp = np.arange(17 * 3, dtype=np.float64).reshape(17, 3)
    out = coco17_to_18(kp)
    assert out.shape == (18, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[1], 0.5 * (kp[5] + kp[6]))
    for j, src in enumerate([0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3]):
        if src is not None:
            np.testing.assert_array_equal(out[j], kp[src])
    with pytest.raises(ValueError, match="17"):
        coco17_to_18(np.zeros((5, 18, 3)))


def test_cutting_rules():
    kp = np.random.default_rng(0).normal(size=(60, 17, 3))
    # L detections give nothing (the last window is never produced); L + 1 give one
    assert len(window_starts(np.arange(24))) == 0
    assert len(window_starts(np.arange(21))) == 0
    np.testing.assert_array_equal(window_starts(np.arange(25)), [0])
    np.testing.assert_array_equal(window_starts(np.arange(30)), np.arange(6))
    # stride: n = ceil((F - L) / s) candidates starting at detection i * s
    np.testing.assert_array_equal(window_starts(np.arange(37), stride=6), [0, 6, 12])
    np.testing.assert_array_equal(window_starts(np.arange(36), stride=6), [0, 6])
    # two missing frames inside a window are tolerated, three are not
    f2 = np.delete(np.arange(40), [10, 11])
    f3 = np.delete(np.arange(40), [10, 11, 12])
    assert 0 in window_starts(f2) and 0 not in window_starts(f3)
    starts, win = track_windows(f2, kp[:len(f2)])
    assert win.shape == (len(starts), 24, 17, 3)
    np.testing.assert_array_equal(win[0], kp[:24])  # the 24 available detections, no padding
    # unsorted input is sorted; duplicates are refused
    order = np.random.default_rng(1).permutation(30)
    s1, w1 = track_windows(np.arange(30)[order], kp[:30][order])
    s0, w0 = track_windows(np.arange(30), kp[:30])
    np.testing.assert_array_equal(s1, s0)
    np.testing.assert_array_equal(w1, w0)
    with pytest.raises(ValueError, match="duplicate"):
        track_windows(np.r_[np.arange(29), 5], kp[:30])
    with pytest.raises(ValueError, match="frame numbers"):
        track_windows(np.arange(10), kp[:9])


def test_normalise_layouts_and_errors():
    rng = np.random.default_rng(2)
    pix = rng.uniform(0, 500, size=(3, 24, 18, 3))
    a = normalize_window(pix)
    b = normalize_window(np.moveaxis(pix, -1, 1))
    assert a.shape == (3, 2, 24, 18) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[:, 1].reshape(3, -1).std(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(a.reshape(3, 2, -1).mean(axis=2), 0, atol=1e-6)
    # the divisors' ratio survives standardisation: x is scaled by (480/856) relative to true proportions
    c = normalize_window(pix, divisors=(480.0, 480.0))
    np.testing.assert_allclose(a[:, 0], c[:, 0] * 480 / 856, rtol=1e-5, atol=1e-6)
    # flip is x -> -x before normalisation
    np.testing.assert_allclose(normalize_window(flip_x(pix))[:, 0], -a[:, 0], atol=1e-6)
    # a flat window (all y equal) stays finite
    assert np.isfinite(normalize_window(np.zeros((1, 24, 18, 3)))).all()
    with pytest.raises(ValueError, match="non-finite"):
        bad = pix.copy()
        bad[1, 3, 4, 0] = np.nan
        normalize_window(bad)
    with pytest.raises(ValueError, match="shape"):
        normalize_window(np.zeros((3, 24, 17, 3)))
    with pytest.raises(ValueError, match="divisors"):
        normalize_window(pix, divisors=(0, 480))



def _walking(rng, n=4, t=24, speed=(9.0, -4.0)):
    """A pose that moves only its limbs, carried through the view at a constant speed (px/frame)."""
    base = rng.uniform(300, 500, size=(n, 1, 18, 3)) + rng.normal(0, 6, size=(n, t, 18, 3))
    drift = np.arange(t)[None, :, None] * np.array(speed)[None, None, :]
    walked = base.copy()
    walked[..., :2] += drift[:, :, None, :]
    return base, walked


def test_detrended_normalisation_removes_steady_drift_only():
    rng = np.random.default_rng(5)
    base, walked = _walking(rng)
    d_walk = normalize_window(walked, method=DETRENDED)
    d_base = normalize_window(base, method=DETRENDED)
    np.testing.assert_allclose(d_walk, d_base, atol=1e-5)  # constant velocity through the view is gone
    # the published rule keeps it: the walked window reads as a different, stretched pose
    assert np.abs(normalize_window(walked) - normalize_window(base)).max() > 0.5
    np.testing.assert_allclose(d_walk[:, 1].reshape(4, -1).std(axis=1), 1, atol=1e-6)
    # per frame, the body centre sits on no line any more: fitting one again finds nothing
    centre = d_walk.mean(axis=3)  # (n, 2, t)
    u = np.arange(24) - 11.5
    assert np.abs(centre.mean(axis=2)).max() < 1e-5 and np.abs(centre @ u).max() < 1e-3
    # anything that is not a straight line stays: a half step back and forth
    stepped = base.copy()
    stepped[:, 8:16, :, 0] += 80.0  # about 1.4 std of y
    assert np.abs(normalize_window(stepped, method=DETRENDED) - d_base).max() > 0.5
    np.testing.assert_allclose(normalize_window(flip_x(walked), method=DETRENDED)[:, 0], -d_walk[:, 0], atol=1e-5)
    assert np.isfinite(normalize_window(np.zeros((1, 24, 18, 3)), method=DETRENDED)).all()


def test_detrended_equals_the_published_rule_without_drift():
    rng = np.random.default_rng(6)
    pix = rng.uniform(0, 500, size=(3, 24, 18, 3))
    centre = pix[..., :2].mean(axis=2, keepdims=True)
    still = pix.copy()
    still[..., :2] -= centre - centre.mean(axis=1, keepdims=True)  # the body centre no longer moves
    np.testing.assert_allclose(normalize_window(still, method=DETRENDED), normalize_window(still), atol=1e-6)


def test_unknown_normalisation_is_named():
    with pytest.raises(ValueError, match="unknown window normalisation 'per-frame'"):
        normalize_window(np.zeros((1, 24, 18, 3)), method="per-frame")
    with pytest.raises(ValueError, match="normalisation"):
        LiveWindows(24, normalization="per-frame")


def test_reproduces_reference_model_input():
    v = np.load(shared_path("reference", "stgnf", "windows.npz"))
    x = model_input(v["raw_coco17_pixels"])
    np.testing.assert_array_equal(x, v["x"])


def test_reproduces_reference_test_and_train_windows():
    root = shared_path("reference", "stgnf", "preproc")
    ref = np.load(root / "preproc_and_scoring.npz")
    meta, wins, tracks = [], [], []
    for clip in ("01_0001", "01_0002"):
        scene, num = map(int, clip.split("_"))
        for pid, f, kp in _read_json_tracks(root / "data" / "ShanghaiTech" / "pose" / "test" /
                                            f"{clip}_alphapose_tracked_person.json"):
            starts, w = track_windows(f, kp, seg_len=24, stride=1)
            meta += [(scene, num, pid, s) for s in starts]
            wins.append(w)
            tracks.append((f, kp))
    np.testing.assert_array_equal(np.array(meta), ref["test_meta"])
    w = np.concatenate(wins)
    np.testing.assert_array_equal(np.moveaxis(coco17_to_18(w), -1, 1), ref["test_segs_pixels18"])
    norm = normalize_window(coco17_to_18(w), keep_confidence=True)
    np.testing.assert_allclose(norm, ref["test_windows_norm"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(model_input(w), ref["test_windows_norm"][:, :2].astype(np.float32))
    # training: stride 6, identity windows then flipped ones
    train = training_windows(tracks, seg_len=24, stride=6)
    np.testing.assert_array_equal(train, ref["train_windows_norm"][:, :2].astype(np.float32))
    assert len(train) == 2 * len(ref["train_meta"])
