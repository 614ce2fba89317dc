"""TensorRT backend for the Jetson: one engine plan, one execution context, one CUDA stream.

Two TensorRT Python APIs exist on the devices we target: the *binding* API of TensorRT 8.5/8.6 (JetPack 5
and 6.0: ``num_bindings``, ``set_binding_shape``, ``execute_async_v2``) and the *tensor* API of TensorRT 10
(JetPack 6.1+: ``num_io_tensors``, ``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``).
Host buffers are page-locked and sized for the largest batch of the optimization profile; device memory is
allocated through pycuda or cuda-python, whichever imports.

``tensorrt`` and the CUDA bindings are imported only when an engine is opened or built, never when this
module is imported. The pure parts (version detection, profile derivation, buffer planning, output copy
semantics) are module-level functions so they are tested on machines without a GPU.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from engines.base import Engine, EngineError, TensorSpec
from engines.cuda_buffers import open_cuda

log = logging.getLogger(__name__)

Shape = tuple[int, ...]


# ---------------------------------------------------------------------------------------------- versions
def parse_version(text: str) -> tuple[int, ...]:
    """'8.6.2.3' -> (8, 6, 2, 3); non-numeric tails ('10.3.0.post1') are ignored."""
    parts: list[int] = []
    for piece in str(text).split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    if not parts:
        raise ValueError(f"not a version string: {text!r}")
    return tuple(parts)


def tensorrt_importable() -> bool:
    """True where a ``tensorrt`` module can be found (without importing it)."""
    try:
        return importlib.util.find_spec("tensorrt") is not None
    except (ImportError, ValueError):
        return False


def tensorrt_version() -> str | None:
    """TensorRT's version string, or None where it is not installed. Imports tensorrt when present."""
    if not tensorrt_importable():
        return None
    try:
        import tensorrt as trt  # noqa: PLC0415 - deliberately lazy
    except Exception:  # a broken install (missing libnvinfer) counts as absent
        return None
    return str(getattr(trt, "__version__", "unknown"))


def select_api(version: str, has_tensor_api: bool, has_binding_api: bool) -> str:
    """Which runtime API to drive: 'tensor' (TensorRT >= 10, or forced where bindings are gone) or 'binding'.

    TensorRT 8.5/8.6 offer both; there the binding API is used because it is the one those releases document
    as complete for dynamic shapes. TensorRT 10 removed bindings.
    """
    major = parse_version(version)[0]
    if major >= 10:
        if not has_tensor_api:
            raise EngineError(f"TensorRT {version} lacks the tensor API (num_io_tensors); broken install?")
        return "tensor"
    if major < 8 or (major == 8 and parse_version(version)[:2] < (8, 5)):
        raise EngineError(f"TensorRT {version} is too old; 8.5, 8.6 or 10.x is required")
    if has_binding_api:
        return "binding"
    if has_tensor_api:
        return "tensor"
    raise EngineError(f"TensorRT {version} engine exposes neither bindings nor I/O tensors")


# ---------------------------------------------------------------------------------------------- profiles
@dataclass(frozen=True)
class Profile:
    """Optimization profile of one input: shapes for the smallest, typical and largest batch."""

    name: str
    min: Shape
    opt: Shape
    max: Shape

    @property
    def dynamic_batch(self) -> bool:
        return self.min[0] != self.max[0]


def _is_dynamic(d) -> bool:
    return not isinstance(d, int) or d < 0


def derive_profile(name: str, shape: Sequence, max_batch: int, opt_batch: int | None = None) -> Profile:
    """Profile for an ONNX input shape. Only the leading (batch) dimension may be dynamic.

    A fixed batch (the exported BlazePose and YOLOX graphs have batch 1) gives a single-shape profile; a
    dynamic one gives 1 .. ``max_batch`` with ``opt_batch`` (default: half of max, rounded up) as the shape
    TensorRT tunes kernels for.
    """
    shape = tuple(shape)
    if not shape:
        raise EngineError(f"input {name!r} is a scalar; a batch dimension is required")
    if max_batch < 1:
        raise EngineError(f"max batch must be >= 1, got {max_batch}")
    rest = shape[1:]
    bad = [i + 1 for i, d in enumerate(rest) if _is_dynamic(d)]
    if bad:
        raise EngineError(f"input {name!r} has shape {shape}: dynamic non-batch axes {bad} are not supported; "
                          "export the model with fixed spatial dimensions")
    rest = tuple(int(d) for d in rest)
    if not _is_dynamic(shape[0]):
        b = int(shape[0])
        return Profile(name, (b, *rest), (b, *rest), (b, *rest))
    opt = (max_batch + 1) // 2 if opt_batch is None else opt_batch
    if not 1 <= opt <= max_batch:
        raise EngineError(f"opt batch {opt} must lie in 1..{max_batch}")
    return Profile(name, (1, *rest), (opt, *rest), (max_batch, *rest))


