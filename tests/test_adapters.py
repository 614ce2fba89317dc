"""Adapters: geometry helpers, NMS, YOLOX/YOLOv8 decoding, heatmap and BlazePose decoding.

The YOLOv8 and heatmap models here are real ONNX graphs built with onnx.helper whose outputs are a
known function of their input, run by ONNX Runtime through the product's engine.
"""

from __future__ import annotations

import numpy as np
import pytest

from engines.adapters import common
from engines.adapters.blazepose import BlazePoseAdapter, refine_from_heatmap, rois_from_aux
from engines.adapters.heatmap import decode_heatmaps
from engines.adapters.yolox import YoloxAdapter, yolox_grid

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from engines.onnxruntime_backend import OrtEngine  # noqa: E402


def _save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


# --------------------------------------------------------------------------- geometry

def test_letterbox_topleft_matches_the_yolox_contract():
    img = np.full((300, 500, 3), 7, np.uint8)
    canvas, lb = common.letterbox(img, (416, 416), "topleft", 114)
    r = min(416 / 300, 416 / 500)
    assert lb.scale == pytest.approx(r) and (lb.pad_x, lb.pad_y) == (0, 0)
    nw, nh = int(500 * r), int(300 * r)
    assert (canvas[:nh, :nw] == 7).all() and (canvas[nh:] == 114).all()
    back = lb.to_frame(np.array([[0, 0, nw, nh]], np.float32))
    np.testing.assert_allclose(back[0], [0, 0, 500, 300], atol=1.5)


def test_letterbox_center_pads_evenly():
    img = np.zeros((96, 128, 3), np.uint8)
    canvas, lb = common.letterbox(img, (64, 64), "center", 114)
    assert (lb.scale, lb.pad_x, lb.pad_y) == (0.5, 0.0, 8.0)
    assert (canvas[:8] == 114).all() and (canvas[56:] == 114).all() and (canvas[8:56] == 0).all()


def test_nms_keeps_best_of_overlapping_and_separates_classes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10.5]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    assert common.nms(boxes, scores, 0.45).tolist() == [3, 2]
    classes = np.array([0, 1, 0, 0])
    assert sorted(common.nms(boxes, scores, 0.45, classes=classes).tolist()) == [1, 2, 3]
    assert common.nms(np.zeros((0, 4)), np.zeros(0), 0.5).size == 0


@pytest.mark.skipif(not common.have_cv2(), reason="OpenCV not installed; nothing to compare the numpy warp with")
def test_numpy_warp_agrees_with_opencv():
    rng = np.random.default_rng(0)
    img = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    img = common.resize_bilinear(common.resize_bilinear(img, (40, 30)), (160, 120))  # smooth, like a photo
    rois = np.array([[80, 60, 90, 70, 0.0], [70, 50, 150, 150, 0.6], [10, 10, 60, 60, -2.0]], np.float32)
    for m in common.roi_affines(rois, (64, 48)):
        a = common.warp_affine(img, m, (64, 48), 0, impl="cv2").astype(int)
        b = common.warp_affine(img, m, (64, 48), 0, impl="numpy").astype(int)
        c = common.warp_affine(img, m, (64, 48), 0, impl="numba").astype(int)
        assert np.abs(a - b).mean() < 0.6 and np.abs(a - b).max() <= 3
        assert np.abs(b - c).max() <= 1
    a = common.resize_bilinear(img, (77, 51), use_cv2=True).astype(int)
    b = common.resize_bilinear(img, (77, 51), use_cv2=False).astype(int)
    assert np.abs(a - b).mean() < 0.6 and np.abs(a - b).max() <= 3


def test_roi_affine_follows_the_blazepose_formula():
    roi = np.array([[300.0, 200.0, 180.0, 180.0, 0.4]])
    m = common.roi_affines(roi, (256, 256))[0]
    c, s, side = np.cos(0.4), np.sin(0.4), 180.0
    for u, v in [(0, 0), (256, 0), (128, 128), (17, 200)]:
        want = np.array([300, 200]) + (u / 256 - 0.5) * side * np.array([c, s]) \
            + (v / 256 - 0.5) * side * np.array([-s, c])
        np.testing.assert_allclose(common.apply_affine(m, np.array([[u, v]]))[0], want, atol=1e-9)


