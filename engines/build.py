"""Build TensorRT engines from ONNX on the device, and cache them.

An engine plan only runs on the TensorRT version and GPU it was built for, so the cache key covers the
model bytes, the TensorRT version, the device identity, the precision, the optimization profile shapes and,
for calibrated INT8, the calibration data. Files are written atomically (temporary file in the same folder,
fsync, rename, fsync of the folder): a power cut mid-build never leaves a truncated engine under the real
name. A cached plan that fails to deserialize is rebuilt. A timing cache beside the engines makes rebuilds
of other precisions and batch sizes faster.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from engines.base import EngineError, TensorSpec
from engines.onnxruntime_backend import check_model_file
from engines.tensorrt_backend import Profile, derive_profiles, tensorrt_version
from engines.tensorrt_builder import BuildOptions

log = logging.getLogger(__name__)

PRECISIONS = ("int8", "fp16", "fp32")
_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}


class TensorRTUnavailable(EngineError):
    """TensorRT is not installed on this machine."""


class CalibrationRequired(EngineError):
    """INT8 was asked for a model without Q/DQ nodes and without calibration data."""


# ---------------------------------------------------------------------------------------------- hashing
def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def calibration_hash(files: Sequence[Path], extra: str = "") -> str:
    """Hash of a calibration set: file names (relative order) and contents, plus how they are preprocessed."""
    h = hashlib.sha256(extra.encode())
    for p in sorted(files, key=lambda q: q.name):
        h.update(p.name.encode() + b"\0" + bytes.fromhex(file_sha256(p)))
    return h.hexdigest()


@dataclass(frozen=True)
class CacheKeyParts:
    model_sha256: str
    tensorrt_version: str
    device: str
    precision: str
    profiles: tuple[tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]
    calibration: str | None = None  # hash of the calibration data (implicit INT8 only)

    def key(self) -> str:
        payload = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()


def profile_tuple(profiles: Sequence[Profile]):
    return tuple((p.name, tuple(p.min), tuple(p.opt), tuple(p.max)) for p in profiles)


# ---------------------------------------------------------------------------------------------- device identity
def device_identity(root: str = "/") -> str:
    """What an engine plan is tied to: the Jetson module and L4T release, or the GPU model and driver.

    Read from /proc and /etc only (cheap, no CUDA context); ``root`` lets tests point at a fake tree.
    """
    r = Path(root)
    parts: list[str] = []
    model = _read(r / "proc/device-tree/model")
    if model:
        parts.append("jetson:" + model.replace("\x00", "").strip())
        release = _read(r / "etc/nv_tegra_release")
        if release:
            parts.append("l4t:" + release.splitlines()[0].strip())
    gpus = r / "proc/driver/nvidia/gpus"
    if gpus.is_dir():
        for info in sorted(gpus.glob("*/information")):
            for line in (_read(info) or "").splitlines():
                if line.startswith("Model:"):
                    parts.append("gpu:" + line.split(":", 1)[1].strip())
        driver = _read(r / "proc/driver/nvidia/version")
        if driver:
            parts.append("driver:" + driver.splitlines()[0].strip())
    return "|".join(parts) if parts else "unknown-device"


def _read(p: Path) -> str | None:
    try:
        return p.read_text(errors="replace")
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------- ONNX facts
def _graph_specs(path, outputs: bool) -> list[TensorSpec]:
    import numpy as np
    import onnx
    from onnx import helper

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise EngineError(f"cannot read ONNX model {path}: {e}") from e
    inits = {i.name for i in model.graph.initializer}
    specs = []
    for vi in model.graph.output if outputs else model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim)
        specs.append(TensorSpec(vi.name, dims, np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))))
    return specs


def onnx_inputs(path: str | os.PathLike) -> list[TensorSpec]:
    """Graph inputs (initializers excluded) with their declared shapes."""
    return _graph_specs(path, outputs=False)


def onnx_outputs(path: str | os.PathLike) -> list[TensorSpec]:
    return _graph_specs(path, outputs=True)


class _OnnxIO:
    """Inputs/outputs of an ONNX file in the shape of an Engine, for guessing its family."""

    def __init__(self, path):
        self.inputs, self.outputs = tuple(onnx_inputs(path)), tuple(onnx_outputs(path))


def is_qdq_model(path: str | os.PathLike) -> bool:
    """True when the graph carries QuantizeLinear/DequantizeLinear nodes (explicit INT8, already calibrated)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return any(n.op_type in _QDQ_OPS for n in model.graph.node)