def derive_profiles(inputs: Sequence[TensorSpec], max_batch: int, opt_batch: int | None = None) -> list[Profile]:
    return [derive_profile(s.name, s.shape, max_batch, opt_batch) for s in inputs]


# ---------------------------------------------------------------------------------------------- buffers
@dataclass(frozen=True)
class IOTensor:
    """One engine input or output, in the engine's own order."""

    index: int
    name: str
    is_input: bool
    dtype: np.dtype
    shape: tuple[int, ...]  # as the engine reports it; -1 for the dynamic batch
    max_shape: Shape  # shape at the largest batch the profile allows

    @property
    def max_nbytes(self) -> int:
        return int(np.prod(self.max_shape, dtype=np.int64)) * self.dtype.itemsize


def max_shape_of(shape: Sequence[int], profile_max: Sequence[int] | None, max_batch: int) -> Shape:
    """Concrete largest shape of an engine tensor: the profile's max for inputs, batch filled in for outputs."""
    if profile_max is not None:
        return tuple(int(d) for d in profile_max)
    out = [int(d) for d in shape]
    for i, d in enumerate(out):
        if d < 0:
            if i != 0:
                raise EngineError(f"engine tensor shape {tuple(shape)} is dynamic beyond the batch axis")
            out[i] = max_batch
    return tuple(out)


def batch_of(inputs: dict[str, np.ndarray], tensors: Sequence[IOTensor]) -> int:
    """The common batch size of the given inputs; they must agree."""
    sizes = {t.name: int(inputs[t.name].shape[0]) for t in tensors if t.is_input}
    values = set(sizes.values())
    if len(values) != 1:
        raise EngineError(f"inputs disagree on the batch size: {sizes}")
    return values.pop()


def check_trt_input(model: str, t: IOTensor, a: np.ndarray, min_batch: int) -> None:
    """An input fits the engine: dtype, rank, fixed axes, batch within the profile."""
    if not isinstance(a, np.ndarray):
        raise EngineError(f"{model}: input {t.name!r} must be a numpy array, got {type(a).__name__}")
    if a.dtype != t.dtype:
        raise EngineError(f"{model}: input {t.name!r} has dtype {a.dtype}, the engine expects {t.dtype}")
    if a.ndim != len(t.max_shape):
        raise EngineError(f"{model}: input {t.name!r} has shape {a.shape}, the engine expects rank "
                          f"{len(t.max_shape)} {t.shape}")
    if tuple(a.shape[1:]) != tuple(t.max_shape[1:]):
        raise EngineError(f"{model}: input {t.name!r} has shape {a.shape}, the engine expects "
                          f"(batch, {', '.join(map(str, t.max_shape[1:]))})")
    if not min_batch <= a.shape[0] <= t.max_shape[0]:
        raise EngineError(f"{model}: input {t.name!r} batch {a.shape[0]} is outside the engine's profile "
                          f"{min_batch}..{t.max_shape[0]}")


def output_shape(t: IOTensor, batch: int) -> Shape:
    """Output shape for a batch; only the leading axis follows the batch, and only when it is dynamic."""
    if t.shape and t.shape[0] < 0:
        return (batch, *t.max_shape[1:])
    return t.max_shape


def copy_output(host: np.ndarray, t: IOTensor, shape: Shape) -> np.ndarray:
    """A fresh array holding the first ``prod(shape)`` elements of a max-batch host buffer.

    The host buffer is reused by the next ``infer``; callers get a copy, never a view into it.
    """
    n = int(np.prod(shape, dtype=np.int64))
    flat = host.view(t.dtype).reshape(-1)
    if n > flat.size:
        raise EngineError(f"output {t.name!r} shape {shape} exceeds its buffer ({flat.size} elements)")
    return flat[:n].reshape(shape).copy()


def stage_input(host: np.ndarray, t: IOTensor, a: np.ndarray) -> int:
    """Copy an input into its pinned host buffer; returns the byte count to transfer."""
    nbytes = a.nbytes
    host.view(np.uint8)[:nbytes] = np.ascontiguousarray(a).view(np.uint8).reshape(-1)
    return nbytes