def test_box_rois_pad_to_aspect_then_scale():
    r = common.box_rois(np.array([[100, 50, 220, 250]]), aspect=0.75, scale=1.25)[0]
    np.testing.assert_allclose(r, [160, 150, 150 * 1.25, 200 * 1.25, 0])
    r = common.box_rois(np.array([[0, 0, 40, 100]]), aspect=None, scale=1.25)[0]
    np.testing.assert_allclose(r, [20, 50, 125, 125, 0])


# --------------------------------------------------------------------------- YOLOX

def test_yolox_decode_of_one_cell():
    ad = YoloxAdapter(input_size=(416, 416))
    grid, stride = yolox_grid((416, 416))
    assert len(grid) == 3549 and stride[0] == 8 and stride[-1] == 32
    raw = np.zeros((1, 3549, 85), np.float32)
    row = 52 * 52 + 26 * 5 + 7  # stride 16, gy=5, gx=7
    raw[0, row, :5] = [0.5, 0.25, np.log(4.0), np.log(8.0), 0.9]
    raw[0, row, 5] = 0.8
    raw[0, 10, 4:7] = [0.9, 0.1, 0.9]  # a confident non-person
    out = ad.postprocess({"output": raw}, common.Letterbox(0.5, 0, 0, (832, 832)))
    assert len(out) == 1
    cx, cy, w, h = (7.5) * 16, (5.25) * 16, 64, 128
    np.testing.assert_allclose(out.boxes[0], np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) / 0.5,
                               rtol=1e-5)
    assert out.scores[0] == pytest.approx(0.72)
    with pytest.raises(ValueError, match="3549"):
        ad.postprocess({"output": raw[:, :100]}, common.Letterbox(1, 0, 0, (416, 416)))


# --------------------------------------------------------------------------- YOLOv8 on a built model

def _yolov8_model(path):
    """[1,3,64,64] RGB/255 -> [1,84,64]: 8x8 grid of 16x16 boxes; person = mean R, class 1 = mean G per cell."""
    gy, gx = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    boxes = np.stack([gx.ravel() * 8 + 4, gy.ravel() * 8 + 4, np.full(64, 16), np.full(64, 16)]).astype(np.float32)
    inits = [numpy_helper.from_array(boxes[None], "boxes"),
             numpy_helper.from_array(np.zeros((1, 78, 64), np.float32), "zeros"),
             numpy_helper.from_array(np.array([1, 2, 64], np.int64), "shape")]
    nodes = [helper.make_node("AveragePool", ["images"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
             helper.make_node("Slice", ["pooled", "s0", "s1", "ax"], ["rg"]),
             helper.make_node("Reshape", ["rg", "shape"], ["cls2"]),
             helper.make_node("Concat", ["boxes", "cls2", "zeros"], ["output0"], axis=1)]
    inits += [numpy_helper.from_array(np.array([0], np.int64), "s0"),
              numpy_helper.from_array(np.array([2], np.int64), "s1"),
              numpy_helper.from_array(np.array([1], np.int64), "ax")]
    g = helper.make_graph(nodes, "yolov8_like",
                          [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
                          [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 84, 64])], inits)
    return _save(g, path)


def test_yolov8_layout_decodes_through_a_real_model(tmp_path):
    from edge.perception.detector import PersonDetector
    from edge.records import Frame

    eng = OrtEngine(_yolov8_model(tmp_path / "v8.onnx"))
    frame = np.zeros((96, 128, 3), np.uint8)
    frame[16:32, 32:48] = (0, 0, 255)  # red (BGR) -> person cell (2, 2) after the centred letterbox
    frame[80:96, 96:112] = (0, 255, 0)  # green -> class 1 only
    det = PersonDetector(eng, "yolov8", score_thresh=0.5, nms_iou=0.45)
    d = det.detect(Frame("cam", 3, 0.2, frame))
    assert len(d) == 1 and d.frame_size == (128, 96)
    np.testing.assert_allclose(d.boxes[0], [24, 8, 56, 40], atol=1e-4)
    assert d.scores[0] == pytest.approx(1.0, abs=1e-5)
    both = PersonDetector(eng, "yolov8", score_thresh=0.5, classes=(0, 1))
    x, lb = both.adapter.preprocess(frame)
    out = both.adapter.postprocess(eng.infer(x), lb)
    assert sorted(out.class_ids.tolist()) == [0, 1]
    with pytest.raises(ValueError, match="camera 'cam' frame 4"):
        det.detect(Frame("cam", 4, 0.3, frame[..., 0]))


# --------------------------------------------------------------------------- heatmap pose on a built model

def _heatmap_model(path, batch):
    """[N,3,64,48] -> [N,17,16,12]: keypoint k is a Gaussian-weighted stride-4 view of input channel k % 3."""
    r = np.arange(-3, 4)
    g = np.exp(-0.5 * (r[:, None] ** 2 + r[None] ** 2) / 1.5 ** 2)
    w = np.zeros((17, 3, 7, 7), np.float32)
    for k in range(17):
        w[k, k % 3] = g / g.sum()
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.full(17, 4.0, np.float32), "b")]
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["heatmaps"], kernel_shape=[7, 7], strides=[4, 4],
                              pads=[3, 3, 3, 3])]
    g = helper.make_graph(nodes, "heatmap_like",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, 64, 48])],
                          [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [batch, 17, 16, 12])],
                          inits)
    return _save(g, path)


