"""``poselift-edge detect``: people and COCO-17 keypoints in an image or a video, as JSON and an overlay."""

from __future__ import annotations

import json
import sys
from pathlib import Path

_VIDEO_OUT = (".mp4", ".avi", ".mkv")


def register(sub) -> None:
    p = sub.add_parser("detect", help="detect people and keypoints in an image or a video",
                       description="Run the person detector and the top-down pose model on an image or a video. "
                                   "Writes {\"frames\": [{\"frame\", \"persons\": [{\"box\", \"score\", "
                                   "\"keypoints\" (17 x [x, y, conf], COCO order)}]}]} in frame pixels.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", type=Path, help="an image file (PNG, JPEG)")
    src.add_argument("--video", type=Path, help="a video file")
    p.add_argument("--detector", type=Path, required=True, help="person detector ONNX (YOLOX or YOLOv8)")
    p.add_argument("--pose", type=Path, required=True, help="top-down pose ONNX (BlazePose landmarks or heatmaps)")
    p.add_argument("--detector-family", choices=("yolox", "yolov8"), default="yolox")
    p.add_argument("--pose-family", choices=("blazepose", "heatmap"), default="blazepose")
    p.add_argument("--backend", choices=("auto", "onnxruntime", "tensorrt"), default="auto")
    p.add_argument("--score-thresh", type=float, default=0.3, help="minimum person score (default 0.3)")
    p.add_argument("--nms-iou", type=float, default=0.45, help="NMS IoU (default 0.45)")
    p.add_argument("--max-frames", type=int, default=0, help="stop a video after this many frames (0 = all)")
    p.add_argument("--out", type=Path, help="JSON output (default: standard output)")
    p.add_argument("--overlay", type=Path, help="draw the result: a PNG (the image, or the video's first frame "
                                                "with people) or, for a video, .mp4/.avi for every frame")
    p.set_defaults(func=run)


def _open_engine(path: Path, backend: str):
    try:
        from engines.select import open_engine
    except ImportError:
        open_engine = None
    if open_engine is not None:
        return open_engine(path, backend=backend)
    if backend == "tensorrt":
        raise RuntimeError("the TensorRT backend is not available in this installation")
    from engines.onnxruntime_backend import OrtEngine

    return OrtEngine(path)


def _tracker(fps: float):
    """The tracking stage when it is installed, else None (per-frame detections)."""
    try:
        from edge.config import TrackingConfig
        from edge.tracking.stage import TrackingStage
    except ImportError:
        return None
    try:
        return TrackingStage(TrackingConfig(), fps)
    except TypeError:
        return None


def _persons(poses, scores):
    out = []
    for i in range(len(poses)):
        out.append({"box": [round(float(v), 2) for v in poses.boxes[i]],
                    "score": round(float(scores[i]), 4),
                    "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(c), 4)]
                                  for x, y, c in poses.keypoints[i]]})
    return out


def _frames(args):
    """(index, BGR image) pairs from the image or the video."""
    import cv2

    if args.image is not None:
        img = cv2.imread(str(args.image), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"{args.image}: not a readable image")
        yield 0, img
        return
    cap = cv2.VideoCapture(str(args.video))
    if not cap.isOpened():
        raise ValueError(f"{args.video}: not a readable video")
    try:
        i = 0
        while not args.max_frames or i < args.max_frames:
            ok, img = cap.read()
            if not ok or img is None:
                break
            yield i, img
            i += 1
    finally:
        cap.release()


def _video_fps(path: Path) -> float:
    import cv2

    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    cap.release()
    return float(fps) if fps and fps > 0 else 15.0


def run(args) -> int:
    import numpy as np

    from edge.perception.detector import PersonDetector
    from edge.perception.overlay import draw_persons, write_png
    from edge.perception.pose import PoseEstimator
    from edge.records import Frame, Tracks

    for what, path in (("detector", args.detector), ("pose model", args.pose),
                       ("image", args.image), ("video", args.video)):
        if path is not None and not path.is_file():
            print(f"detect: {what} {path} not found", file=sys.stderr)
            return 2
    try:
        detector = PersonDetector(_open_engine(args.detector, args.backend), args.detector_family,
                                  args.score_thresh, args.nms_iou)
        estimator = PoseEstimator(_open_engine(args.pose, args.backend), args.pose_family)
    except (ValueError, RuntimeError, OSError) as e:
        print(f"detect: {e}", file=sys.stderr)
        return 2
    fps = 15.0 if args.image is not None else _video_fps(args.video)
    tracker = _tracker(fps) if args.video is not None else None
    frames_out, writer, png_done = [], None, False
    try:
        for idx, img in _frames(args):
            frame = Frame("detect", idx, idx / fps, img)
            det = detector.detect(frame)
            if tracker is not None:
                tracks = tracker.update(det)
            else:
                tracks = Tracks(det.camera_id, det.frame_index, det.t, np.arange(len(det)), det.boxes, det.scores,
                                frame_size=det.frame_size)
            poses = estimator.estimate(frame, tracks)
            persons = _persons(poses, tracks.scores)
            if tracker is not None:
                for p, tid in zip(persons, tracks.track_ids.tolist()):
                    p["track_id"] = int(tid)
            frames_out.append({"frame": idx, "persons": persons})
            if args.overlay is not None:
                drawn = None
                if args.overlay.suffix.lower() in _VIDEO_OUT and args.video is not None:
                    import cv2

                    drawn = draw_persons(img, poses.boxes, poses.keypoints, tracks.scores)
                    if writer is None:
                        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if args.overlay.suffix.lower() == ".mp4" else "MJPG"))
                        writer = cv2.VideoWriter(str(args.overlay), fourcc, fps, (img.shape[1], img.shape[0]))
                    writer.write(drawn)
                elif not png_done and (len(poses) or args.image is not None):
                    write_png(args.overlay, draw_persons(img, poses.boxes, poses.keypoints, tracks.scores))
                    png_done = True
    except ValueError as e:
        print(f"detect: {e}", file=sys.stderr)
        return 2
    finally:
        if writer is not None:
            writer.release()
    if args.overlay is not None and not png_done and writer is None and frames_out:
        print(f"detect: nobody found; no overlay written to {args.overlay}", file=sys.stderr)
    if args.video is not None and not frames_out:
        print(f"detect: {args.video}: no frame could be decoded", file=sys.stderr)
        return 2
    text = json.dumps({"frames": frames_out})
    if args.out is None:
        print(text)
    else:
        args.out.write_text(text + "\n")
    n = sum(len(f["persons"]) for f in frames_out)
    print(f"detect: {len(frames_out)} frame(s), {n} person detection(s)", file=sys.stderr)
    return 0
