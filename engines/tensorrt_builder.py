"""ONNX -> TensorRT engine plan with the documented builder API (TensorRT 8.5, 8.6 and 10.x).

``tensorrt`` is imported only when :func:`build_serialized` runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from engines.base import EngineError
from engines.tensorrt_backend import Profile, TrtLogger, import_tensorrt, parse_version

log = logging.getLogger(__name__)


@dataclass
class BuildOptions:
    precision: str  # int8 | fp16 | fp32
    profiles: list[Profile]
    workspace_bytes: int = 1 << 30
    timing_cache: bytes | None = None
    calibrator: object | None = None  # a tensorrt.IInt8Calibrator for implicit INT8
    explicit_int8: bool = False  # the ONNX carries Q/DQ nodes
    progress: Callable[[str], None] | None = None


def _progress_monitor(trt, report: Callable[[str], None]):
    """A TensorRT 10 IProgressMonitor forwarding phase starts/ends, or None before TensorRT 10."""
    if not hasattr(trt, "IProgressMonitor"):
        return None

    class _Monitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name, parent_phase, num_steps):
            if parent_phase is None:
                report(f"{phase_name}: {num_steps} steps")

        def step_complete(self, phase_name, step):
            return True  # never cancel

        def phase_finish(self, phase_name):
            report(f"{phase_name}: done")

    return _Monitor()


def build_serialized(onnx_bytes: bytes, opts: BuildOptions, model_name: str = "model") -> tuple[bytes, bytes | None]:
    """Parse ONNX and build an engine plan; returns (plan, serialized timing cache or None)."""
    trt = import_tensorrt()
    report = opts.progress or (lambda msg: log.info("%s", msg))
    logger = TrtLogger.get(trt)
    builder = trt.Builder(logger)
    major = parse_version(trt.__version__)[0]
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    report(f"parsing {model_name}")
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"TensorRT cannot parse {model_name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(opts.workspace_bytes))
    if opts.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)  # layers left unquantized run in fp16, not fp32
    if opts.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        if not opts.explicit_int8:
            if opts.calibrator is None:
                raise EngineError(f"{model_name}: INT8 without Q/DQ nodes needs a calibrator")
            config.int8_calibrator = opts.calibrator
    profile = builder.create_optimization_profile()
    for p in opts.profiles:
        profile.set_shape(p.name, p.min, p.opt, p.max)
    config.add_optimization_profile(profile)
    if opts.precision == "int8" and not opts.explicit_int8 and hasattr(config, "set_calibration_profile"):
        config.set_calibration_profile(profile)
    cache = config.create_timing_cache(opts.timing_cache or b"")
    config.set_timing_cache(cache, False)  # a cache from another TensorRT/device is rejected, not trusted
    monitor = _progress_monitor(trt, report)
    if monitor is not None:
        config.progress_monitor = monitor
    report(f"building {opts.precision} engine for {model_name} (this takes minutes on a Jetson)")
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineError(f"TensorRT failed to build {model_name} ({opts.precision}); see the TensorRT log above")
    report("engine built")
    timing = config.get_timing_cache()
    return bytes(plan), (bytes(timing.serialize()) if timing is not None else None)