def _blob_frame(points, size=(400, 300), sigma=18.0):
    """Black frame with a red, green and blue Gaussian blob at the three points."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.float64)
    for (px, py), ch in zip(points, (2, 1, 0)):  # BGR index of red, green, blue
        img[..., ch] += 255 * np.exp(-0.5 * ((xx - px) ** 2 + (yy - py) ** 2) / sigma ** 2)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def test_heatmap_pose_recovers_blobs_through_crop_decode_and_inverse_affine(tmp_path):
    from edge.perception.pose import PoseEstimator
    from edge.records import Frame, Tracks

    pts = [(143.3, 97.6), (181.7, 160.2), (131.1, 221.9)]
    img = _blob_frame(pts)
    box = np.array([[100, 50, 220, 250]], np.float32)
    errs = {}
    for refine in ("none", "quarter", "dark"):
        est = PoseEstimator(OrtEngine(_heatmap_model(tmp_path / "hm.onnx", "N")), "heatmap", refine=refine)
        p = est.estimate(Frame("c", 0, 0.0, img), Tracks("c", 0, 0.0, [5], box, [0.9]))
        kp = p.keypoints[0]
        want = np.array([pts[k % 3] for k in range(17)])
        errs[refine] = np.linalg.norm(kp[:, :2] - want, axis=1).max()
    # one heatmap pixel is 250 / 16 = 15.6 frame pixels here
    assert errs["dark"] < 3.0, errs
    assert errs["dark"] < errs["none"] and errs["quarter"] < errs["none"], errs


def test_heatmap_batching_across_cameras_equals_one_by_one(tmp_path):
    from edge.perception.pose import PoseEstimator
    from edge.records import Frame, Tracks

    a = _blob_frame([(143.3, 97.6), (181.7, 160.2), (131.1, 221.9)])
    b = _blob_frame([(250.0, 80.0), (300.5, 120.5), (270.0, 200.0)])
    items = [(Frame("a", 1, 0.1, a), Tracks("a", 1, 0.1, [1, 2], [[100, 50, 220, 250], [90, 40, 230, 260]], [1, 1])),
             (Frame("b", 7, 0.1, b), Tracks("b", 7, 0.1, [9], [[220, 40, 330, 240]], [1]))]
    dyn = PoseEstimator(OrtEngine(_heatmap_model(tmp_path / "dyn.onnx", "N")), "heatmap", max_batch=2)
    one = PoseEstimator(OrtEngine(_heatmap_model(tmp_path / "one.onnx", 1)), "heatmap")
    assert dyn.adapter.fixed_batch is None and one.adapter.fixed_batch == 1
    got, ref = dyn.estimate_many(items), [one.estimate(f, t) for f, t in items]
    for g_, r_ in zip(got, ref):
        assert (g_.camera_id, g_.frame_index) == (r_.camera_id, r_.frame_index)
        np.testing.assert_allclose(g_.keypoints, r_.keypoints, atol=1e-3)
    np.testing.assert_allclose(got[1].keypoints[0, 0, :2], [250, 80], atol=5)
    empty = dyn.estimate(Frame("a", 2, 0.2, a), Tracks("a", 2, 0.2, [], np.zeros((0, 4)), []))
    assert empty.keypoints.shape == (0, 17, 3)


def test_decode_heatmaps_subpixel_on_an_analytic_gaussian():
    yy, xx = np.mgrid[0:64, 0:48]
    hm = np.exp(-0.5 * ((xx - 20.3) ** 2 + (yy - 33.7) ** 2) / 2.0 ** 2)[None, None].repeat(17, 1)
    c, v = decode_heatmaps(hm, "dark")
    np.testing.assert_allclose(c[0, 0], [20.3, 33.7], atol=0.1)
    c, _ = decode_heatmaps(hm, "quarter")
    np.testing.assert_allclose(c[0, 0], [20.25, 33.75], atol=1e-9)
    assert v.shape == (1, 17) and v[0, 0] > 0.9


# --------------------------------------------------------------------------- BlazePose pieces

def test_rois_from_aux_rotation_and_side():
    centre = np.array([[100.0, 200.0], [100.0, 200.0]])
    scale = np.array([[100.0, 120.0], [180.0, 200.0]])  # above the hips: upright; to the right: lying
    r = rois_from_aux(centre, scale)
    np.testing.assert_allclose(r[:, 2], [2 * 80 * 1.25, 2 * 80 * 1.25])
    np.testing.assert_allclose(r[:, 4], [0.0, np.pi / 2], atol=1e-6)


def test_heatmap_refinement_follows_the_mediapipe_rule():
    hm = np.full((1, 64, 64, 39), -20.0, np.float32)
    hm[0, 10, 12, 0] = 5.0  # sigmoid ~ 1 at col 12, row 10
    hm[0, 10, 13, 0] = 0.0  # sigmoid 0.5 at col 13
    xy = np.full((1, 39, 2), 100.0)
    xy[0, 0] = [50.0, 42.0]  # col 12, row 10
    out = refine_from_heatmap(xy, hm)
    s1, s2 = 1 / (1 + np.exp(-5.0)), 0.5
    np.testing.assert_allclose(out[0, 0], [4 * (12 * s1 + 13 * s2) / (s1 + s2), 40.0], atol=1e-3)
    np.testing.assert_allclose(out[0, 1], [100.0, 100.0])  # window max below 0.5: unchanged


def test_blazepose_decode_maps_coco17_and_zeroes_absent_poses():
    ad = BlazePoseAdapter()
    lm = np.zeros((2, 39, 5), np.float32)
    lm[:, :, 0] = np.arange(39) * 2.0
    lm[:, :, 1] = 128.0
    lm[:, :, 3] = 3.0
    out = {"Identity": lm.reshape(2, 195), "Identity_1": np.array([[0.9], [0.2]], np.float32)}
    rois = np.array([[500, 400, 256, 256, 0.0], [500, 400, 512, 512, 0.0]], np.float32)
    kp, aux = ad.decode(out, common.roi_affines(rois, (256, 256)))
    idx = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
    np.testing.assert_allclose(kp[0, :, 0], 500 - 128 + np.array(idx) * 2.0, atol=1e-4)
    np.testing.assert_allclose(kp[0, :, 2], 1 / (1 + np.exp(-3.0)), rtol=1e-5)
    assert (kp[1, :, 2] == 0).all()
    assert aux.shape == (2, 5)
    with pytest.raises(ValueError, match="Identity_1"):
        ad.decode({"Identity": lm.reshape(2, 195)}, common.roi_affines(rois, (256, 256)))
