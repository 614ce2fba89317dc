"""Backend selection and the batch rewrite, on the real models."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from engines.base import EngineError
from engines.onnxruntime_backend import OrtEngine
from engines.select import choose_backend, gpu_present, open_engine
from tests.conftest import shared_path


@pytest.mark.parametrize("requested, trt, gpu, want", [
    ("auto", True, True, "tensorrt"),
    ("auto", True, False, "onnxruntime"),
    ("auto", False, True, "onnxruntime"),
    ("auto", False, False, "onnxruntime"),
    ("onnxruntime", True, True, "onnxruntime"),
    ("tensorrt", True, True, "tensorrt"),
])
def test_choose_backend(requested, trt, gpu, want):
    backend, reason = choose_backend(requested, trt, gpu)
    assert backend == want and reason


def test_choose_backend_reasons_and_refusals():
    assert "not installed" in choose_backend("auto", False, True)[1]
    assert "no NVIDIA GPU" in choose_backend("auto", True, False)[1]
    with pytest.raises(EngineError, match="TensorRT is not installed"):
        choose_backend("tensorrt", False, True)
    with pytest.raises(EngineError, match="no NVIDIA GPU"):
        choose_backend("tensorrt", True, False)
    with pytest.raises(EngineError, match="backend must be one of"):
        choose_backend("openvino", True, True)


def test_gpu_present_looks_at_device_nodes(tmp_path):
    node = tmp_path / "nvidia0"
    assert not gpu_present([str(node)])
    node.write_text("")
    assert gpu_present([str(node)])


def test_open_engine_falls_back_to_onnxruntime_and_logs_why(caplog):
    caplog.set_level(logging.INFO, logger="engines.select")
    eng = open_engine(shared_path("models", "yolox_nano.onnx"), precision="int8", _probe=(False, False))
    assert isinstance(eng, OrtEngine) and "not installed" in eng.selection_reason
    assert any("onnxruntime backend" in r.message for r in caplog.records)
    out = eng.infer({"images": np.zeros((1, 3, 416, 416), np.float32)})
    assert out["output"].shape == (1, 3549, 85)
    with pytest.raises(EngineError, match="TensorRT is not installed"):
        open_engine(shared_path("models", "yolox_nano.onnx"), backend="tensorrt", _probe=(False, False))


@pytest.mark.parametrize("name", ["mediapipe_pose_landmark_full", "yolox_nano"])
def test_dynamic_batch_rewrite_runs_batches_like_single_runs(tmp_path, name):
    from engines.batching import make_batch_dynamic

    dyn = make_batch_dynamic(shared_path("models", f"{name}.onnx"), tmp_path / f"{name}.dyn.onnx")
    eng = OrtEngine(dyn, threads=1)
    one = OrtEngine(shared_path("models", f"{name}.onnx"), threads=1)
    spec = eng.inputs[0]
    assert spec.shape[0] == "batch"
    x = np.random.default_rng(1).random((2, *spec.shape[1:]), dtype=np.float32)
    got = eng.infer({spec.name: x})
    ref = one.infer({spec.name: x[1:2]})
    for k, v in ref.items():
        np.testing.assert_allclose(got[k][1:2], v, atol=1e-3, rtol=1e-3)


def test_dynamic_batch_refuses_a_non_batch1_model(tmp_path):
    from engines.batching import make_batch_dynamic

    bad = tmp_path / "x.onnx"
    bad.write_text("nope")
    with pytest.raises(EngineError, match="x.onnx"):
        make_batch_dynamic(bad, tmp_path / "y.onnx")
    assert not (tmp_path / "y.onnx").exists()


def test_open_engine_warns_about_qdq_on_cpu(tmp_path, caplog):
    from tests.test_engines_build import _qdq_copy

    caplog.set_level(logging.INFO, logger="engines.select")
    eng = open_engine(_qdq_copy(tmp_path), _probe=(False, False))
    assert eng.infer({"x": np.ones((1, 3, 8, 8), np.float32)})["y"].shape == (1, 2, 8, 8)
    assert any("INT8 QDQ model" in r.message and r.levelno == logging.WARNING for r in caplog.records)
