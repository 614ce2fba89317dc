"""Offline pose filter: gap bridging, masking, smoothing exactness, lag, robustness to bad values."""

from __future__ import annotations

import numpy as np
import pytest

from edge.config import FilteringConfig
from edge.filtering import filter_track, interpolate_gaps, smooth_causal, smooth_centered, smooth_one_euro
from edge.filtering._kernels import CONF_DECAY


def linear_track(n=60, start=100, conf=0.9, vx=3.0, vy=-1.5):
    frames = np.arange(start, start + n, dtype=np.int64)
    t = np.arange(n, dtype=np.float64)
    kp = np.zeros((n, 17, 3), np.float32)
    j = np.arange(17)
    kp[:, :, 0] = 500 + 10 * j[None] + vx * t[:, None]
    kp[:, :, 1] = 300 + 5 * j[None] + vy * t[:, None]
    kp[:, :, 2] = conf
    return frames, kp


def exact(frames, vx=3.0, vy=-1.5, start=100):
    t = (np.asarray(frames) - start).astype(np.float64)
    j = np.arange(17)
    return 500 + 10 * j[None] + vx * t[:, None], 300 + 5 * j[None] + vy * t[:, None]


def test_bridges_keypoint_gaps_and_whole_frames_exactly_on_linear_motion():
    frames, kp = linear_track()
    kp[10:14, 3, 2] = 0.05  # a 4-frame keypoint gap (low confidence)
    keep = np.ones(len(frames), bool)
    keep[30:36] = False  # 6 whole frames missing
    d = interpolate_gaps(frames[keep], kp[keep], max_gap=8, min_conf=0.2)
    assert np.array_equal(d.frames, frames) and d.present.all()
    ex, ey = exact(d.frames)
    np.testing.assert_allclose(d.keypoints[:, :, 0], ex, atol=1e-3)
    np.testing.assert_allclose(d.keypoints[:, :, 1], ey, atol=1e-3)
    assert not d.measured[30:36].any() and not d.measured[10:14, 3].any() and d.measured[10:14, 4].all()


def test_bridged_confidence_decays_from_the_nearer_end():
    frames, kp = linear_track(n=10)
    kp[:, 0, 2] = np.array([0.9, 0.8, 0, 0, 0, 0.6, 0.9, 0.9, 0.9, 0.9])
    c = interpolate_gaps(frames, kp, max_gap=3).keypoints[:, 0, 2]
    np.testing.assert_allclose(c[2:5], 0.6 * CONF_DECAY ** np.array([1, 2, 1]), rtol=1e-6)
    assert (c[2:5] > 0).all() and c[1] == pytest.approx(0.8)


def test_gap_longer_than_max_gap_stays_missing():
    frames, kp = linear_track()
    kp[10:19, 5, 2] = 0.0  # 9 frames > max_gap 8
    keep = np.ones(len(frames), bool)
    keep[40:49] = False  # 9 whole frames
    d = interpolate_gaps(frames[keep], kp[keep], max_gap=8)
    assert (d.keypoints[10:19, 5, 2] == 0).all() and (d.keypoints[9, 5, 2] > 0) and (d.keypoints[19, 5, 2] > 0)
    assert not d.present[40:49].any() and d.present[:40].all() and d.present[49:].all()
    assert np.isfinite(d.keypoints).all()
    f, k = d.poses()
    assert len(f) == len(frames) - 9 and not np.isin(np.arange(140, 149), f).any()
    # exactly max_gap is bridged
    d8 = interpolate_gaps(np.delete(frames, range(40, 48)), np.delete(kp, range(40, 48), axis=0), max_gap=8)
    assert d8.present.all()
    assert not interpolate_gaps(np.delete(frames, [5]), np.delete(kp, [5], axis=0), max_gap=0).present[5]


def test_low_confidence_counts_as_missing_and_keeps_detector_coordinates():
    frames, kp = linear_track(n=20)
    kp[:, 7, 2] = 0.1  # whole track below threshold for this joint
    kp[5, 2, 2] = 0.19
    d = interpolate_gaps(frames, kp, max_gap=0, min_conf=0.2)
    assert (d.keypoints[:, 7, 2] == 0).all() and d.keypoints[5, 2, 2] == 0
    np.testing.assert_array_equal(d.keypoints[:, 7, :2], kp[:, 7, :2])  # coordinates as reported
    assert d.keypoints[6, 2, 2] == pytest.approx(0.9)
    # min_conf 0: confidence 0 is still missing
    kp[3, 1, 2] = 0.0
    assert interpolate_gaps(frames, kp, max_gap=0, min_conf=0.0).keypoints[3, 1, 2] == 0


def test_nan_and_inf_are_missing_and_never_propagate():
    frames, kp = linear_track(n=40)
    kp[5, 0, 0] = np.nan
    kp[6, 1, 1] = np.inf
    kp[7, 2, 2] = np.nan
    kp[20, :, :] = np.nan  # whole frame garbage
    kp[30:40, 9, :2] = np.nan  # tail garbage, never bridged
    for fn in (interpolate_gaps, smooth_centered, smooth_causal):
        d = fn(frames, kp, max_gap=4)
        assert np.isfinite(d.keypoints).all(), fn.__name__
        assert d.present[20] == (fn is not smooth_causal)
    d = smooth_one_euro(frames, kp, fps=15.0, max_gap=4)
    assert np.isfinite(d.keypoints).all()
    d = interpolate_gaps(frames, kp, max_gap=4)
    ex, ey = exact(frames)
    np.testing.assert_allclose(d.keypoints[[5, 7, 20], :3, 0], ex[[5, 7, 20], :3], atol=1e-3)
    assert (d.keypoints[30:, 9, 2] == 0).all()
    # a missing keypoint without finite coordinates sits at the frame's centroid
    np.testing.assert_allclose(d.keypoints[35, 9, :2], d.keypoints[35, np.arange(17) != 9, :2].mean(0), rtol=1e-5)


