"""ONNX Runtime backend: CPU everywhere, CUDA / TensorRT execution providers where they are installed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from engines.base import Engine, EngineError, TensorSpec

# ONNX Runtime's type strings -> numpy dtypes (the ones perception and scoring models use).
_ORT_DTYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int16)": np.dtype(np.int16),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(bool)": np.dtype(np.bool_),
}

# Preferred order when the caller does not choose: CUDA where present, CPU always last. ONNX Runtime's
# TensorRT provider is left to explicit requests: without its engine cache options it rebuilds an engine in
# every session (minutes on a Jetson), and the native TensorRT backend already covers that case.
_PREFERENCE = ("CUDAExecutionProvider", "CPUExecutionProvider")


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def default_providers(available: Sequence[str]) -> list[str]:
    """The CUDA provider where present, CPU as the fallback that always exists."""
    chosen = [p for p in _PREFERENCE if p in available]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


_MODELPROTO_FIRST_TAGS = frozenset({0x08, 0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42})


def check_model_file(path: Path) -> None:
    """Fail with a message naming the file before ONNX Runtime produces its own less direct one."""
    if not path.exists():
        raise EngineError(f"model file not found: {path}")
    if not path.is_file():
        raise EngineError(f"model path is not a file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise EngineError(f"model file is empty: {path}")
    with open(path, "rb") as f:
        head = f.read(64)
    # A serialized ONNX ModelProto starts with the tag of one of its first fields (ir_version 0x08 in every
    # exporter we know of); anything else (an image, a TensorRT plan, text) is refused with a plain message.
    if not head or head[0] not in _MODELPROTO_FIRST_TAGS:
        raise EngineError(f"not an ONNX model file (unexpected leading bytes {head[:8]!r}): {path}")


def _spec(arg) -> TensorSpec:
    dtype = _ORT_DTYPES.get(arg.type)
    if dtype is None:
        dtype = np.dtype(np.float32) if arg.type is None else np.dtype(object)
    shape = tuple(d if isinstance(d, int) and d >= 0 else (d if isinstance(d, str) else None) for d in arg.shape)
    return TensorSpec(arg.name, shape, dtype)


def check_inputs(model: str, specs: Sequence[TensorSpec], inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Names, dtypes, ranks and fixed dimensions of ``inputs`` against ``specs``; returns contiguous arrays."""
    missing = [s.name for s in specs if s.name not in inputs]
    if missing:
        raise EngineError(f"{model}: missing input(s) {missing}; the model takes {[s.name for s in specs]}")
    extra = sorted(set(inputs) - {s.name for s in specs})
    if extra:
        raise EngineError(f"{model}: unknown input(s) {extra}; the model takes {[s.name for s in specs]}")
    out: dict[str, np.ndarray] = {}
    for s in specs:
        a = inputs[s.name]
        if not isinstance(a, np.ndarray):
            raise EngineError(f"{model}: input {s.name!r} must be a numpy array, got {type(a).__name__}")
        if a.dtype != s.dtype:
            raise EngineError(f"{model}: input {s.name!r} has dtype {a.dtype}, the model expects {s.dtype}")
        if a.ndim != len(s.shape):
            raise EngineError(
                f"{model}: input {s.name!r} has shape {a.shape}, the model expects rank {len(s.shape)} {s.shape}")
        for axis, (got, want) in enumerate(zip(a.shape, s.shape)):
            if isinstance(want, int) and want >= 0 and got != want:
                raise EngineError(
                    f"{model}: input {s.name!r} has shape {a.shape}, the model expects {s.shape} "
                    f"(axis {axis} must be {want})")
        out[s.name] = np.ascontiguousarray(a)
    return out


class OrtEngine(Engine):
    """Run an ONNX model with ONNX Runtime.

    ``providers`` defaults to the CUDA provider when this ONNX Runtime build has it, then CPU.
    ``threads`` sets intra-op threads (``None``: ONNX Runtime's default, one per physical core).
    """

    backend = "onnxruntime"

    def __init__(self, path: str | os.PathLike, providers: Sequence[str] | None = None, threads: int | None = None):
        self.path = Path(path)
        check_model_file(self.path)
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - the ort extra is part of every install we ship
            raise EngineError(f"onnxruntime is not installed; cannot load {self.path} (pip install "
                              f"'poselift-edge[ort]')") from e
        available = list(ort.get_available_providers())
        if providers is None:
            providers = default_providers(available)
        else:
            providers = list(providers)
            unknown = [p for p in providers if p not in available]
            if unknown:
                raise EngineError(f"{self.path}: execution provider(s) {unknown} not available in this ONNX Runtime "
                                  f"(available: {available})")
        opts = ort.SessionOptions()
        if threads is not None:
            if threads < 1:
                raise EngineError(f"{self.path}: threads must be >= 1, got {threads}")
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # errors only; ORT's graph-cleanup warnings are not actionable here
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=opts, providers=providers)
        except Exception as e:  # ORT raises its own Fail/InvalidGraph/... types
            raise EngineError(f"cannot load ONNX model {self.path}: {str(e).strip().splitlines()[0][:300]}") from e
        self.providers = tuple(self._session.get_providers())
        self._inputs = tuple(_spec(a) for a in self._session.get_inputs())
        self._outputs = tuple(_spec(a) for a in self._session.get_outputs())
        self._output_names = [s.name for s in self._outputs]

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._session is None:
            raise EngineError(f"{self.path}: engine is closed")
        feed = check_inputs(str(self.path), self._inputs, inputs)
        try:
            results = self._session.run(self._output_names, feed)
        except Exception as e:
            raise EngineError(f"{self.path}: inference failed: {str(e).strip().splitlines()[0][:300]}") from e
        return dict(zip(self._output_names, results))

    def close(self) -> None:
        self._session = None

    def __repr__(self) -> str:
        return f"OrtEngine({str(self.path)!r}, providers={list(self.providers)})"
