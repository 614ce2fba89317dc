"""ONNX Runtime backend on the real perception models."""

from __future__ import annotations

import numpy as np
import pytest

from engines.base import Engine, EngineError
from engines.onnxruntime_backend import OrtEngine, default_providers
from tests.conftest import shared_path

MODELS = ["yolox_nano", "mediapipe_pose_detection", "mediapipe_pose_landmark_full", "mediapipe_pose_landmark_lite"]


@pytest.mark.parametrize("name", MODELS)
def test_real_model_specs_and_outputs(name):
    eng = OrtEngine(shared_path("models", f"{name}.onnx"), threads=1)
    assert isinstance(eng, Engine) and eng.backend == "onnxruntime"
    feed = {s.name: np.zeros([d if isinstance(d, int) else 1 for d in s.shape], s.dtype) for s in eng.inputs}
    out = eng.infer(feed)
    assert [s.name for s in eng.outputs] == list(out)
    for s in eng.outputs:
        assert out[s.name].shape == tuple(s.shape) and out[s.name].dtype == s.dtype


def test_yolox_spec_is_the_documented_one():
    eng = OrtEngine(shared_path("models", "yolox_nano.onnx"), threads=1)
    (inp,) = eng.inputs
    (out,) = eng.outputs
    assert (inp.name, inp.shape, inp.dtype) == ("images", (1, 3, 416, 416), np.float32)
    assert (out.name, out.shape) == ("output", (1, 3549, 85))


def test_outputs_are_owned_by_the_caller():
    eng = OrtEngine(shared_path("models", "mediapipe_pose_landmark_lite.onnx"), threads=1)
    x = np.random.default_rng(0).random((1, 256, 256, 3), dtype=np.float32)
    a = eng.infer({"input_1": x})["Identity"]
    keep = a.copy()
    eng.infer({"input_1": np.zeros_like(x)})
    np.testing.assert_array_equal(a, keep)


def test_bad_inputs_name_the_input():
    eng = OrtEngine(shared_path("models", "yolox_nano.onnx"), threads=1)
    with pytest.raises(EngineError, match="missing input.*images"):
        eng.infer({})
    with pytest.raises(EngineError, match="unknown input.*bogus"):
        eng.infer({"images": np.zeros((1, 3, 416, 416), np.float32), "bogus": np.zeros(1)})
    with pytest.raises(EngineError, match="'images' has dtype float64"):
        eng.infer({"images": np.zeros((1, 3, 416, 416))})
    with pytest.raises(EngineError, match="'images' has shape .*axis 2 must be 416"):
        eng.infer({"images": np.zeros((1, 3, 320, 416), np.float32)})
    with pytest.raises(EngineError, match="'images' has shape .*rank 4"):
        eng.infer({"images": np.zeros((3, 416, 416), np.float32)})
    with pytest.raises(EngineError, match="numpy array"):
        eng.infer({"images": [[0.0]]})


def test_bad_files_name_the_path(tmp_path):
    with pytest.raises(EngineError, match="not found.*nothere.onnx"):
        OrtEngine(tmp_path / "nothere.onnx")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(EngineError, match="empty.*empty.onnx"):
        OrtEngine(empty)
    text = tmp_path / "text.onnx"
    text.write_text("hello, this is not a model")
    with pytest.raises(EngineError, match="not an ONNX model.*text.onnx"):
        OrtEngine(text)
    png = shared_path("images", "camera.png")
    with pytest.raises(EngineError, match="not an ONNX model.*camera.png"):
        OrtEngine(png)
    # the start of a real model, cut off: looks like ONNX, fails in the parser
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(shared_path("models", "yolox_nano.onnx").read_bytes()[:5000])
    with pytest.raises(EngineError, match="cannot load ONNX model.*cut.onnx"):
        OrtEngine(cut)
    with pytest.raises(EngineError, match="is not a file"):
        OrtEngine(tmp_path)


def test_unavailable_provider_is_refused():
    with pytest.raises(EngineError, match="NoSuchExecutionProvider"):
        OrtEngine(shared_path("models", "yolox_nano.onnx"), providers=["NoSuchExecutionProvider"])


def test_default_providers_order():
    assert default_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert default_providers(["CUDAExecutionProvider", "TensorrtExecutionProvider", "CPUExecutionProvider"]) == [
        "CUDAExecutionProvider", "CPUExecutionProvider"]  # TensorRT EP only on request
    assert default_providers(["AzureExecutionProvider"]) == ["CPUExecutionProvider"]


def test_closed_engine_refuses():
    with OrtEngine(shared_path("models", "yolox_nano.onnx"), threads=1) as eng:
        pass
    with pytest.raises(EngineError, match="closed"):
        eng.infer({"images": np.zeros((1, 3, 416, 416), np.float32)})
