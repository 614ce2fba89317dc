"""TensorRT backend: the pure parts here; the real engine where TensorRT and a GPU exist."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from engines.base import EngineError, TensorSpec
from engines.onnxruntime_backend import OrtEngine
from engines.tensorrt_backend import (
    IOTensor,
    RawTensor,
    batch_of,
    check_trt_input,
    copy_output,
    derive_profile,
    derive_profiles,
    output_shape,
    parse_version,
    plan_tensors,
    select_api,
    specs_of,
    stage_input,
    tensorrt_importable,
)
from tests.conftest import shared_path

has_tensorrt = tensorrt_importable()
MODELS = ["yolox_nano", "mediapipe_pose_detection", "mediapipe_pose_landmark_full", "mediapipe_pose_landmark_lite"]


def test_importing_engines_does_not_import_tensorrt():
    import subprocess

    code = ("import sys, engines.tensorrt_backend, engines.tensorrt_builder, engines.cuda_buffers, engines.build, "
            "engines.select, engines.cli, calibration.trt_calibrator;"
            "print('tensorrt' in sys.modules, 'onnxruntime' in sys.modules, 'pycuda' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]


@pytest.mark.parametrize("text, want", [("8.5.2.2", (8, 5, 2, 2)), ("8.6.2", (8, 6, 2)), ("10.3.0.30", (10, 3, 0, 30)),
                                        ("10.3.0.post1", (10, 3, 0))])
def test_parse_version(text, want):
    assert parse_version(text) == want


def test_select_api_by_version_and_attributes():
    assert select_api("8.5.2.2", has_tensor_api=True, has_binding_api=True) == "binding"
    assert select_api("8.6.1", has_tensor_api=True, has_binding_api=True) == "binding"
    assert select_api("8.6.1", has_tensor_api=True, has_binding_api=False) == "tensor"
    assert select_api("10.3.0", has_tensor_api=True, has_binding_api=False) == "tensor"
    assert select_api("10.3.0", has_tensor_api=True, has_binding_api=True) == "tensor"
    with pytest.raises(EngineError, match="too old"):
        select_api("8.4.1", True, True)
    with pytest.raises(EngineError, match="lacks the tensor API"):
        select_api("10.0.1", False, False)


@pytest.mark.parametrize("name", MODELS)
def test_profiles_from_the_real_model_inputs(name):
    """The shipped graphs fix the batch at 1: the profile is that one shape whatever max batch is asked."""
    eng = OrtEngine(shared_path("models", f"{name}.onnx"), threads=1)
    (p,) = derive_profiles(eng.inputs, max_batch=8)
    shape = tuple(eng.inputs[0].shape)
    assert p.name == eng.inputs[0].name
    assert p.min == p.opt == p.max == shape and shape[0] == 1 and not p.dynamic_batch


def test_profiles_of_a_dynamic_batch_rewrite(tmp_path):
    from engines.batching import make_batch_dynamic
    from engines.build import onnx_inputs

    dyn = make_batch_dynamic(shared_path("models", "mediapipe_pose_landmark_lite.onnx"), tmp_path / "lite.dyn.onnx")
    (spec,) = onnx_inputs(dyn)
    assert spec.shape == ("batch", 256, 256, 3)
    p = derive_profile(spec.name, spec.shape, max_batch=16)
    assert (p.min, p.opt, p.max) == ((1, 256, 256, 3), (8, 256, 256, 3), (16, 256, 256, 3)) and p.dynamic_batch
    assert derive_profile(spec.name, spec.shape, 16, opt_batch=4).opt == (4, 256, 256, 3)
    assert derive_profile(spec.name, spec.shape, 1).max == (1, 256, 256, 3)
    with pytest.raises(EngineError, match="opt batch"):
        derive_profile(spec.name, spec.shape, 4, opt_batch=5)


def test_profile_refusals():
    with pytest.raises(EngineError, match="dynamic non-batch axes \\[2, 3\\]"):
        derive_profile("images", (None, 3, "h", "w"), 4)
    with pytest.raises(EngineError, match="scalar"):
        derive_profile("x", (), 4)
    with pytest.raises(EngineError, match="max batch"):
        derive_profile("x", (None, 3), 0)


def _raw_dynamic():
    return [RawTensor(0, "input_1", True, np.dtype(np.float32), (-1, 256, 256, 3), (1, 256, 256, 3), (16, 256, 256, 3)),
            RawTensor(1, "Identity", False, np.dtype(np.float32), (-1, 195)),
            RawTensor(2, "Identity_1", False, np.dtype(np.float32), (-1, 1))]


def test_buffer_plan_for_dynamic_and_fixed_engines():
    tensors, lo, hi = plan_tensors(_raw_dynamic())
    assert (lo, hi) == (1, 16)
    assert [t.max_shape for t in tensors] == [(16, 256, 256, 3), (16, 195), (16, 1)]
    assert tensors[0].max_nbytes == 16 * 256 * 256 * 3 * 4
    assert specs_of(tensors, inputs=True) == (TensorSpec("input_1", (None, 256, 256, 3), np.dtype(np.float32)),)
    assert [s.shape for s in specs_of(tensors, inputs=False)] == [(None, 195), (None, 1)]
    fixed = [RawTensor(0, "images", True, np.dtype(np.float32), (1, 3, 416, 416)),
             RawTensor(1, "output", False, np.dtype(np.float32), (1, 3549, 85))]
    tensors, lo, hi = plan_tensors(fixed)
    assert (lo, hi) == (1, 1) and tensors[1].max_shape == (1, 3549, 85)
    assert specs_of(tensors, inputs=True)[0].shape == (1, 3, 416, 416)
    with pytest.raises(EngineError, match="no optimization profile"):
        plan_tensors([RawTensor(0, "x", True, np.dtype(np.float32), (-1, 3))])


def test_outputs_are_copies_of_the_batch_prefix_of_reused_buffers():
    tensors, _, _ = plan_tensors(_raw_dynamic())
    out = tensors[1]
    host = np.arange(out.max_nbytes // 4, dtype=np.float32).view(np.uint8)  # a pinned buffer, as bytes
    shape = output_shape(out, 3)
    assert shape == (3, 195)
    a = copy_output(host, out, shape)
    np.testing.assert_array_equal(a, np.arange(3 * 195, dtype=np.float32).reshape(3, 195))
    host.view(np.float32)[:] = -1  # the next inference overwrites the buffer
    assert a[0, 0] == 0 and a.flags.owndata
    with pytest.raises(EngineError, match="exceeds its buffer"):
        copy_output(host, out, (17, 195))
    fixed = IOTensor(0, "output", False, np.dtype(np.float32), (1, 3549, 85), (1, 3549, 85))
    assert output_shape(fixed, 1) == (1, 3549, 85)


def test_inputs_are_staged_and_checked():
    tensors, lo, _ = plan_tensors(_raw_dynamic())
    inp = tensors[0]
    host = np.zeros(inp.max_nbytes, np.uint8)
    x = np.random.default_rng(0).random((2, 256, 256, 3), dtype=np.float32)
    n = stage_input(host, inp, x)
    assert n == x.nbytes
    np.testing.assert_array_equal(host[:n].view(np.float32).reshape(x.shape), x)
    check_trt_input("m", inp, x, lo)
    with pytest.raises(EngineError, match="'input_1' has dtype float64"):
        check_trt_input("m", inp, x.astype(np.float64), lo)
    with pytest.raises(EngineError, match="batch 17 is outside the engine's profile 1..16"):
        check_trt_input("m", inp, np.zeros((17, 256, 256, 3), np.float32), lo)
    with pytest.raises(EngineError, match=r"expects \(batch, 256, 256, 3\)"):
        check_trt_input("m", inp, np.zeros((1, 224, 224, 3), np.float32), lo)
    with pytest.raises(EngineError, match="rank"):
        check_trt_input("m", inp, np.zeros((256, 256, 3), np.float32), lo)
    two = [inp, IOTensor(3, "b", True, np.dtype(np.float32), (-1, 2), (16, 2))]
    with pytest.raises(EngineError, match="disagree on the batch"):
        batch_of({"input_1": x, "b": np.zeros((3, 2), np.float32)}, two)
    assert batch_of({"input_1": x, "b": np.zeros((2, 2), np.float32)}, two) == 2


# ------------------------------------------------------------------------------------------- on a GPU
@pytest.mark.gpu
@pytest.mark.skipif(not has_tensorrt, reason="TensorRT is not installed (Jetson/GPU only)")
def test_tensorrt_engine_matches_onnxruntime(tmp_path):
    from engines.build import BuildRequest, get_or_build, plan_build
    from engines.batching import make_batch_dynamic

    dyn = make_batch_dynamic(shared_path("models", "mediapipe_pose_landmark_lite.onnx"), tmp_path / "lite.dyn.onnx")
    plan = plan_build(BuildRequest(dyn, "fp32", tmp_path, max_batch=4))
    out = get_or_build(plan)
    eng = out.engine
    ref = OrtEngine(dyn, threads=1)
    x = np.random.default_rng(0).random((3, 256, 256, 3), dtype=np.float32)
    got, want = eng.infer({"input_1": x}), ref.infer({"input_1": x})
    for k in want:
        np.testing.assert_allclose(got[k], want[k], atol=2e-2, rtol=1e-2)
    again = get_or_build(plan)
    assert not again.built
    eng.close()
    again.engine.close()