# ---------------------------------------------------------------------------------------------- atomic files
def atomic_write(path: str | os.PathLike, data: bytes | Iterable[bytes]) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            chunks = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems do not open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: Path, name: str) -> int:
    """Temporary files a crashed build of ``name`` left behind; safe to call under the build lock."""
    n = 0
    for p in folder.glob(f".{name}.*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()
            n += 1
    return n


@contextlib.contextmanager
def _build_lock(path: Path):
    """Serialize builds of one engine across processes (two services starting at once)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------- cache
@dataclass
class BuildRequest:
    onnx_path: Path
    precision: str = "fp16"
    cache_dir: Path | None = None  # default: beside the model
    calib_dir: Path | None = None
    family: str | None = None  # preprocessing of calibration images (implicit INT8 only)
    max_batch: int = 1
    opt_batch: int | None = None
    workspace_mb: int = 1024

    def __post_init__(self):
        self.onnx_path = Path(self.onnx_path)
        if self.precision not in PRECISIONS:
            raise EngineError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.cache_dir is None:
            self.cache_dir = self.onnx_path.parent
        self.cache_dir = Path(self.cache_dir)
        if self.calib_dir is not None:
            self.calib_dir = Path(self.calib_dir)


@dataclass
class BuildOutcome:
    path: Path
    key: str
    built: bool
    engine: object | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """Everything decided before TensorRT is touched (all of it testable without a GPU)."""

    request: BuildRequest
    parts: CacheKeyParts
    profiles: list[Profile]
    explicit_int8: bool
    calib_files: list[Path]

    @property
    def key(self) -> str:
        return self.parts.key()

    @property
    def engine_path(self) -> Path:
        stem = self.request.onnx_path.name.removesuffix(".onnx")
        return self.request.cache_dir / f"{stem}.{self.request.precision}.{self.key[:16]}.engine"

    @property
    def meta_path(self) -> Path:
        return self.engine_path.with_suffix(".json")

    @property
    def timing_cache_path(self) -> Path:
        tag = hashlib.sha256(f"{self.parts.tensorrt_version}|{self.parts.device}".encode()).hexdigest()[:16]
        return self.request.cache_dir / f"timing.{tag}.cache"

    @property
    def calibration_cache_path(self) -> Path:
        return self.engine_path.with_suffix(".calib")


def plan_build(req: BuildRequest, trt_version: str | None = None, device: str | None = None) -> Plan:
    """Validate a build request and compute its cache key; refuses what cannot give a correct engine."""
    check_model_file(req.onnx_path)
    inputs = onnx_inputs(req.onnx_path)
    profiles = derive_profiles(inputs, req.max_batch, req.opt_batch)
    explicit = is_qdq_model(req.onnx_path)
    calib_files: list[Path] = []
    calib_part = None
    if explicit and req.precision != "int8":
        raise EngineError(f"{req.onnx_path} has Q/DQ nodes (an INT8 model); build it with --precision int8, "
                          "or use the fp32 ONNX for fp16/fp32 engines")
    if req.precision == "int8" and not explicit:
        if req.calib_dir is None:
            raise CalibrationRequired(
                f"INT8 for {req.onnx_path} needs calibration: this model has no Q/DQ nodes and no calibration "
                "images were given. Pass --calib DIR with images from the store cameras, or quantize it first "
                "with 'poselift-edge calibrate' and build the resulting .int8.onnx. (Random calibration is "
                "never used.)")
        from calibration.images import list_images

        calib_files = list_images(req.calib_dir)
        if req.family is None:
            from calibration.cli import guess_family

            req.family = guess_family(_OnnxIO(req.onnx_path))
            if req.family is None:
                raise EngineError(f"INT8 calibration of {req.onnx_path} needs --family (how images are "
                                  "preprocessed); its inputs and outputs do not tell")
            log.info("%s: calibration images preprocessed as %s (guessed from the model)", req.onnx_path, req.family)
        calib_part = calibration_hash(calib_files, extra=f"family={req.family}")
    if trt_version is None:
        trt_version = tensorrt_version()
        if trt_version is None:
            raise TensorRTUnavailable(
                "TensorRT is not installed on this machine (it ships with JetPack on a Jetson); engines can only "
                "be built on the device that runs them. ONNX Runtime runs the ONNX model here instead.")
    parts = CacheKeyParts(file_sha256(req.onnx_path), trt_version, device or device_identity(), req.precision,
                          profile_tuple(profiles), calib_part)
    return Plan(req, parts, profiles, explicit, calib_files)


Builder = Callable[[bytes, BuildOptions, str], tuple[bytes, "bytes | None"]]
Loader = Callable[[Path], object]


def get_or_build(plan: Plan, *, builder: Builder | None = None, loader: Loader | None = None,
                 calibrator_factory: Callable[[Plan], object] | None = None,
                 progress: Callable[[str], None] | None = None) -> BuildOutcome:
    """The cached engine for ``plan``, building it when absent or when the cached file does not load.

    ``builder(onnx_bytes, options, name) -> (plan_bytes, timing_cache_bytes)`` and ``loader(path)``
    default to TensorRT; ``loader`` must raise when a plan does not deserialize.
    """
    report = progress or (lambda msg: log.info("%s", msg))
    if builder is None:
        from engines.tensorrt_builder import build_serialized as builder
    if loader is None:
        from engines.tensorrt_backend import TrtEngine as loader
    path = plan.engine_path
    notes: list[str] = []
    with _build_lock(path.with_name(f".{path.name}.lock")):
        if path.exists():
            try:
                engine = loader(path)
                return BuildOutcome(path, plan.key, False, engine, notes=notes)
            except Exception as e:  # a damaged or foreign plan: rebuild rather than fail the service
                msg = f"cached engine {path} does not load ({e}); rebuilding it"
                log.warning("%s", msg)
                notes.append(msg)
                with contextlib.suppress(OSError):
                    path.unlink()
        removed = remove_stale_temporaries(path.parent, path.name)
        if removed:
            notes.append(f"removed {removed} partial file(s) of an interrupted build")
        timing = plan.timing_cache_path.read_bytes() if plan.timing_cache_path.exists() else None
        calibrator = None
        if plan.request.precision == "int8" and not plan.explicit_int8:
            if calibrator_factory is None:
                from calibration.trt_calibrator import calibrator_for_plan as calibrator_factory
            calibrator = calibrator_factory(plan)
        opts = BuildOptions(plan.request.precision, plan.profiles, plan.request.workspace_mb << 20, timing,
                            calibrator, plan.explicit_int8, report)
        t0 = time.monotonic()
        plan_bytes, timing_out = builder(plan.request.onnx_path.read_bytes(), opts, plan.request.onnx_path.name)
        seconds = time.monotonic() - t0
        if not plan_bytes:
            raise EngineError(f"building {plan.request.onnx_path} produced an empty engine")
        atomic_write(path, plan_bytes)
        if timing_out:
            atomic_write(plan.timing_cache_path, timing_out)
        meta = {"key": plan.key, **asdict(plan.parts), "onnx": str(plan.request.onnx_path),
                "explicit_int8": plan.explicit_int8, "build_seconds": round(seconds, 2),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        atomic_write(plan.meta_path, json.dumps(meta, indent=2).encode())
        report(f"wrote {path} ({len(plan_bytes)} bytes, {seconds:.1f} s)")
        try:
            engine = loader(path)
        except Exception as e:
            raise EngineError(f"the engine just built ({path}) does not load: {e}") from e
        return BuildOutcome(path, plan.key, True, engine, seconds, notes)