# ---------------------------------------------------------------------------------------------- TensorRT
def import_tensorrt():
    try:
        return importlib.import_module("tensorrt")
    except Exception as e:
        raise EngineError(f"TensorRT is not available here ({e}); use the onnxruntime backend") from e


class TrtLogger:
    """A TensorRT logger that forwards to Python logging, created once per process."""

    _instance = None

    @classmethod
    def get(cls, trt):
        if cls._instance is None:
            class _Logger(trt.ILogger):
                def __init__(self):
                    trt.ILogger.__init__(self)

                def log(self, severity, msg):
                    level = {trt.ILogger.INTERNAL_ERROR: logging.CRITICAL, trt.ILogger.ERROR: logging.ERROR,
                             trt.ILogger.WARNING: logging.WARNING, trt.ILogger.INFO: logging.INFO}.get(
                        severity, logging.DEBUG)
                    log.log(level, "TensorRT: %s", msg)

            cls._instance = _Logger()
        return cls._instance


def _dtype(trt, dt) -> np.dtype:
    return np.dtype(trt.nptype(dt))


@dataclass(frozen=True)
class RawTensor:
    """What an engine reports about one I/O tensor (profile 0)."""

    index: int
    name: str
    is_input: bool
    dtype: np.dtype
    shape: tuple[int, ...]
    profile_min: tuple[int, ...] | None = None
    profile_max: tuple[int, ...] | None = None


def plan_tensors(raw: Sequence[RawTensor]) -> tuple[list[IOTensor], int, int]:
    """Buffer plan: every tensor with its largest concrete shape; returns (tensors, min batch, max batch).

    Inputs take the profile's max shape; a dynamic-batch output takes the inputs' max batch.
    """
    min_batch, max_batch = 1, 1
    for r in raw:
        if r.is_input:
            if r.profile_max is not None and any(d < 0 for d in r.shape):
                min_batch = max(min_batch, int(r.profile_min[0]))
                max_batch = max(max_batch, int(r.profile_max[0]))
            elif r.shape:
                max_batch = max(max_batch, int(r.shape[0]))
    tensors = []
    for r in raw:
        pmax = r.profile_max if (r.is_input and any(d < 0 for d in r.shape)) else None
        if r.is_input and pmax is None and any(d < 0 for d in r.shape):
            raise EngineError(f"engine input {r.name!r} is dynamic {r.shape} but has no optimization profile")
        tensors.append(IOTensor(r.index, r.name, r.is_input, np.dtype(r.dtype), tuple(int(d) for d in r.shape),
                                max_shape_of(r.shape, pmax, max_batch)))
    return tensors, min_batch, max_batch


def _describe(trt, engine, api: str) -> list[RawTensor]:
    out: list[RawTensor] = []
    if api == "tensor":
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            is_in = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            shape = tuple(engine.get_tensor_shape(name))
            pmin = pmax = None
            if is_in and any(d < 0 for d in shape):
                pmin, _, pmax = (tuple(s) for s in engine.get_tensor_profile_shape(name, 0))
            out.append(RawTensor(i, name, is_in, _dtype(trt, engine.get_tensor_dtype(name)), shape, pmin, pmax))
    else:
        for i in range(engine.num_bindings):
            name = engine.get_binding_name(i)
            is_in = bool(engine.binding_is_input(i))
            shape = tuple(engine.get_binding_shape(i))
            pmin = pmax = None
            if is_in and any(d < 0 for d in shape):
                pmin, _, pmax = (tuple(s) for s in engine.get_profile_shape(0, i))
            out.append(RawTensor(i, name, is_in, _dtype(trt, engine.get_binding_dtype(i)), shape, pmin, pmax))
    return out


def specs_of(tensors: Sequence[IOTensor], inputs: bool) -> tuple[TensorSpec, ...]:
    """TensorSpecs as the Engine interface reports them: None for the dynamic batch axis."""
    return tuple(TensorSpec(t.name, (None, *t.max_shape[1:]) if t.shape and t.shape[0] < 0 else t.max_shape,
                            t.dtype) for t in tensors if t.is_input == inputs)


