"""TensorRT implicit INT8 calibration (IInt8EntropyCalibrator2) over the same images as QDQ calibration.

Implicit calibration is deprecated from TensorRT 10.1 and gone in 11; it stays for TensorRT 8.5/8.6 devices
and DLA. The batching and the calibration cache file are plain Python (tested without a GPU); the TensorRT
subclass is defined only when ``tensorrt`` imports.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from calibration.images import CalibrationDataError

log = logging.getLogger(__name__)


class CalibrationBatches:
    """Fixed-size, C-contiguous batches of preprocessed samples, in file order.

    TensorRT asks for exactly ``batch_size`` samples per call. A last, incomplete batch is filled by
    repeating the first samples of the set, so every image is seen at least once and none is invented.
    """

    def __init__(self, samples: Sequence[np.ndarray], batch_size: int, dtype=np.float32):
        if batch_size < 1:
            raise ValueError(f"calibration batch size must be >= 1, got {batch_size}")
        if len(samples) == 0:
            raise CalibrationDataError("no calibration samples to batch")
        shapes = {tuple(s.shape) for s in samples}
        if len(shapes) != 1:
            raise CalibrationDataError(f"calibration samples differ in shape: {sorted(shapes)[:4]}")
        self.sample_shape = shapes.pop()
        self.samples = samples
        self.batch_size = int(batch_size)
        self.dtype = np.dtype(dtype)

    def __len__(self) -> int:
        return -(-len(self.samples) // self.batch_size)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return (self.batch_size, *self.sample_shape)

    def batch(self, i: int) -> np.ndarray:
        if not 0 <= i < len(self):
            raise IndexError(i)
        n = len(self.samples)
        idx = [(i * self.batch_size + k) % n for k in range(self.batch_size)]
        out = np.empty(self.batch_shape, self.dtype)
        for k, j in enumerate(idx):
            out[k] = self.samples[j]
        return out

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.batch(i)


class CalibrationCache:
    """TensorRT's calibration table on disk: read back on rebuilds, written atomically."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def read(self) -> bytes | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return data or None

    def write(self, data: bytes) -> None:
        from engines.build import atomic_write

        atomic_write(self.path, bytes(data))


def make_entropy_calibrator(batches: CalibrationBatches, cache: CalibrationCache, input_name: str, cuda=None):
    """An ``IInt8EntropyCalibrator2`` feeding ``batches`` to the input ``input_name``."""
    import tensorrt as trt

    from engines.cuda_buffers import open_cuda

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._cuda = cuda or open_cuda()
            nbytes = int(np.prod(batches.batch_shape)) * batches.dtype.itemsize
            self._host = self._cuda.host(nbytes)
            self._dev = self._cuda.device(nbytes)
            self._nbytes = nbytes
            self._next = 0

        def get_batch_size(self):
            return batches.batch_size

        def get_batch(self, names):
            if self._next >= len(batches):
                return None
            if input_name not in names:
                log.error("calibrator asked for %s, it feeds %s", names, input_name)
                return None
            b = batches.batch(self._next)
            self._next += 1
            self._host[: self._nbytes] = b.view(np.uint8).reshape(-1)
            self._cuda.htod(self._dev, self._host, self._nbytes)
            self._cuda.sync()
            return [int(self._dev)]

        def read_calibration_cache(self):
            data = cache.read()
            if data:
                log.info("using calibration cache %s", cache.path)
            return data

        def write_calibration_cache(self, data):
            cache.write(bytes(data))
            log.info("wrote calibration cache %s", cache.path)

    return EntropyCalibrator()


def calibration_samples(files: Sequence[Path], family: str, input_shape: tuple[int, ...]) -> list[np.ndarray]:
    """Per-image samples (batch axis dropped) for implicit calibration; pose images are taken as person crops."""
    from calibration.images import read_image
    from calibration.preprocess import preprocess_full_image

    samples = []
    for p in files:
        x = preprocess_full_image(family, read_image(p))
        if tuple(x.shape[1:]) != tuple(input_shape[1:]):
            raise CalibrationDataError(f"{p}: preprocessed shape {x.shape} does not fit the model input {input_shape}")
        samples.append(x[0])
    return samples


def calibrator_for_plan(plan):
    """The calibrator ``engines.build.get_or_build`` uses for a model without Q/DQ nodes."""
    if len(plan.profiles) != 1:
        raise CalibrationDataError(f"implicit INT8 calibration supports one-input models; {plan.request.onnx_path} "
                                   f"has {len(plan.profiles)} inputs")
    prof = plan.profiles[0]
    samples = calibration_samples(plan.calib_files, plan.request.family, prof.opt)
    batches = CalibrationBatches(samples, prof.opt[0])
    return make_entropy_calibrator(batches, CalibrationCache(plan.calibration_cache_path), prof.name)
