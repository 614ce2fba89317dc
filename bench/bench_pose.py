"""Per-person pose cost on CPU: BlazePose lite/full, batch 1 against batched crops, and the stage.

Run: .venv/bin/python bench/bench_pose.py [--shared ../shared] [--threads N]
Reads the models and photos in ../shared in place. Prints medians and ratios against the batch-1
engine call measured in the same run (the baseline). Finishes in about a minute.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _median_ms(fn, repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: its own)")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    import cv2

    from edge.perception.detector import PersonDetector
    from edge.perception.pose import PoseEstimator
    from edge.records import Frame, Tracks
    from engines.adapters import common
    from engines.batching import make_batch_dynamic
    from engines.onnxruntime_backend import OrtEngine

    models, images = args.shared / "models", args.shared / "images"
    if not (models / "yolox_nano.onnx").exists():
        print(f"models not found under {models}; pass --shared", file=sys.stderr)
        return 2
    det_engine = OrtEngine(models / "yolox_nano.onnx", threads=args.threads)
    detector = PersonDetector(det_engine, "yolox")
    items = []
    for name in ("peds_0.jpg", "peds_3.jpg", "humans_4.jpg"):
        img = cv2.imread(str(images / name))
        frame = Frame(name, 0, 0.0, img)
        d = detector.detect(frame)
        items.append((frame, Tracks(name, 0, 0.0, np.arange(len(d)), d.boxes, d.scores)))
    n_people = sum(len(t) for _, t in items)
    frame0 = items[0][0]
    x_det, _ = detector.adapter.preprocess(frame0.image)
    yolox_ms = _median_ms(lambda: det_engine.infer(x_det), args.repeat)
    yolox_stage_ms = _median_ms(lambda: detector.detect(frame0), args.repeat)
    print(f"YOLOX-Nano 416: engine {yolox_ms:.1f} ms/frame, stage (letterbox + decode + NMS) {yolox_stage_ms:.1f} ms/frame")
    print(f"{n_people} people from {len(items)} photos")

    est0 = PoseEstimator(OrtEngine(models / "mediapipe_pose_landmark_lite.onnx"), "blazepose")
    crops = np.concatenate([est0.adapter.crop(f.image, est0.adapter.initial_rois(t.boxes))[0] for f, t in items])
    rois = np.concatenate([est0.adapter.initial_rois(t.boxes) for _, t in items])
    img = items[0][0].image
    warp_cv = _median_ms(lambda: common.crop_rois(img, rois[:4], (256, 256), use_cv2=True), args.repeat) / 4
    warp_np = _median_ms(lambda: common.crop_rois(img, rois[:4], (256, 256), impl="numpy"), 5) / 4
    warp_nb = _median_ms(lambda: common.crop_rois(img, rois[:4], (256, 256), impl="numba"), args.repeat) / 4
    print(f"crop warp 256x256: OpenCV {warp_cv:.2f} ms/crop; fallbacks: Numba {warp_nb:.2f} ms "
          f"({warp_nb / warp_cv:.1f}x), numpy {warp_np:.2f} ms ({warp_np / warp_cv:.1f}x)")

    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("lite", "full"):
            path = models / f"mediapipe_pose_landmark_{variant}.onnx"
            dyn_path = make_batch_dynamic(path, Path(tmp) / f"{variant}_dyn.onnx")
            eng1 = OrtEngine(path, threads=args.threads)
            engd = OrtEngine(dyn_path, threads=args.threads)
            name = eng1.inputs[0].name
            base = _median_ms(lambda: eng1.infer({name: crops[:1]}), args.repeat * 2)
            print(f"\nBlazePose {variant}: engine batch 1 {base:.2f} ms/crop (baseline)")
            for b in (4, 8, 16):
                x = np.ascontiguousarray(np.resize(crops, (b, *crops.shape[1:])))
                ms = _median_ms(lambda: engd.infer({name: x}), max(args.repeat // 2, 5)) / b
                print(f"  engine batch {b:>2} {ms:6.2f} ms/crop  ratio {ms / base:.2f}")
            for label, eng, reuse in (("stage, batch-1 model, 2 passes", eng1, False),
                                      ("stage, dynamic batch, 2 passes", engd, False),
                                      ("stage, dynamic batch, ROI reuse (1 pass)", engd, True)):
                est = PoseEstimator(eng, "blazepose", max_batch=16, reuse_rois=reuse)
                est.estimate_many(items)
                ms = _median_ms(lambda: est.estimate_many(items), max(args.repeat // 3, 3), warmup=1) / n_people
                print(f"  {label:<42} {ms:6.2f} ms/person  ratio {ms / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