class TrtEngine(Engine):
    """Run a serialized TensorRT engine plan.

    The plan must have been built on this device with this TensorRT version (``engines.build`` keys its
    cache on both); a plan that fails to deserialize raises EngineError so the caller can rebuild it.
    """

    backend = "tensorrt"

    def __init__(self, plan: str | os.PathLike | bytes, *, name: str | None = None, cuda: str | None = None):
        trt = import_tensorrt()
        if isinstance(plan, (bytes, bytearray, memoryview)):
            data, self.path = bytes(plan), Path(name or "<engine bytes>")
        else:
            self.path = Path(plan)
            try:
                data = self.path.read_bytes()
            except OSError as e:
                raise EngineError(f"cannot read engine plan {self.path}: {e}") from e
        if not data:
            raise EngineError(f"engine plan is empty: {self.path}")
        self._cuda = open_cuda(cuda)  # the CUDA context must exist before deserializing
        self._runtime = trt.Runtime(TrtLogger.get(trt))
        engine = self._runtime.deserialize_cuda_engine(data)
        if engine is None:
            self._cuda.free()
            raise EngineError(f"engine plan {self.path} does not deserialize (built by another TensorRT "
                              "version or device, or damaged); rebuild it")
        self._engine = engine
        self._api = select_api(trt.__version__, hasattr(engine, "num_io_tensors"), hasattr(engine, "num_bindings"))
        self._context = engine.create_execution_context()
        if self._context is None:
            raise EngineError(f"{self.path}: cannot create an execution context (out of device memory?)")
        self._tensors, self._min_batch, self.max_batch = plan_tensors(_describe(trt, engine, self._api))
        self._host = {t.name: self._cuda.host(t.max_nbytes) for t in self._tensors}
        self._dev = {t.name: self._cuda.device(t.max_nbytes) for t in self._tensors}
        self._bindings = [0] * len(self._tensors)
        for t in self._tensors:
            self._bindings[t.index] = self._dev[t.name]
            if self._api == "tensor":
                self._context.set_tensor_address(t.name, self._dev[t.name])
        self._inputs = specs_of(self._tensors, inputs=True)
        self._outputs = specs_of(self._tensors, inputs=False)
        log.info("TensorRT %s engine %s: %s API, %s buffers, batch %d..%d", trt.__version__, self.path, self._api,
                 self._cuda.kind, self._min_batch, self.max_batch)

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._context is None:
            raise EngineError(f"{self.path}: engine is closed")
        names = [t.name for t in self._tensors if t.is_input]
        missing = [n for n in names if n not in inputs]
        extra = sorted(set(inputs) - set(names))
        if missing or extra:
            raise EngineError(f"{self.path}: inputs {sorted(inputs)} do not match the engine's {names}")
        for t in self._tensors:
            if t.is_input:
                check_trt_input(str(self.path), t, inputs[t.name], self._min_batch)
        batch = batch_of(inputs, self._tensors)
        for t in self._tensors:
            if not t.is_input:
                continue
            a = inputs[t.name]
            if t.shape[0] < 0:
                if self._api == "tensor":
                    self._context.set_input_shape(t.name, tuple(a.shape))
                else:
                    self._context.set_binding_shape(t.index, tuple(a.shape))
            n = stage_input(self._host[t.name], t, a)
            self._cuda.htod(self._dev[t.name], self._host[t.name], n)
        ok = (self._context.execute_async_v3(self._cuda.stream_handle) if self._api == "tensor"
              else self._context.execute_async_v2(self._bindings, self._cuda.stream_handle))
        if not ok:
            raise EngineError(f"{self.path}: TensorRT execution failed (batch {batch})")
        shapes = {}
        for t in self._tensors:
            if t.is_input:
                continue
            shapes[t.name] = self._out_shape(t, batch)
            nbytes = int(np.prod(shapes[t.name], dtype=np.int64)) * t.dtype.itemsize
            self._cuda.dtoh(self._host[t.name], self._dev[t.name], nbytes)
        self._cuda.sync()
        return {t.name: copy_output(self._host[t.name], t, shapes[t.name]) for t in self._tensors if not t.is_input}

    def _out_shape(self, t: IOTensor, batch: int) -> Shape:
        # the context knows the real output shape once input shapes are set; fall back to the batch rule
        try:
            shape = tuple(self._context.get_tensor_shape(t.name) if self._api == "tensor"
                          else self._context.get_binding_shape(t.index))
            if shape and all(d >= 0 for d in shape):
                return tuple(int(d) for d in shape)
        except Exception:  # pragma: no cover - depends on the TensorRT build
            pass
        return output_shape(t, batch)

    def close(self) -> None:
        if getattr(self, "_context", None) is not None:
            self._context = None
            self._engine = None
            self._cuda.free()

    def __repr__(self) -> str:
        return f"TrtEngine({str(self.path)!r}, api={self._api!r}, max_batch={self.max_batch})"