@pytest.mark.parametrize("window", [1, 2, 5, 8, 9])
def test_centered_is_exact_on_constant_and_linear_input(window):
    frames, kp = linear_track()
    kp[20:23, 4, 2] = 0  # bridged
    kp[40:52, 6, 2] = 0  # not bridged: the window shrinks around it
    d = smooth_centered(frames, kp, window=window, max_gap=8)
    ex, ey = exact(frames)
    use = d.keypoints[:, :, 2] > 0
    np.testing.assert_allclose(d.keypoints[:, :, 0][use], ex[use], atol=1e-3)
    np.testing.assert_allclose(d.keypoints[:, :, 1][use], ey[use], atol=1e-3)
    c = smooth_centered(frames, np.where(np.arange(3) < 2, 123.0, kp).astype(np.float32), window=window)
    np.testing.assert_allclose(c.keypoints[:, :, :2], 123.0, atol=1e-4)


def test_centered_even_window_weights_and_noise_reduction():
    rng = np.random.default_rng(0)
    frames, kp = linear_track(n=400, vx=0, vy=0)
    noise = rng.normal(0, 2.0, (400, 17, 2)).astype(np.float32)
    kp[:, :, :2] += noise
    d = smooth_centered(frames, kp, window=8)
    p = 100
    w = np.r_[0.5, np.ones(7), 0.5] / 8
    assert d.keypoints[p, 0, 0] == pytest.approx(float((kp[p - 4:p + 5, 0, 0] * w).sum()), abs=1e-3)
    resid = d.keypoints[10:-10, :, :2] - kp[10:-10, :, :2] + noise[10:-10]
    assert resid.std() < 0.45 * noise.std()


def _lag(x_true, y_out, mask):
    """Frames the output trails a ramp of unit slope."""
    return float(np.median((x_true - y_out)[mask]))


def test_causal_filters_lag():
    frames, kp = linear_track(n=120, vx=4.0, vy=0.0)
    ex, _ = exact(frames, vx=4.0)
    fit = smooth_causal(frames, kp, window=8, fit=True)
    mean = smooth_causal(frames, kp, window=8, fit=False)
    euro = smooth_one_euro(frames, kp, fps=15.0, min_cutoff=1.0, beta=0.05)
    tail = np.zeros((120, 17), bool)
    tail[40:] = True
    np.testing.assert_allclose(fit.keypoints[:, :, 0], ex, atol=1e-3)  # no lag on constant velocity
    assert _lag(ex, mean.keypoints[:, :, 0], tail) / 4.0 == pytest.approx(3.5, abs=1e-3)
    euro_lag = _lag(ex, euro.keypoints[:, :, 0], tail) / 4.0
    assert 0.0 < euro_lag < 3.5  # adaptive: less than the trailing mean at walking speed


def test_causal_output_only_where_measured():
    frames, kp = linear_track(n=30)
    kp[10:13, 0, 2] = 0
    keep = np.ones(30, bool)
    keep[20:22] = False
    for d in (smooth_causal(frames[keep], kp[keep]), smooth_one_euro(frames[keep], kp[keep], fps=15)):
        assert (d.keypoints[10:13, 0, 2] == 0).all() and not d.present[20:22].any()
        assert d.present[keep[:len(d.present)]].all()


def test_one_euro_restarts_after_an_unbridged_gap():
    frames, kp = linear_track(n=40, vx=0, vy=0)
    kp[20:, :, 0] += 200  # person re-acquired elsewhere after a long gap
    keep = np.r_[np.arange(0, 10), np.arange(20, 40)]
    d = smooth_one_euro(frames[keep], kp[keep], fps=15, max_gap=4)
    assert d.keypoints[20, 0, 0] == pytest.approx(kp[20, 0, 0])  # fresh start, no pull towards old place


def test_filter_track_dispatch_and_input_errors():
    frames, kp = linear_track(n=30)
    for mode in ("none", "centered", "causal", "causal_mean", "one_euro"):
        d = filter_track(frames, kp, FilteringConfig(smoother=mode), fps=15)
        assert d.keypoints.dtype == np.float32 and d.keypoints.shape == (30, 17, 3)
    with pytest.raises(ValueError, match="strictly increasing: frame 103 follows frame 103"):
        interpolate_gaps(np.array([100, 101, 102, 103, 103]), kp[:5])
    with pytest.raises(ValueError, match=r"keypoints must be \(F, 17, 3\)"):
        interpolate_gaps(frames, kp[:, :15])
    with pytest.raises(ValueError, match="1-D integer"):
        interpolate_gaps(frames.astype(float), kp)
    empty = interpolate_gaps(np.zeros(0, np.int64), np.zeros((0, 17, 3), np.float32))
    assert len(empty.frames) == 0 and empty.keypoints.shape == (0, 17, 3)
