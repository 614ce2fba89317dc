"""Engine cache: keys, atomic writes, rebuild of damaged plans, refusals. No TensorRT needed: the builder
and loader are injected; files are real."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from engines.base import EngineError
from engines.build import (
    BuildRequest,
    CacheKeyParts,
    CalibrationRequired,
    TensorRTUnavailable,
    atomic_write,
    calibration_hash,
    device_identity,
    get_or_build,
    is_qdq_model,
    plan_build,
)
from engines.tensorrt_backend import tensorrt_importable
from tests.conftest import ROOT, shared_path

TRT = "8.6.2.3"
DEV = "jetson:NVIDIA Jetson Orin Nano Developer Kit|l4t:# R36 (release), REVISION: 3.0"


def _model(tmp_path: Path, name="yolox_nano.onnx") -> Path:
    """A private copy, so tests can change its bytes and write engines beside it."""
    dst = tmp_path / name
    dst.write_bytes(shared_path("models", "yolox_nano.onnx").read_bytes())
    return dst


def _images(tmp_path: Path, n=3) -> Path:
    d = tmp_path / "calib"
    d.mkdir()
    for p in sorted(shared_path("images").glob("humans_*.jpg"))[:n]:
        (d / p.name).write_bytes(p.read_bytes())
    return d


# ------------------------------------------------------------------------------------------- keys
BASE = CacheKeyParts("a" * 64, TRT, DEV, "fp16", (("images", (1, 3, 416, 416), (1, 3, 416, 416), (1, 3, 416, 416)),))


@pytest.mark.parametrize("change", [
    dict(model_sha256="b" * 64),
    dict(tensorrt_version="10.3.0.30"),
    dict(device="jetson:NVIDIA Jetson Orin NX 16GB|l4t:# R36 (release), REVISION: 3.0"),
    dict(precision="fp32"),
    dict(profiles=(("images", (1, 3, 416, 416), (4, 3, 416, 416), (8, 3, 416, 416)),)),
    dict(profiles=(("images", (1, 3, 640, 640), (1, 3, 640, 640), (1, 3, 640, 640)),)),
    dict(calibration="c" * 64),
])
def test_every_key_component_changes_the_key(change):
    assert replace(BASE, **change).key() != BASE.key()
    assert replace(BASE).key() == BASE.key()  # and the key is deterministic


def test_plan_key_follows_model_bytes_precision_batch_and_calibration(tmp_path):
    m = _model(tmp_path)
    k = plan_build(BuildRequest(m, "fp16"), TRT, DEV).key
    assert plan_build(BuildRequest(m, "fp16"), TRT, DEV).key == k
    assert plan_build(BuildRequest(m, "fp32"), TRT, DEV).key != k
    assert plan_build(BuildRequest(m, "fp16"), "10.3.0", DEV).key != k
    assert plan_build(BuildRequest(m, "fp16"), TRT, "gpu:other").key != k
    calib = _images(tmp_path)
    k8 = plan_build(BuildRequest(m, "int8", calib_dir=calib, family="yolox"), TRT, DEV).key
    (calib / "humans_0.jpg").write_bytes((calib / "humans_0.jpg").read_bytes() + b"\0")
    assert plan_build(BuildRequest(m, "int8", calib_dir=calib, family="yolox"), TRT, DEV).key != k8
    import onnx

    model = onnx.load(str(m))
    model.doc_string = "same graph, different bytes"
    onnx.save(model, str(m))
    assert plan_build(BuildRequest(m, "fp16"), TRT, DEV).key != k


def test_calibration_hash_covers_names_contents_and_preprocessing(tmp_path):
    calib = _images(tmp_path)
    files = sorted(calib.iterdir())
    h = calibration_hash(files, "family=yolox")
    assert calibration_hash(list(reversed(files)), "family=yolox") == h
    assert calibration_hash(files, "family=yolov8") != h
    assert calibration_hash(files[:-1], "family=yolox") != h


def test_device_identity_reads_jetson_and_dgpu_facts(tmp_path):
    assert device_identity(str(tmp_path)) == "unknown-device"
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/model").write_bytes(b"NVIDIA Jetson Orin NX Engineering Reference Developer Kit\0")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R35 (release), REVISION: 4.1, GCID: 33958178\n")
    jet = device_identity(str(tmp_path))
    assert jet == ("jetson:NVIDIA Jetson Orin NX Engineering Reference Developer Kit|"
                   "l4t:# R35 (release), REVISION: 4.1, GCID: 33958178")
    (tmp_path / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 3.0\n")
    assert device_identity(str(tmp_path)) != jet
    g = tmp_path / "gpu"
    (g / "proc/driver/nvidia/gpus/0000:01:00.0").mkdir(parents=True)
    (g / "proc/driver/nvidia/gpus/0000:01:00.0/information").write_text("Model: \t\t NVIDIA H200\nIRQ: 1\n")
    (g / "proc/driver/nvidia/version").write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  570.1\n")
    assert device_identity(str(g)) == "gpu:NVIDIA H200|driver:NVRM version: NVIDIA UNIX x86_64 Kernel Module  570.1"


# ------------------------------------------------------------------------------------------- atomic writes
def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "sub" / "x.engine"
    atomic_write(p, b"first")
    atomic_write(p, [b"sec", b"ond"])
    assert p.read_bytes() == b"second"
    assert [q.name for q in p.parent.iterdir()] == ["x.engine"]


def test_failure_mid_write_leaves_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "x.engine"
    atomic_write(p, b"good plan")

    def chunks():
        yield b"partial"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(p, chunks())
    assert p.read_bytes() == b"good plan"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["x.engine"]


def test_process_killed_mid_write_leaves_no_visible_engine(tmp_path):
    """A real crash (os._exit inside the write): no file under the real name, only a hidden temporary,
    which the next build removes before building again."""
    m = _model(tmp_path)
    plan = plan_build(BuildRequest(m, "fp16"), TRT, DEV)
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from engines.build import atomic_write
        def chunks():
            yield b"x" * 100000
            os._exit(9)
        atomic_write({str(plan.engine_path)!r}, chunks())
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert r.returncode == 9
    assert not plan.engine_path.exists()
    left = [q.name for q in tmp_path.iterdir() if q.name.startswith(f".{plan.engine_path.name}.")]
    assert left and all(n.endswith(".tmp") for n in left)

    calls = []
    out = get_or_build(plan, builder=lambda b, o, n: calls.append(n) or (b"PLAN" + b[:16], b"TIMING"),
                       loader=_loader)
    assert out.built and calls == ["yolox_nano.onnx"]
    assert any("interrupted build" in n for n in out.notes)
    assert not any(q.name.endswith(".tmp") for q in tmp_path.iterdir())


# ------------------------------------------------------------------------------------------- build / rebuild
def _loader(path: Path):
    data = path.read_bytes()
    if not data.startswith(b"PLAN"):
        raise EngineError(f"{path} does not deserialize")
    return ("engine", data)


def test_build_then_reuse_then_rebuild_damaged_plan(tmp_path):
    m = _model(tmp_path)
    plan = plan_build(BuildRequest(m, "fp16", cache_dir=tmp_path / "cache", max_batch=4), TRT, DEV)
    seen = []

    def builder(onnx_bytes, opts, name):
        seen.append((opts.precision, opts.timing_cache, [p.max for p in opts.profiles], opts.explicit_int8))
        return b"PLAN" + hashlib.sha256(onnx_bytes).digest(), b"TIMING-" + str(len(seen)).encode()

    first = get_or_build(plan, builder=builder, loader=_loader)
    assert first.built and first.path == plan.engine_path and first.engine[0] == "engine"
    assert seen == [("fp16", None, [(1, 3, 416, 416)], False)]  # fixed-batch model: max batch stays 1
    assert plan.timing_cache_path.read_bytes() == b"TIMING-1"
    meta = plan.meta_path.read_text()
    assert plan.key in meta and TRT in meta

    again = get_or_build(plan, builder=builder, loader=_loader)
    assert not again.built and len(seen) == 1

    plan.engine_path.write_bytes(b"\x00garbage from another TensorRT")
    rebuilt = get_or_build(plan, builder=builder, loader=_loader)
    assert rebuilt.built and len(seen) == 2
    assert seen[1][1] == b"TIMING-1"  # the timing cache beside the engines was fed back
    assert any("does not load" in n for n in rebuilt.notes)
    assert plan.engine_path.read_bytes().startswith(b"PLAN")


def test_a_fresh_build_that_does_not_load_is_an_error_not_a_loop(tmp_path):
    plan = plan_build(BuildRequest(_model(tmp_path), "fp32"), TRT, DEV)
    with pytest.raises(EngineError, match="just built"):
        get_or_build(plan, builder=lambda b, o, n: (b"NOT A PLAN", None), loader=_loader)


def test_qdq_model_builds_as_explicit_int8_without_calibration(tmp_path):
    qdq = _qdq_copy(tmp_path)
    assert is_qdq_model(qdq)
    plan = plan_build(BuildRequest(qdq, "int8"), TRT, DEV)
    assert plan.explicit_int8 and plan.parts.calibration is None
    got = []
    get_or_build(plan, builder=lambda b, o, n: got.append(o) or (b"PLAN", None), loader=_loader,
                 calibrator_factory=lambda p: pytest.fail("a QDQ model needs no calibrator"))
    assert got[0].explicit_int8 and got[0].calibrator is None


def test_implicit_int8_gets_a_calibrator(tmp_path):
    m = _model(tmp_path)
    plan = plan_build(BuildRequest(m, "int8", calib_dir=_images(tmp_path), family="yolox"), TRT, DEV)
    assert len(plan.calib_files) == 3 and plan.parts.calibration
    got = []
    get_or_build(plan, builder=lambda b, o, n: got.append(o) or (b"PLAN", None), loader=_loader,
                 calibrator_factory=lambda p: ("calibrator for", p.key))
    assert got[0].calibrator == ("calibrator for", plan.key) and not got[0].explicit_int8


def _qdq_copy(tmp_path: Path) -> Path:
    """A tiny real QDQ graph (one quantized Conv) written with the onnx helpers."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.int8), "w_q")
    ws = numpy_helper.from_array(np.array(0.1, np.float32), "w_s")
    s = numpy_helper.from_array(np.array(0.05, np.float32), "s")
    z = numpy_helper.from_array(np.array(0, np.int8), "z")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w_q", "w_s", "z"], ["wd"]),
             helper.make_node("Conv", ["xd", "wd"], ["y"])]
    g = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])], [w, ws, s, z])
    p = tmp_path / "tiny.int8.onnx"
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # the newest onnx writes an IR that older ONNX Runtime (Python 3.10 wheels) refuses
    onnx.save(model, str(p))
    return p


