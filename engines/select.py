"""Open the right engine for a model: TensorRT on a Jetson (built and cached on first use), else ONNX Runtime."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

from engines.base import Engine, EngineError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "onnxruntime")

# device nodes that exist where an NVIDIA GPU can be used: discrete GPUs, and the Jetson's integrated one
_GPU_NODES = ("/dev/nvidia0", "/dev/nvhost-ctrl-gpu", "/dev/nvgpu/igpu0/ctrl")


def gpu_present(nodes: Sequence[str] = _GPU_NODES) -> bool:
    return any(os.path.exists(p) for p in nodes)


def choose_backend(requested: str, trt_importable: bool, gpu: bool) -> tuple[str, str]:
    """(backend, reason). 'auto' takes TensorRT only where it imports and a GPU is present."""
    if requested not in BACKENDS:
        raise EngineError(f"backend must be one of {BACKENDS}, got {requested!r}")
    if requested == "onnxruntime":
        return "onnxruntime", "ONNX Runtime requested"
    if requested == "tensorrt":
        if not trt_importable:
            raise EngineError("backend 'tensorrt' requested but TensorRT is not installed here (it comes with "
                              "JetPack on a Jetson); use backend 'auto' or 'onnxruntime'")
        if not gpu:
            raise EngineError("backend 'tensorrt' requested but no NVIDIA GPU device is present")
        return "tensorrt", "TensorRT requested"
    if trt_importable and gpu:
        return "tensorrt", "auto: TensorRT imports and an NVIDIA GPU is present"
    if not trt_importable:
        return "onnxruntime", "auto: TensorRT is not installed, using ONNX Runtime"
    return "onnxruntime", "auto: TensorRT is installed but no NVIDIA GPU device was found, using ONNX Runtime"


def _has_qdq(path: Path) -> bool:
    try:
        from engines.build import is_qdq_model

        return is_qdq_model(path)
    except Exception:
        return False


def open_engine(onnx_path: str | os.PathLike, backend: str = "auto", precision: str = "fp16",
                cache_dir: str | os.PathLike | None = None, calib_dir: str | os.PathLike | None = None,
                max_batch: int = 1, family: str | None = None, providers: Sequence[str] | None = None,
                threads: int | None = None, *, _probe: tuple[bool, bool] | None = None) -> Engine:
    """An engine for ``onnx_path``.

    TensorRT: the plan is taken from ``cache_dir`` (default: beside the model) or built there first (minutes
    on a Jetson). ``precision`` and ``max_batch`` apply to TensorRT; INT8 needs a QDQ model or ``calib_dir``.
    ONNX Runtime runs the ONNX file as it is (a QDQ file runs in INT8). ``_probe`` overrides
    (tensorrt importable, GPU present) for tests.
    """
    from engines.tensorrt_backend import tensorrt_importable

    path = Path(onnx_path)
    trt_ok, gpu = _probe if _probe is not None else (tensorrt_importable(), gpu_present())
    chosen, reason = choose_backend(backend, trt_ok, gpu)
    log.info("%s: %s backend (%s)", path.name, chosen, reason)
    if chosen == "onnxruntime":
        from engines.onnxruntime_backend import OrtEngine

        if precision != "fp32" and backend != "onnxruntime":
            log.info("%s: precision %s applies to TensorRT builds; ONNX Runtime runs the model file as is",
                     path.name, precision)
        eng = OrtEngine(path, providers=providers, threads=threads)
        if eng.providers == ("CPUExecutionProvider",) and _has_qdq(path):
            log.warning("%s is an INT8 QDQ model; ONNX Runtime's CPU kernels run these symmetric S8S8 graphs "
                        "several times slower than fp32 (bench/bench_engines.py). Prefer the fp32 model "
                        "where TensorRT is absent.", path.name)
        eng.selection_reason = reason
        return eng
    from engines.build import BuildRequest, get_or_build, plan_build

    plan = plan_build(BuildRequest(path, precision, cache_dir, calib_dir, family, max_batch))
    outcome = get_or_build(plan)
    for note in outcome.notes:
        log.warning("%s", note)
    eng = outcome.engine
    eng.selection_reason = reason + (f"; built {outcome.path}" if outcome.built else f"; cached {outcome.path}")
    return eng
