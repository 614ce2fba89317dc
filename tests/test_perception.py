"""Real models on real photos: YOLOX-Nano finds the people, BlazePose places their joints sensibly.

Expected counts and facing directions were read off the photos by eye (overlays drawn with
``poselift-edge detect --overlay``); the crowded group photo (humans_1) and the tackle (humans_0)
are left out of the strict in-box check because limbs of neighbours overlap there.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")

from edge.records import Frame, Tracks, TrackEvent, TrackEventKind  # noqa: E402
from engines.onnxruntime_backend import OrtEngine  # noqa: E402
from tests.conftest import shared_path  # noqa: E402

pytestmark = pytest.mark.shared

# people visible in each photo; (low, high) where one is hard to call (occluded, cut by the edge)
EXPECTED = {"astronaut.png": 1, "camera.png": 1, "humans_0.jpg": 2, "humans_1.jpg": 5, "humans_2.jpg": 2,
            "humans_3.jpg": 2, "humans_4.jpg": 5, "peds_0.jpg": 4, "peds_1.jpg": 1, "peds_2.jpg": (1, 2),
            "peds_3.jpg": (5, 6), "peds_4.jpg": 2}
OVERLAPPING = {"humans_0.jpg", "humans_1.jpg"}
# (image, approximate box centre x in pixels, facing): facing "camera" puts the left shoulder on the image right
FACING = [("peds_0.jpg", 594, "camera"), ("peds_0.jpg", 883, "camera"), ("peds_0.jpg", 1228, "camera"),
          ("peds_0.jpg", 1605, "away"), ("peds_1.jpg", 674, "away"), ("peds_3.jpg", 764, "camera"),
          ("peds_3.jpg", 928, "camera")]
STANDING = ("peds_0.jpg", "peds_1.jpg", "peds_3.jpg", "humans_1.jpg", "humans_4.jpg")
L_SH, R_SH, L_HIP, R_HIP, NOSE = 5, 6, 11, 12, 0


@pytest.fixture(scope="module")
def detector():
    from edge.perception.detector import PersonDetector

    return PersonDetector(OrtEngine(shared_path("models", "yolox_nano.onnx")), "yolox", 0.3, 0.45)


@pytest.fixture(scope="module", params=["full", "lite"])
def results(request, detector):
    from edge.perception.pose import PoseEstimator

    est = PoseEstimator(OrtEngine(shared_path("models", f"mediapipe_pose_landmark_{request.param}.onnx")),
                        "blazepose")
    out = {}
    for name in EXPECTED:
        img = cv2.imread(str(shared_path("images", name)))
        frame = Frame("c", 0, 0.0, img)
        det = detector.detect(frame)
        tracks = Tracks("c", 0, 0.0, np.arange(len(det)), det.boxes, det.scores)
        out[name] = (det, est.estimate(frame, tracks))
    return out


def _person(results, name, cx):
    det, poses = results[name]
    centres = (det.boxes[:, 0] + det.boxes[:, 2]) / 2
    i = int(np.argmin(np.abs(centres - cx)))
    assert abs(centres[i] - cx) < 60, f"{name}: nobody near x={cx}"
    return poses.keypoints[i]


def test_yolox_finds_the_people(results):
    for name, want in EXPECTED.items():
        lo, hi = want if isinstance(want, tuple) else (want, want)
        det, _ = results[name]
        assert lo <= len(det) <= hi, f"{name}: {len(det)} people found, expected {want}"
        assert (det.scores >= 0.3).all() and det.frame_size[0] > 0


def test_keypoints_fall_inside_their_box(results):
    inside_all = total_all = 0
    for name, (det, poses) in results.items():
        for b, kp in zip(det.boxes, poses.keypoints):
            m = 0.1 * np.array([b[2] - b[0], b[3] - b[1]])
            ok = kp[:, 2] > 0.5
            ins = ((kp[:, :2] >= b[:2] - m) & (kp[:, :2] <= b[2:] + m)).all(axis=1)
            inside_all += int((ins & ok).sum())
            total_all += int(ok.sum())
            if name not in OVERLAPPING:
                assert (ins | ~ok).all(), f"{name}: confident keypoints {np.nonzero(ok & ~ins)[0]} outside box {b}"
    assert total_all > 150 and inside_all / total_all > 0.95


def test_left_and_right_are_the_subjects_own(results):
    for name, cx, facing in FACING:
        kp = _person(results, name, cx)
        assert kp[[L_SH, R_SH, L_HIP, R_HIP], 2].min() > 0.5, f"{name} x={cx}: shoulders/hips not confident"
        sign = 1 if facing == "camera" else -1
        assert sign * (kp[L_SH, 0] - kp[R_SH, 0]) > 0, f"{name} x={cx} ({facing}): shoulders swapped"
        assert sign * (kp[L_HIP, 0] - kp[R_HIP, 0]) > 0, f"{name} x={cx} ({facing}): hips swapped"


def test_nose_above_hips_for_standing_people(results):
    checked = 0
    for name in STANDING:
        for kp in results[name][1].keypoints:
            if kp[[NOSE, L_HIP, R_HIP], 2].min() > 0.5:
                assert kp[NOSE, 1] < min(kp[L_HIP, 1], kp[R_HIP, 1]), f"{name}: nose below the hips"
                checked += 1
    assert checked >= 12


def test_batch_across_cameras_and_roi_reuse(detector):
    from edge.perception.pose import PoseEstimator

    path = shared_path("models", "mediapipe_pose_landmark_lite.onnx")
    items = []
    for cam, name in (("a", "peds_0.jpg"), ("b", "peds_3.jpg")):
        frame = Frame(cam, 4, 0.4, cv2.imread(str(shared_path("images", name))))
        det = detector.detect(frame)
        items.append((frame, Tracks(cam, 4, 0.4, 100 + np.arange(len(det)), det.boxes, det.scores)))
    est = PoseEstimator(OrtEngine(path), "blazepose", max_batch=8)
    many = est.estimate_many(items)
    for (frame, tracks), got in zip(items, many):
        one = est.estimate(frame, tracks)
        assert got.camera_id == frame.camera_id and got.track_ids.tolist() == tracks.track_ids.tolist()
        np.testing.assert_allclose(got.keypoints, one.keypoints, atol=1e-3)
    # tracking mode: the second frame starts from the first frame's auxiliary region (one pass)
    reuse = PoseEstimator(OrtEngine(path), "blazepose", reuse_rois=True)
    frame, tracks = items[0]
    first = reuse.estimate(frame, tracks)
    assert len(reuse._rois) == len(tracks)
    second = reuse.estimate(frame, tracks)
    conf = (first.keypoints[..., 2] > 0.5) & (second.keypoints[..., 2] > 0.5)
    d = np.linalg.norm(first.keypoints[..., :2] - second.keypoints[..., :2], axis=-1)[conf]
    assert np.median(d) < 6.0
    gone = Tracks("a", 5, 0.5, [], np.zeros((0, 4)), [], events=(TrackEvent(TrackEventKind.REMOVED, "a", 100, 5),))
    reuse.estimate(frame, Tracks("a", 4, 0.4, [], np.zeros((0, 4)), []))
    reuse.estimate(Frame("a", 5, 0.5, frame.image), gone)
    assert ("a", 100) not in reuse._rois and ("a", 101) in reuse._rois


def _detect_cli(*args):
    from edge.cli import main

    m = shared_path("models")
    return main(["detect", "--detector", str(m / "yolox_nano.onnx"),
                 "--pose", str(m / "mediapipe_pose_landmark_lite.onnx"), *args])


def test_detect_command_on_an_image(tmp_path):
    out, ov = tmp_path / "d.json", tmp_path / "d.png"
    img = shared_path("images", "peds_0.jpg")
    assert _detect_cli("--image", str(img), "--out", str(out), "--overlay", str(ov)) == 0
    doc = json.loads(out.read_text())
    assert [f["frame"] for f in doc["frames"]] == [0]
    persons = doc["frames"][0]["persons"]
    assert len(persons) == 4
    for p in persons:
        assert len(p["box"]) == 4 and 0 < p["score"] <= 1
        assert np.asarray(p["keypoints"]).shape == (17, 3)
    drawn, orig = cv2.imread(str(ov)), cv2.imread(str(img))
    assert drawn.shape == orig.shape and np.abs(drawn.astype(int) - orig).sum() > 0


def test_detect_command_on_a_video_and_bad_input(tmp_path, capsys):
    img = cv2.resize(cv2.imread(str(shared_path("images", "peds_0.jpg"))), (640, 360))
    video = tmp_path / "walk.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15, (640, 360))
    for k in range(4):
        w.write(np.roll(img, 4 * k, axis=1))
    w.release()
    out = tmp_path / "v.json"
    assert _detect_cli("--video", str(video), "--out", str(out), "--overlay", str(tmp_path / "v.avi")) == 0
    frames = json.loads(out.read_text())["frames"]
    assert [f["frame"] for f in frames] == [0, 1, 2, 3]
    assert all(3 <= len(f["persons"]) <= 4 for f in frames)
    if "track_id" in frames[0]["persons"][0]:  # the tracker is installed: ids persist across frames
        ids = [sorted(p["track_id"] for p in f["persons"]) for f in frames[1:]]
        assert all(i == ids[0] for i in ids)
    assert cv2.VideoCapture(str(tmp_path / "v.avi")).read()[0]
    assert _detect_cli("--image", str(tmp_path / "missing.png")) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "junk.png").write_bytes(b"not an image")
    assert _detect_cli("--image", str(tmp_path / "junk.png")) == 2
    assert "not a readable image" in capsys.readouterr().err
    m = shared_path("models")
    from edge.cli import main
    assert main(["detect", "--image", str(shared_path("images", "peds_1.jpg")), "--detector",
                 str(m / "mediapipe_pose_landmark_lite.onnx"), "--pose", str(m / "yolox_nano.onnx")]) == 2
    assert "is this a detector model" in capsys.readouterr().err


def test_dynamic_batch_blazepose_matches_the_original(tmp_path, detector):
    from edge.perception.pose import PoseEstimator
    from engines.batching import make_batch_dynamic

    src = shared_path("models", "mediapipe_pose_landmark_lite.onnx")
    dyn = make_batch_dynamic(src, tmp_path / "lite_dyn.onnx", check_batch=3)
    frame = Frame("a", 0, 0.0, cv2.imread(str(shared_path("images", "peds_3.jpg"))))
    det = detector.detect(frame)
    tracks = Tracks("a", 0, 0.0, np.arange(len(det)), det.boxes, det.scores)
    batched = PoseEstimator(OrtEngine(dyn), "blazepose", max_batch=4)
    assert batched.adapter.fixed_batch is None
    a = batched.estimate(frame, tracks).keypoints
    b = PoseEstimator(OrtEngine(src), "blazepose").estimate(frame, tracks).keypoints
    # raw outputs agree to 1e-3; the 7x7 heatmap window starts at int(x / 4), so a rare keypoint
    # near a window boundary may move by up to a pixel
    d = np.linalg.norm(a[..., :2] - b[..., :2], axis=-1)
    assert np.median(d) < 0.05 and d.max() < 2.0
    np.testing.assert_allclose(a[..., 2], b[..., 2], atol=1e-3)
