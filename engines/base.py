"""The one interface every inference backend implements.

An engine takes named numpy inputs and returns named numpy outputs. Model adapters (detector and pose
decoders) talk only to this interface, so TensorRT on a Jetson and ONNX Runtime everywhere else are
interchangeable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    """A named tensor; ``None`` (or a string) in ``shape`` marks a dynamic dimension."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: np.dtype

    def is_dynamic(self) -> bool:
        return any(not isinstance(d, int) or d < 0 for d in self.shape)


class EngineError(RuntimeError):
    """A model could not be loaded or run; the message names the model and what is wrong."""


class Engine(ABC):
    """Run one model. Implementations are not thread-safe; use one engine per thread."""

    backend: str = "abstract"

    @property
    @abstractmethod
    def inputs(self) -> tuple[TensorSpec, ...]: ...

    @property
    @abstractmethod
    def outputs(self) -> tuple[TensorSpec, ...]: ...

    @abstractmethod
    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model; returns arrays owned by the caller (never views into reused buffers)."""

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release device memory and handles."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
