"""``poselift-edge calibrate``: INT8 QDQ ONNX from calibration images, with a report of what INT8 costs."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

FAMILY_CHOICES = ("yolox", "yolov8", "blazepose", "heatmap")


def register(sub) -> None:
    p = sub.add_parser(
        "calibrate", help="INT8 calibration of a detector or pose model (QDQ ONNX)",
        description="Quantize an ONNX detector or pose model to INT8 (QDQ, per-channel weights, symmetric "
                    "activations as TensorRT requires) from a folder of images preprocessed exactly as "
                    "inference does, then compare INT8 with fp32 and write the comparison as JSON beside "
                    "the output.")
    p.add_argument("--model", type=Path, required=True, help="fp32 ONNX model")
    p.add_argument("--images", type=Path, required=True, help="folder of calibration images (from the cameras)")
    p.add_argument("--out", type=Path, required=True, help="INT8 QDQ ONNX to write (e.g. MODEL.int8.onnx)")
    p.add_argument("--family", choices=FAMILY_CHOICES, help="model family (guessed from the model when omitted)")
    p.add_argument("--detector", type=Path, help="fp32 person detector ONNX; pose families need it to cut crops")
    p.add_argument("--detector-family", choices=("yolox", "yolov8"), default="yolox")
    p.add_argument("--eval-images", type=Path, help="images for the INT8 vs fp32 report (default: --images)")
    p.add_argument("--method", choices=("auto", "percentile", "minmax", "entropy"), default="auto",
                   help="activation range calibration; auto: percentile for detectors, minmax for pose models "
                        "(what measured best on the reference models)")
    p.add_argument("--percentile", type=float, default=99.9, help="percentile for --method percentile")
    p.add_argument("--max-images", type=int, default=500, help="use at most this many calibration images")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    p.set_defaults(func=run)


def guess_family(engine) -> str | None:
    """The family an engine's I/O layout points to, or None when it is not clear."""
    if not engine.inputs:
        return None
    shape = tuple(engine.inputs[0].shape)
    outs = {o.name: tuple(o.shape) for o in engine.outputs}
    if len(shape) == 4 and shape[-1] == 3 and "Identity" in outs and "Identity_1" in outs:
        return "blazepose"
    if len(shape) == 4 and shape[1] == 3 and len(outs) == 1:
        o = next(iter(outs.values()))
        if len(o) == 4:
            return "heatmap"
        if len(o) == 3 and isinstance(o[2], int) and o[2] >= 6 and (not isinstance(o[1], int) or o[1] > o[2]):
            return "yolox"
        if len(o) == 3 and isinstance(o[1], int) and o[1] >= 5:
            return "yolov8"
    return None


def run(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from calibration.images import CalibrationDataError
    from engines.base import EngineError

    try:
        return _run(args)
    except (CalibrationDataError, EngineError, ValueError) as e:
        print(f"calibrate: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # ONNX Runtime's quantizer raises bare Exceptions on graphs it cannot handle
        print(f"calibrate: quantizing {args.model} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


def _run(args) -> int:
    from calibration.images import CalibrationDataError, read_images
    from calibration.preprocess import collect_samples
    from calibration.qdq import qdq_node_count, quantize_qdq
    from calibration.report import detector_report, format_report, is_detector, pose_report
    from engines.build import is_qdq_model
    from engines.onnxruntime_backend import OrtEngine

    fp32 = OrtEngine(args.model, threads=args.threads)
    if is_qdq_model(args.model):
        raise CalibrationDataError(f"{args.model} is already quantized (it has Q/DQ nodes); calibrate the fp32 model")
    family = args.family or guess_family(fp32)
    if family is None:
        raise CalibrationDataError(f"cannot tell the family of {args.model} from its inputs/outputs; pass --family")
    if args.out.resolve() == args.model.resolve():
        raise CalibrationDataError(f"--out must differ from --model ({args.out})")
    detector = None
    if not is_detector(family):
        if args.detector is None:
            raise CalibrationDataError(f"{family} calibration needs --detector (an fp32 person detector ONNX) to "
                                       "cut person crops as the pose stage does")
        detector = OrtEngine(args.detector, threads=args.threads)
    paths, images, problems = read_images(args.images)
    for p in problems:
        log.warning("skipped: %s", p)
    if args.max_images and len(images) > args.max_images:
        paths, images = paths[: args.max_images], images[: args.max_images]
    method = args.method if args.method != "auto" else ("percentile" if is_detector(family) else "minmax")
    t0 = time.monotonic()
    samples = collect_samples(family, fp32, images, detector=detector, detector_family=args.detector_family)
    log.info("calibrating %s (%s) on %d samples from %d images in %s", args.model, family, len(samples),
             len(images), args.images)
    quantize_qdq(args.model, args.out, samples, method=method, percentile=args.percentile)
    seconds = time.monotonic() - t0
    log.info("wrote %s (%d Q/DQ nodes) in %.1f s", args.out, qdq_node_count(args.out), seconds)

    eval_dir = args.eval_images or args.images
    epaths, eimages, _ = read_images(eval_dir) if eval_dir != args.images else (paths, images, [])
    names = [p.name for p in epaths]
    int8 = OrtEngine(args.out, threads=args.threads)
    if is_detector(family):
        report = detector_report(fp32, int8, family, eimages, names)
    else:
        report = pose_report(fp32, int8, family, detector, args.detector_family, eimages, names)
    report.update({"model": str(args.model), "int8_model": str(args.out), "calibration_images": len(images),
                   "calibration_samples": len(samples), "calibration_folder": str(args.images),
                   "evaluation_folder": str(eval_dir), "method": method,
                   "percentile": args.percentile if method == "percentile" else None,
                   "seconds": round(seconds, 1),
                   "note": "evaluated on the calibration images" if eval_dir == args.images else
                   "evaluated on separate images"})
    out_json = args.out.with_name(args.out.name.removesuffix(".onnx") + ".report.json")
    from engines.build import atomic_write

    atomic_write(out_json, (json.dumps(report, indent=2) + "\n").encode())
    print(format_report(report))
    print(f"report: {out_json}")
    return 0
