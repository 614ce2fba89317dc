"""The scorers against the reference vectors (../shared/reference/stgnf): NLL, every flow step, ONNX."""

from __future__ import annotations

import numpy as np
import pytest

from edge.scoring import load_scorer
from edge.scoring.architecture import StgnfArchitecture, check_tensors, infer_architecture
from edge.scoring.flow_numpy import NumpyFlow
from edge.scoring.importer import import_stgnf

from conftest import shared_path


@pytest.fixture(scope="module")
def vectors():
    return np.load(shared_path("reference", "stgnf", "windows.npz"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "stgnf"
    import_stgnf(shared_path("reference", "stgnf", "weights.npz"), out)
    return out


def test_imported_architecture(model_dir):
    from edge.scoring import read_card

    card = read_card(model_dir)
    assert card.architecture == StgnfArchitecture()
    assert card.seg_len == 24 and card.divisors == (856.0, 480.0)
    assert card.training.source == "imported" and card.training.imported_sha256


def test_numpy_nll_and_every_step(model_dir, vectors):
    scorer = load_scorer(model_dir, "numpy")
    nll = scorer.score(vectors["x"])
    assert nll.dtype == np.float32 and nll.shape == (64,)
    assert np.abs(nll - vectors["nll_bpd"]).max() <= 1e-4
    out = scorer.forward(vectors["x"], steps=True)
    assert out.step_z.shape == vectors["step_z"].shape
    for k in range(8):
        assert np.abs(out.step_z[k] - vectors["step_z"][k]).max() <= 5e-4, f"step {k}"
        # log-det within the NLL tolerance: 1e-4 bits/dim = 0.06 nats over 864 dimensions
        np.testing.assert_allclose(out.step_logdet[k], vectors["step_logdet"][k], rtol=0, atol=0.06)
    np.testing.assert_allclose(out.log_pz, vectors["log_pz"], rtol=0, atol=0.06)
    assert np.abs(out.z - vectors["z"]).max() <= 5e-4


def test_float64_matches_reference_float64(vectors):
    w = dict(np.load(shared_path("reference", "stgnf", "weights.npz")))
    arch = infer_architecture(w)
    flow = NumpyFlow(check_tensors(w, arch, "weights.npz"), arch, dtype=np.float64)
    out = flow.forward(vectors["x"])
    assert np.abs(out.nll - vectors["nll_bpd_fp64"]).max() <= 1e-9
    assert np.abs(out.z - vectors["z_fp64"]).max() <= 1e-9
    assert np.abs(out.logdet + out.log_pz - vectors["loglik_nats_fp64"]).max() <= 1e-6


def test_onnxruntime_matches(model_dir, vectors):
    pytest.importorskip("onnxruntime")
    scorer = load_scorer(model_dir, "onnxruntime", threads=1)
    assert np.abs(scorer.score(vectors["x"]) - vectors["nll_bpd"]).max() <= 1e-4
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model_dir / "stgnf.onnx"), providers=["CPUExecutionProvider"])
    _, z = sess.run(None, {"x": vectors["x"]})
    assert np.abs(z - vectors["z"]).max() <= 5e-4


@pytest.mark.parametrize("backend", ["numpy", "onnxruntime"])
def test_batch_independent(model_dir, vectors, backend):
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
    scorer = load_scorer(model_dir, backend, max_batch=256)
    x = np.concatenate([vectors["x"]] * 5)  # 320 windows: batches of 256 and 64
    full = scorer.score(x)
    single = np.concatenate([scorer.score(x[i:i + 1]) for i in range(64)])
    np.testing.assert_array_equal(full[:64], single)
    np.testing.assert_array_equal(full[256:], full[:64])


def test_preproc_windows_scores(model_dir):
    ref = np.load(shared_path("reference", "stgnf", "preproc", "preproc_and_scoring.npz"))
    nll = load_scorer(model_dir).score(ref["test_windows_norm"][:, :2].astype(np.float32))
    assert np.abs(nll - ref["test_nll_bpd"]).max() <= 1e-4


def test_score_input_errors(model_dir):
    scorer = load_scorer(model_dir)
    with pytest.raises(ValueError, match=r"\(N, 2, 24, 18\)"):
        scorer.score(np.zeros((3, 2, 16, 18), np.float32))
    bad = np.zeros((4, 2, 24, 18), np.float32)
    bad[2, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"\[2\]"):
        scorer.score(bad)
    assert scorer.score(np.zeros((0, 2, 24, 18), np.float32)).shape == (0,)
    with pytest.raises(ValueError, match="backend"):
        load_scorer(model_dir, "tensorflow")
