"""CPU cost of the perception models under ONNX Runtime: fp32 vs INT8 QDQ, one crop per call vs batched.

YOLOX-Nano: ms per frame (batch 1, as the detector runs). BlazePose GHUM full: ms per person crop, one crop
per call vs 8 crops in one call; the shipped graph fixes the batch at 1, so the batched runs use the graph
rewritten with a dynamic batch axis (``engines.batching.make_batch_dynamic``, checked equal to single runs).
INT8 models are calibrated here on a few reference images with ``calibration.qdq``. Ratios are against the
fp32 batch-1 run of the same model in the same run.

    .venv/bin/python bench/bench_engines.py [--threads 1] [--repeats 20]
    .venv/bin/python bench/bench_engines.py --backend tensorrt     # on a Jetson: fp16 vs INT8 engines

With ``--backend tensorrt`` the same models are built into TensorRT engines (cached in a temporary folder,
through ``engines.select.open_engine``) and timed the same way, host-to-device copies included.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"


def _time(fn, repeats: int) -> float:
    fn()  # warm-up (first run allocates and picks kernels)
    best = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        best.append((time.perf_counter() - t0) / repeats)
    return min(best) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8, help="crops per batched pose call")
    ap.add_argument("--backend", choices=("onnxruntime", "tensorrt"), default="onnxruntime")
    args = ap.parse_args()
    models = SHARED / "models"
    if not (models / "yolox_nano.onnx").exists():
        print(f"reference models not found under {models}", file=sys.stderr)
        return 2

    from calibration.images import read_images
    from calibration.preprocess import collect_samples
    from calibration.qdq import quantize_qdq
    from engines.batching import make_batch_dynamic
    from engines.onnxruntime_backend import OrtEngine

    _, images, _ = read_images(SHARED / "images")
    work = Path(tempfile.mkdtemp(prefix="bench_engines_"))
    quiet = contextlib.redirect_stdout(io.StringIO())
    t = args.threads

    # ---- detector
    det32 = OrtEngine(models / "yolox_nano.onnx", threads=t)
    det_samples = collect_samples("yolox", det32, images)
    with quiet:
        quantize_qdq(models / "yolox_nano.onnx", work / "yolox.int8.onnx", det_samples[:6], method="percentile")
    make_batch_dynamic(full_path := models / "mediapipe_pose_landmark_full.onnx", work / "full.dyn.onnx")
    pose32 = OrtEngine(full_path, threads=t)
    crops = collect_samples("blazepose", pose32, images[:4], detector=det32)
    with quiet:
        quantize_qdq(full_path, work / "full.int8.onnx", crops, method="minmax")
    make_batch_dynamic(work / "full.int8.onnx", work / "full.int8.dyn.onnx", atol=5e-2)
    b = args.batch
    if args.backend == "tensorrt":
        from engines.select import open_engine

        def trt(path, precision, max_batch=1):
            return open_engine(path, backend="tensorrt", precision=precision, cache_dir=work, max_batch=max_batch)

        label32, det32 = "fp16", trt(models / "yolox_nano.onnx", "fp16")
        det8 = trt(work / "yolox.int8.onnx", "int8")
        pose32, pose8 = trt(full_path, "fp16"), trt(work / "full.int8.onnx", "int8")
        dyn32 = trt(work / "full.dyn.onnx", "fp16", b)
        dyn8 = trt(work / "full.int8.dyn.onnx", "int8", b)
    else:
        label32 = "fp32"
        det8 = OrtEngine(work / "yolox.int8.onnx", threads=t)
        pose8 = OrtEngine(work / "full.int8.onnx", threads=t)
        dyn32 = OrtEngine(work / "full.dyn.onnx", threads=t)
        dyn8 = OrtEngine(work / "full.int8.dyn.onnx", threads=t)
    x = det_samples[3]
    d32 = _time(lambda: det32.infer(x), args.repeats)
    d8 = _time(lambda: det8.infer(x), args.repeats)

    stack = np.concatenate([crops[i % len(crops)]["input_1"] for i in range(b)])
    singles = [stack[i:i + 1] for i in range(b)]

    def seq(engine):
        return lambda: [engine.infer({"input_1": s}) for s in singles]

    p32 = _time(seq(pose32), max(2, args.repeats // 4)) / b
    p8 = _time(seq(pose8), max(2, args.repeats // 4)) / b
    pb32 = _time(lambda: dyn32.infer({"input_1": stack}), max(2, args.repeats // 4)) / b
    pb8 = _time(lambda: dyn8.infer({"input_1": stack}), max(2, args.repeats // 4)) / b

    # CPU-side preprocessing that runs with every backend: letterbox of a 1080p frame, one person crop warp
    from engines.adapters import detector_adapter, pose_adapter

    frame = np.ascontiguousarray(np.resize(images[3], (1080, 1920, 3)))
    det_ad, pose_ad = detector_adapter("yolox", None), pose_adapter("blazepose", None)
    rois = pose_ad.initial_rois(np.array([[800, 300, 1000, 900]], np.float32))
    pre_det = _time(lambda: det_ad.preprocess(frame), args.repeats)
    pre_crop = _time(lambda: pose_ad.crop(frame, rois), args.repeats)

    where = f"ONNX Runtime CPU, {t} thread(s)" if args.backend == "onnxruntime" else "TensorRT"
    print(f"{where}; best of 3 x {args.repeats} runs")
    f = label32
    print(f"{'model':38} {'ms':>8} {f'vs {f} b1':>11}")
    print(f"{f'YOLOX-Nano {f}, per frame':38} {d32:8.2f} {1.0:11.2f}")
    print(f"{'YOLOX-Nano INT8 QDQ, per frame':38} {d8:8.2f} {d8 / d32:11.2f}")
    print(f"{f'BlazePose full {f} b1, per person':38} {p32:8.2f} {1.0:11.2f}")
    print(f"{'BlazePose full INT8 b1, per person':38} {p8:8.2f} {p8 / p32:11.2f}")
    print(f"{f'BlazePose full {f} b{b}, per person':38} {pb32:8.2f} {pb32 / p32:11.2f}")
    print(f"{f'BlazePose full INT8 b{b}, per person':38} {pb8:8.2f} {pb8 / p32:11.2f}")
    print(f"{'CPU: letterbox 1080p frame to 416':38} {pre_det:8.2f}")
    print(f"{'CPU: one 256x256 person crop (warp)':38} {pre_crop:8.2f}")
    print("note: the shipped BlazePose graph has a fixed batch of 1; batched rows use the dynamic-batch rewrite.")
    print("note: top-down BlazePose runs 2 passes per new person (1 with region reuse): a frame with N people "
          "costs detector + N x (1..2) x per-person.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
