"""Page-locked host buffers, device buffers and one CUDA stream, through pycuda or cuda-python.

JetPack ships pycuda for TensorRT 8.x; newer images may only have cuda-python. Whichever imports is
used; neither is imported before :func:`open_cuda` is called.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from engines.base import EngineError


class CudaBuffers:
    """Pinned host memory, device memory and one stream, from pycuda or cuda-python."""

    kind = "abstract"

    def host(self, nbytes: int) -> np.ndarray: ...
    def device(self, nbytes: int) -> int: ...
    def htod(self, dptr: int, host: np.ndarray, nbytes: int) -> None: ...
    def dtoh(self, host: np.ndarray, dptr: int, nbytes: int) -> None: ...
    def sync(self) -> None: ...
    def free(self) -> None: ...
    stream_handle: int = 0


class _PyCuda(CudaBuffers):
    kind = "pycuda"

    def __init__(self):
        import pycuda.autoinit  # noqa: F401 - creates the context on device 0
        import pycuda.driver as cuda

        self._cuda = cuda
        self._stream = cuda.Stream()
        self.stream_handle = int(self._stream.handle)
        self._allocs: list = []

    def host(self, nbytes):
        return self._cuda.pagelocked_empty(max(nbytes, 1), np.uint8)

    def device(self, nbytes):
        mem = self._cuda.mem_alloc(max(nbytes, 1))
        self._allocs.append(mem)
        return int(mem)

    def htod(self, dptr, host, nbytes):
        self._cuda.memcpy_htod_async(dptr, host[:nbytes], self._stream)

    def dtoh(self, host, dptr, nbytes):
        self._cuda.memcpy_dtoh_async(host[:nbytes], dptr, self._stream)

    def sync(self):
        self._stream.synchronize()

    def free(self):
        for m in self._allocs:
            m.free()
        self._allocs.clear()


class _CudaPython(CudaBuffers):
    kind = "cuda-python"

    def __init__(self):
        try:  # cuda-python >= 12.6 / 13
            from cuda.bindings import runtime as cudart
        except ImportError:  # cuda-python 11.x / 12.x before the split
            from cuda import cudart
        self._rt = cudart
        self._stream = self._ok(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self.stream_handle = int(self._stream)
        self._host: list[int] = []
        self._dev: list[int] = []

    def _ok(self, result, what):
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise EngineError(f"CUDA call {what} failed: {err}")
        return rest[0] if rest else None

    def host(self, nbytes):
        import ctypes

        nbytes = max(nbytes, 1)
        ptr = int(self._ok(self._rt.cudaMallocHost(nbytes), "cudaMallocHost"))
        self._host.append(ptr)
        return np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr))

    def device(self, nbytes):
        ptr = int(self._ok(self._rt.cudaMalloc(max(nbytes, 1)), "cudaMalloc"))
        self._dev.append(ptr)
        return ptr

    def htod(self, dptr, host, nbytes):
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._ok(self._rt.cudaMemcpyAsync(dptr, host.ctypes.data, nbytes, kind, self._stream), "cudaMemcpyAsync")

    def dtoh(self, host, dptr, nbytes):
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._ok(self._rt.cudaMemcpyAsync(host.ctypes.data, dptr, nbytes, kind, self._stream), "cudaMemcpyAsync")

    def sync(self):
        self._ok(self._rt.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")

    def free(self):
        for p in self._dev:
            self._rt.cudaFree(p)
        for p in self._host:
            self._rt.cudaFreeHost(p)
        self._dev.clear()
        self._host.clear()


def cuda_bindings_available() -> str | None:
    """'pycuda' or 'cuda-python' when one can be found (without importing), else None."""
    for mod, kind in (("pycuda", "pycuda"), ("cuda", "cuda-python")):
        try:
            if importlib.util.find_spec(mod) is not None:
                return kind
        except (ImportError, ValueError):
            continue
    return None


def open_cuda(prefer: str | None = None) -> CudaBuffers:
    order = [prefer] if prefer else []
    order += [k for k in ("pycuda", "cuda-python") if k not in order]
    errors = []
    for kind in order:
        try:
            return _PyCuda() if kind == "pycuda" else _CudaPython()
        except ImportError as e:
            errors.append(f"{kind}: {e}")
    raise EngineError("TensorRT needs pycuda or cuda-python for device buffers; neither imports ("
                      + "; ".join(errors) + ")")
