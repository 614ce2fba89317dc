"""``poselift-edge engines``: build TensorRT engines on the device, show what a machine can run."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("engines", help="inference engines: build (TensorRT), info",
                       description="Build TensorRT engines from ONNX on the device that runs them, and show "
                                   "which backends, providers and cached engines this machine has.")
    verbs = p.add_subparsers(dest="verb", required=True)

    b = verbs.add_parser("build", help="build (or reuse) the cached TensorRT engine of an ONNX model")
    b.add_argument("--onnx", type=Path, required=True, help="ONNX model (a QDQ .int8.onnx counts as calibrated)")
    b.add_argument("--precision", choices=("int8", "fp16", "fp32"), default="fp16")
    b.add_argument("--calib", type=Path, help="calibration images for INT8 of a model without Q/DQ nodes")
    b.add_argument("--family", choices=("yolox", "yolov8", "blazepose", "heatmap"),
                   help="how calibration images are preprocessed (with --calib)")
    b.add_argument("--out", type=Path, help="engine cache folder (default: beside the model)")
    b.add_argument("--max-batch", type=int, default=1, help="largest batch of a dynamic-batch model")
    b.add_argument("--opt-batch", type=int, help="batch TensorRT tunes for (default: half of max)")
    b.add_argument("--workspace-mb", type=int, default=1024, help="builder workspace limit in MiB")
    b.set_defaults(func=_build)

    i = verbs.add_parser("info", help="backends, providers, device identity; a model's inputs and cache state")
    i.add_argument("--onnx", type=Path, help="also describe this model")
    i.add_argument("--precision", choices=("int8", "fp16", "fp32"), default="fp16")
    i.add_argument("--out", type=Path, help="engine cache folder (default: beside the model)")
    i.add_argument("--max-batch", type=int, default=1)
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=_info)

    d = verbs.add_parser("dynamic-batch", help="rewrite a batch-1 ONNX model to a dynamic batch axis")
    d.add_argument("--onnx", type=Path, required=True)
    d.add_argument("--out", type=Path, required=True)
    d.set_defaults(func=_dynamic)


def _err(msg: str) -> int:
    print(f"engines: {msg}", file=sys.stderr)
    return 2


def _build(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from calibration.images import CalibrationDataError
    from engines.base import EngineError
    from engines.build import BuildRequest, TensorRTUnavailable, get_or_build, plan_build

    try:
        plan = plan_build(BuildRequest(args.onnx, args.precision, args.out, args.calib, args.family,
                                       args.max_batch, args.opt_batch, args.workspace_mb))
    except TensorRTUnavailable as e:
        return _err(str(e))
    except (EngineError, CalibrationDataError) as e:
        return _err(str(e))
    prof = plan.profiles
    if args.max_batch > 1 and not any(p.dynamic_batch for p in prof):
        print(f"note: {args.onnx} has a fixed batch of {prof[0].max[0]}; --max-batch is ignored. Make it dynamic "
              "with 'poselift-edge engines dynamic-batch'.", file=sys.stderr)
    print(f"cache key {plan.key[:16]} -> {plan.engine_path}")
    try:
        out = get_or_build(plan, progress=lambda m: print(f"  {m}", flush=True))
    except EngineError as e:
        return _err(str(e))
    for note in out.notes:
        print(f"note: {note}")
    print(("built" if out.built else "cached") + f": {out.path}" + (f" in {out.seconds:.1f} s" if out.built else ""))
    if out.engine is not None:
        out.engine.close()
    return 0


def _info(args) -> int:
    from engines.base import EngineError
    from engines.build import TensorRTUnavailable, BuildRequest, device_identity, is_qdq_model, onnx_inputs, plan_build
    from engines.select import choose_backend, gpu_present
    from engines.cuda_buffers import cuda_bindings_available
    from engines.tensorrt_backend import tensorrt_importable, tensorrt_version

    trt_v = tensorrt_version()
    info: dict = {"tensorrt": trt_v, "cuda_bindings": cuda_bindings_available(), "gpu_present": gpu_present(),
                  "device": device_identity()}
    try:
        import onnxruntime as ort

        info["onnxruntime"] = ort.__version__
        info["onnxruntime_providers"] = list(ort.get_available_providers())
    except ImportError:
        info["onnxruntime"] = None
    info["auto_backend"], info["auto_reason"] = choose_backend("auto", tensorrt_importable(), info["gpu_present"])
    if args.onnx is not None:
        try:
            specs = onnx_inputs(args.onnx)
            m = {"path": str(args.onnx), "qdq_int8": is_qdq_model(args.onnx),
                 "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": str(s.dtype)} for s in specs]}
            try:
                plan = plan_build(BuildRequest(args.onnx, "int8" if m["qdq_int8"] else args.precision, args.out,
                                               max_batch=args.max_batch))
                m.update(cache_key=plan.key, engine=str(plan.engine_path), cached=plan.engine_path.exists(),
                         profiles=[{"name": p.name, "min": p.min, "opt": p.opt, "max": p.max} for p in plan.profiles])
            except TensorRTUnavailable:
                m["engine"] = "n/a (TensorRT is not installed)"
            except EngineError as e:
                m["engine"] = f"cannot be built: {e}"
            info["model"] = m
        except EngineError as e:
            return _err(str(e))
    if args.json:
        print(json.dumps(info, indent=2, default=list))
        return 0
    for k, v in info.items():
        if k != "model":
            print(f"{k:24} {v}")
    if "model" in info:
        for k, v in info["model"].items():
            print(f"model.{k:18} {v}")
    return 0


def _dynamic(args) -> int:
    from engines.base import EngineError
    from engines.batching import make_batch_dynamic

    try:
        out = make_batch_dynamic(args.onnx, args.out)
    except EngineError as e:
        return _err(str(e))
    print(f"wrote {out} (batch axis dynamic; checked against single runs)")
    return 0


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - convenience for python -m
    parser = argparse.ArgumentParser(prog="poselift-edge")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["engines", *(argv or sys.argv[1:])])
    return args.func(args)
