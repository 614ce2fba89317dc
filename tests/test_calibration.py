"""INT8 calibration: image folder refusals, batching and cache of the TensorRT calibrator, preprocessing
shared with inference, and real QDQ quantization of the shipped models run by ONNX Runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calibration.images import CalibrationDataError, list_images, read_images
from calibration.report import match_boxes, pair_iou
from calibration.trt_calibrator import CalibrationBatches, CalibrationCache, calibration_samples
from engines.tensorrt_backend import tensorrt_importable
from tests.conftest import shared_path

has_tensorrt = tensorrt_importable()


def _copy(tmp_path, name, pattern, n=None):
    d = tmp_path / name
    d.mkdir()
    for p in sorted(shared_path("images").glob(pattern))[:n]:
        (d / p.name).write_bytes(p.read_bytes())
    return d


# ------------------------------------------------------------------------------------------- image folder
def test_image_folder_refusals(tmp_path):
    with pytest.raises(CalibrationDataError, match="not found: .*missing"):
        list_images(tmp_path / "missing")
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(CalibrationDataError, match="not a folder"):
        list_images(tmp_path / "file.jpg")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images")
    with pytest.raises(CalibrationDataError, match="no calibration images in .*empty"):
        list_images(empty)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(CalibrationDataError, match="none of the images .* could be read.*a.jpg"):
        read_images(broken)


def test_unreadable_images_are_skipped_and_named(tmp_path):
    d = _copy(tmp_path, "mixed", "humans_0.jpg")
    (d / "zz_broken.png").write_bytes(b"\x89PNG truncated")
    paths, images, problems = read_images(d)
    assert [p.name for p in paths] == ["humans_0.jpg"] and images[0].dtype == np.uint8
    assert len(problems) == 1 and "zz_broken.png" in problems[0]
    with pytest.raises(CalibrationDataError, match="zz_broken.png"):
        read_images(d, skip_unreadable=False)


# ------------------------------------------------------------------------------------------- TRT calibrator parts
def test_batches_are_fixed_size_contiguous_and_wrap_around():
    samples = [np.full((3, 2, 2), i, np.float32) for i in range(5)]
    b = CalibrationBatches(samples, batch_size=2)
    assert len(b) == 3 and b.batch_shape == (2, 3, 2, 2)
    got = [x[:, 0, 0, 0].tolist() for x in b]
    assert got == [[0, 1], [2, 3], [4, 0]]  # the last batch is completed with the first sample
    assert all(x.flags.c_contiguous and x.dtype == np.float32 for x in b)
    assert [x[:, 0, 0, 0].tolist() for x in CalibrationBatches(samples, 8)] == [[0, 1, 2, 3, 4, 0, 1, 2]]
    with pytest.raises(IndexError):
        b.batch(3)


def test_batches_refuse_bad_samples():
    with pytest.raises(CalibrationDataError, match="no calibration samples"):
        CalibrationBatches([], 1)
    with pytest.raises(CalibrationDataError, match="differ in shape"):
        CalibrationBatches([np.zeros((3, 4)), np.zeros((3, 5))], 1)
    with pytest.raises(ValueError, match="batch size"):
        CalibrationBatches([np.zeros(3)], 0)


def test_calibration_cache_round_trip(tmp_path):
    c = CalibrationCache(tmp_path / "det.int8.calib")
    assert c.read() is None
    table = b"TRT-8602-EntropyCalibration2\nimages: 3c010a14\n"
    c.write(table)
    assert c.read() == table and CalibrationCache(c.path).read() == table
    c.write(b"")
    assert c.read() is None  # an empty table makes TensorRT calibrate again
    assert [p.name for p in tmp_path.iterdir()] == ["det.int8.calib"]


def test_implicit_calibration_samples_are_the_inference_preprocessing(tmp_path):
    from calibration.images import read_image
    from engines.adapters import detector_adapter

    d = _copy(tmp_path, "c", "humans_*.jpg", 2)
    files = list_images(d)
    samples = calibration_samples(files, "yolox", (1, 3, 416, 416))
    ref, _ = detector_adapter("yolox", None).preprocess(read_image(files[0]))
    assert samples[0].shape == (3, 416, 416)
    np.testing.assert_array_equal(samples[0], ref["images"][0])
    with pytest.raises(CalibrationDataError, match="does not fit the model input"):
        calibration_samples(files, "yolox", (1, 3, 640, 640))


@pytest.mark.gpu
@pytest.mark.skipif(not has_tensorrt, reason="TensorRT is not installed (Jetson/GPU only)")
def test_entropy_calibrator_feeds_tensorrt(tmp_path):
    from calibration.trt_calibrator import make_entropy_calibrator

    d = _copy(tmp_path, "c", "humans_*.jpg", 2)
    batches = CalibrationBatches(calibration_samples(list_images(d), "yolox", (1, 3, 416, 416)), 1)
    cal = make_entropy_calibrator(batches, CalibrationCache(tmp_path / "x.calib"), "images")
    assert cal.get_batch_size() == 1
    assert cal.get_batch(["images"]) is not None and cal.get_batch(["images"]) is not None
    assert cal.get_batch(["images"]) is None


# ------------------------------------------------------------------------------------------- preprocessing
def test_detector_samples_match_inference_preprocessing():
    from calibration.preprocess import collect_samples
    from engines.adapters import detector_adapter
    from engines.onnxruntime_backend import OrtEngine

    eng = OrtEngine(shared_path("models", "yolox_nano.onnx"), threads=1)
    _, images, _ = read_images(shared_path("images"))
    samples = collect_samples("yolox", eng, images[:2])
    for img, s in zip(images, samples):
        ref, _ = detector_adapter("yolox", eng).preprocess(img)
        np.testing.assert_array_equal(s["images"], ref["images"])


def test_pose_samples_are_person_crops_of_both_passes():
    from calibration.preprocess import collect_samples, detect_boxes
    from engines.onnxruntime_backend import OrtEngine

    det = OrtEngine(shared_path("models", "yolox_nano.onnx"), threads=1)
    pose = OrtEngine(shared_path("models", "mediapipe_pose_landmark_lite.onnx"), threads=1)
    _, images, _ = read_images(shared_path("images"))
    img = images[2]
    n = len(detect_boxes(det, "yolox", img))
    assert n >= 1
    samples = collect_samples("blazepose", pose, [img], detector=det)
    assert len(samples) == 2 * n  # BlazePose runs twice per person: box region, then auxiliary region
    x = samples[0]["input_1"]
    assert x.shape == (1, 256, 256, 3) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    with pytest.raises(CalibrationDataError, match="needs a person detector"):
        collect_samples("blazepose", pose, [img])
    with pytest.raises(CalibrationDataError, match="unknown model family"):
        collect_samples("resnet", pose, [img])


# ------------------------------------------------------------------------------------------- report helpers
def test_box_matching_is_one_to_one_at_iou_half():
    ref = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [100, 100, 110, 110]], np.float32)
    other = np.array([[1, 1, 11, 11], [0, 0, 10, 10], [20, 20, 26, 26]], np.float32)
    iou = pair_iou(ref, other)
    assert iou.shape == (3, 3) and iou[0, 1] == 1.0
    pairs = match_boxes(ref, other, 0.5)
    assert pairs == [(0, 1, 1.0)]  # (1, 2) has IoU 0.36; box 0 of other may not match twice
    assert match_boxes(ref, np.zeros((0, 4)), 0.5) == []


# ------------------------------------------------------------------------------------------- real QDQ
@pytest.fixture(scope="module")
def yolox_int8(tmp_path_factory):
    """Calibrate YOLOX-Nano on the humans_* images with the CLI; the report compares on the peds_* ones."""
    from edge.cli import main

    tmp = tmp_path_factory.mktemp("yolox")
    calib = _copy(tmp, "calib", "humans_*.jpg")
    held_out = _copy(tmp, "eval", "peds_*.jpg")
    out = tmp / "yolox_nano.int8.onnx"
    rc = main(["calibrate", "--model", str(shared_path("models", "yolox_nano.onnx")), "--images", str(calib),
               "--eval-images", str(held_out), "--out", str(out), "--threads", "1"])
    assert rc == 0
    return out


@pytest.mark.slow
def test_qdq_yolox_is_symmetric_int8_and_still_finds_the_people(yolox_int8):
    import onnx
    from onnx import numpy_helper

    from calibration.preprocess import detect_boxes
    from engines.build import is_qdq_model
    from engines.onnxruntime_backend import OrtEngine

    assert is_qdq_model(yolox_int8)
    m = onnx.load(str(yolox_int8))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    q = [n for n in m.graph.node if n.op_type == "QuantizeLinear"]
    assert len(q) > 50
    zps = [inits[n.input[2]] for n in q if len(n.input) > 2 and n.input[2] in inits]
    assert zps and all(z.dtype == np.int8 and not z.any() for z in zps)  # TensorRT needs zero points of 0
    assert any(n.op_type == "DequantizeLinear" and any(a.name == "axis" for a in n.attribute) for n in m.graph.node)

    fp32 = OrtEngine(shared_path("models", "yolox_nano.onnx"), threads=1)
    int8 = OrtEngine(yolox_int8, threads=1)
    _, images, _ = read_images(shared_path("images"))
    people32 = sum(len(detect_boxes(fp32, "yolox", im)) for im in images)
    people8 = [len(detect_boxes(int8, "yolox", im)) for im in images]
    assert people32 >= 20 and all(n > 0 for n in people8)

    report = json.loads(yolox_int8.with_name("yolox_nano.int8.report.json").read_text())
    assert report["kind"] == "detector" and report["note"] == "evaluated on separate images"
    assert report["images"] == 5 and report["fp32_detections"] >= 10
    assert report["kept_fraction"] >= 0.8 and report["mean_matched_iou"] > 0.7


@pytest.mark.slow
def test_qdq_blazepose_lite_report(tmp_path):
    from edge.cli import main

    calib = _copy(tmp_path, "calib", "humans_[01].jpg")
    out = tmp_path / "lite.int8.onnx"
    rc = main(["calibrate", "--model", str(shared_path("models", "mediapipe_pose_landmark_lite.onnx")),
               "--images", str(calib), "--detector", str(shared_path("models", "yolox_nano.onnx")),
               "--out", str(out), "--threads", "1"])
    assert rc == 0
    r = json.loads((tmp_path / "lite.int8.report.json").read_text())
    assert r["kind"] == "pose" and r["family"] == "blazepose" and r["method"] == "minmax"
    assert r["people"] >= 2 and r["keypoints_compared"] > 10
    assert 0 <= r["median_error_px"] < r["p95_error_px"]
    assert r["mean_error_box_height_fraction"] < 0.1  # INT8 keypoints stay on the person


def test_calibrate_cli_refusals(tmp_path, capsys):
    from edge.cli import main

    model = str(shared_path("models", "yolox_nano.onnx"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["calibrate", "--model", model, "--images", str(empty), "--out", str(tmp_path / "o.onnx")]) == 2
    assert "no calibration images" in capsys.readouterr().err
    pose = str(shared_path("models", "mediapipe_pose_landmark_lite.onnx"))
    assert main(["calibrate", "--model", pose, "--images", str(shared_path("images")),
                 "--out", str(tmp_path / "o.onnx")]) == 2
    assert "needs --detector" in capsys.readouterr().err
    assert main(["calibrate", "--model", str(tmp_path / "none.onnx"), "--images", str(empty),
                 "--out", str(tmp_path / "o.onnx")]) == 2
    assert "none.onnx" in capsys.readouterr().err
    assert not (tmp_path / "o.onnx").exists()
