"""Benchmark protocol: against the reference pipeline's arrays, scipy's Gaussian filter, hand cases."""

from __future__ import annotations

import numpy as np
import pytest

from edge.evaluation.metrics import benchmark_metrics
from edge.evaluation.protocol import ClipWindows, clip_frame_scores, frame_scores, gaussian_filter1d, smooth_clip
from tests.conftest import shared_path


def _reference_clips(d) -> list[ClipWindows]:
    meta, score = d["test_meta"], d["test_normality_score"]
    gt_normal = d["frame_gt_normal1"]
    clips, off = [], 0
    for name, n in zip(d["clip_order"], d["clip_lengths"]):
        scene, clip = (int(v) for v in str(name)[:-4].split("_"))
        sel = (meta[:, 0] == scene) & (meta[:, 1] == clip)
        clips.append(ClipWindows(str(name), (1 - gt_normal[off:off + n]).astype(np.uint8), meta[sel, 3],
                                 score[sel], meta[sel, 2]))
        off += int(n)
    return clips


@pytest.fixture(scope="module")
def ref():
    return np.load(shared_path("reference", "stgnf", "preproc", "preproc_and_scoring.npz"))


def test_reference_frame_scores(ref):
    fs = frame_scores(_reference_clips(ref))
    exp = ref["frame_score_with_inf"]
    assert np.array_equal(np.isinf(fs.with_inf), np.isinf(exp))
    fin = np.isfinite(exp)
    np.testing.assert_allclose(fs.with_inf[fin], exp[fin], rtol=0, atol=1e-9)
    np.testing.assert_allclose(fs.unsmoothed, ref["frame_score_unsmoothed"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(fs.smoothed, ref["frame_score_smoothed"], rtol=0, atol=1e-9)
    assert fs.names[-1] == "02_0003.npy" and np.isinf(fs.with_inf[fs.clip(2)]).all()  # no poses: still counted


def test_reference_auc(ref):
    fs = frame_scores(_reference_clips(ref))
    m = benchmark_metrics(fs.labels, fs.smoothed)
    assert abs(m["auc_roc"] - float(ref["auc"])) < 1e-4
    assert abs(m["auc_roc"] - 0.70707) < 1e-4


def test_dropping_the_empty_clip_changes_the_auc(ref):
    clips = _reference_clips(ref)
    full = benchmark_metrics(*_lab_score(frame_scores(clips)))["auc_roc"]
    part = benchmark_metrics(*_lab_score(frame_scores(clips[:2])))["auc_roc"]
    assert abs(full - part) > 1e-3


def _lab_score(fs):
    return fs.labels, fs.smoothed


@pytest.mark.parametrize("n", [1, 2, 3, 7, 24, 60, 500])
@pytest.mark.parametrize("sigma", [0.5, 1, 2.5, 6, 9.54])
def test_gaussian_matches_scipy(n, sigma):
    ndimage = pytest.importorskip("scipy.ndimage")
    x = np.random.default_rng(n).normal(size=n) * 10
    np.testing.assert_allclose(gaussian_filter1d(x, sigma), ndimage.gaussian_filter1d(x, sigma), rtol=0, atol=1e-12)


def test_smoothing_sequence_matches_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    x = np.random.default_rng(5).normal(size=137)
    y = x.copy()
    for s in range(1, 7):
        y = ndimage.gaussian_filter1d(y, s)
    np.testing.assert_allclose(smooth_clip(x), y, rtol=0, atol=1e-12)


def test_centre_min_over_persons_and_fill():
    # two persons, windows of 24 -> centre at start + 12
    a = ClipWindows("a", np.zeros(40, np.uint8), np.array([0, 0, 5]), np.array([-3.0, -5.0, -1.0]), np.array([1, 2, 1]))
    b = ClipWindows("b", np.ones(10, np.uint8))
    fs = frame_scores([a, b], sigmas=())
    assert fs.with_inf[12] == -5.0 and fs.with_inf[17] == -1.0
    assert np.isinf(fs.with_inf[[0, 11, 13, 16, 18, 39]]).all()
    assert fs.fill_value == -1.0  # largest finite per-frame score, not the largest window score
    assert (fs.unsmoothed[fs.clip(1)] == -1.0).all()
    assert fs.unsmoothed[12] == -5.0


def test_minus_inf_becomes_global_minimum_and_centres_past_the_end_are_dropped():
    scores, dropped = clip_frame_scores(20, [0, 1, 10], [-np.inf, -2.0, -4.0])
    assert dropped == 1 and np.isneginf(scores[12]) and scores[13] == -2.0
    fs = frame_scores([ClipWindows("c", np.zeros(20, np.uint8), np.array([0, 1]), np.array([-np.inf, -2.0]))],
                      sigmas=())
    assert fs.unsmoothed[12] == -2.0 and np.isfinite(fs.unsmoothed).all()


def test_bad_scores_are_named():
    with pytest.raises(ValueError, match="clip x: window 1 has a NaN"):
        clip_frame_scores(30, [0, 1], [0.0, np.nan], name="x")
    with pytest.raises(ValueError, match="2 window starts but 1 scores"):
        clip_frame_scores(30, [0, 1], [0.0])
    with pytest.raises(ValueError, match="no window of any test clip"):
        frame_scores([ClipWindows("e", np.zeros(5, np.uint8))])


def test_runs_without_scipy_and_sklearn():
    import subprocess
    import sys

    code = ("import sys; sys.modules['scipy'] = None; sys.modules['sklearn'] = None\n"
            "import numpy as np\n"
            "from edge.evaluation import ClipWindows, frame_scores, benchmark_metrics\n"
            "c = ClipWindows('a', np.r_[np.zeros(30), np.ones(12)].astype(np.uint8), np.arange(30), -np.arange(30.0))\n"
            "fs = frame_scores([c]); m = benchmark_metrics(fs.labels, fs.smoothed)\n"
            "assert m['auc_roc'] > 0.9, m\n")
    subprocess.run([sys.executable, "-c", code], check=True)