# ------------------------------------------------------------------------------------------- refusals
def test_int8_without_calibration_is_refused(tmp_path):
    with pytest.raises(CalibrationRequired, match="needs calibration.*--calib.*Random calibration is never used"):
        plan_build(BuildRequest(_model(tmp_path), "int8"), TRT, DEV)


def test_int8_with_empty_or_missing_calibration_folder_is_refused(tmp_path):
    from calibration.images import CalibrationDataError

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(CalibrationDataError, match="no calibration images in .*empty"):
        plan_build(BuildRequest(_model(tmp_path), "int8", calib_dir=empty, family="yolox"), TRT, DEV)
    with pytest.raises(CalibrationDataError, match="not found"):
        plan_build(BuildRequest(_model(tmp_path), "int8", calib_dir=tmp_path / "nope", family="yolox"), TRT, DEV)


def test_qdq_model_at_other_precision_is_refused(tmp_path):
    with pytest.raises(EngineError, match="has Q/DQ nodes"):
        plan_build(BuildRequest(_qdq_copy(tmp_path), "fp16"), TRT, DEV)


def test_bad_model_files_are_refused_by_name(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    with pytest.raises(EngineError, match="bad.onnx"):
        plan_build(BuildRequest(bad, "fp16"), TRT, DEV)
    with pytest.raises(EngineError, match="precision"):
        BuildRequest(bad, "int4")


@pytest.mark.skipif(tensorrt_importable(), reason="checks the message shown where TensorRT is absent")
def test_without_tensorrt_build_says_so(tmp_path):
    with pytest.raises(TensorRTUnavailable, match="TensorRT is not installed"):
        plan_build(BuildRequest(_model(tmp_path), "fp16"))


@pytest.mark.skipif(tensorrt_importable(), reason="checks the message shown where TensorRT is absent")
def test_cli_build_exit_codes(tmp_path):
    m = _model(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = lambda *a: subprocess.run([sys.executable, "-m", "edge.cli", "engines", "build", "--onnx", str(m), *a],
                                    capture_output=True, text=True, env=env, timeout=120)
    r = run("--precision", "fp16")
    assert r.returncode == 2 and "TensorRT is not installed" in r.stderr
    r = run("--precision", "int8")
    assert r.returncode == 2 and "needs calibration" in r.stderr
    r = subprocess.run([sys.executable, "-m", "edge.cli", "engines", "info", "--onnx", str(m), "--json"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and '"auto_backend": "onnxruntime"' in r.stdout and '"images"' in r.stdout


@pytest.mark.parametrize("name, family", [("yolox_nano", "yolox"), ("mediapipe_pose_landmark_lite", "blazepose")])
def test_calibration_family_is_guessed_from_the_model(tmp_path, name, family):
    m = tmp_path / f"{name}.onnx"
    m.write_bytes(shared_path("models", f"{name}.onnx").read_bytes())
    plan = plan_build(BuildRequest(m, "int8", calib_dir=_images(tmp_path)), TRT, DEV)
    assert plan.request.family == family
    assert plan.parts.calibration == calibration_hash(plan.calib_files, f"family={family}")
