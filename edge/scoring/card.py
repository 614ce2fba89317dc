"""The model card: what a model is, how its inputs must be made, where it came from, how good it is."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edge.scoring.architecture import StgnfArchitecture

CARD_SCHEMA = "poselift-edge/stgnf-model"
CARD_SCHEMA_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Normalization(_Strict):
    joints: Literal["openpose18-from-coco17"] = Field(
        "openpose18-from-coco17", description="COCO-17 keypoints mapped to 18 joints (neck = mean of shoulders).")
    method: Literal["window-std-y", "detrended-std-y"] = Field(
        "window-std-y", description="window-std-y (the published STG-NF rule): divide x, y by the divisors, "
                                    "subtract the window mean, divide by std of y. detrended-std-y: subtract the "
                                    "straight-line drift of the body centre over the window instead of its mean.")
    divisors: tuple[float, float] = Field((856.0, 480.0), description="(x, y) divisors in pixels.")


class TrainingInfo(_Strict):
    source: Literal["trained", "imported"] = Field(..., description="Trained here, or imported weights.")
    data_sha256: str | None = Field(None, description="sha256 of the training windows (float32 C-order bytes).")
    data_description: str | None = Field(None, description="Where the training data came from.")
    n_windows: int | None = Field(None, description="Training windows, augmentation included.")
    epochs: int | None = Field(None, description="Epochs trained.")
    batch_size: int | None = Field(None, description="Training batch size.")
    learning_rate: float | None = Field(None, description="Initial Adamax learning rate.")
    seed: int | None = Field(None, description="Random seed.")
    imported_from: str | None = Field(None, description="File the weights were imported from.")
    imported_sha256: str | None = Field(None, description="sha256 of that file.")
    metrics: dict[str, Any] = Field(default_factory=dict, description="Training metrics (losses, NLL quantiles).")


class ModelCard(_Strict):
    """``card.json`` of a model directory."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_name: Literal["poselift-edge/stgnf-model"] = Field(CARD_SCHEMA, alias="schema",
                                                              description="Card format identifier.")
    schema_version: int = Field(CARD_SCHEMA_VERSION, description="Card format version.", ge=1,
                                le=CARD_SCHEMA_VERSION)
    name: str = Field("stgnf", description="Model name.")
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         description="Creation time (UTC, ISO 8601).")
    software_version: str = Field("", description="poselift-edge version that wrote the model.")
    architecture: StgnfArchitecture = Field(default_factory=StgnfArchitecture, description="Network shape.")
    normalization: Normalization = Field(default_factory=Normalization, description="Input preparation.")
    training: TrainingInfo | None = Field(None, description="Provenance and metrics.")
    threshold: float | None = Field(None, description="Alert threshold (NLL bits/dim), when calibrated.")
    threshold_calibration: dict[str, Any] | None = Field(None, description="How the threshold was chosen.")
    files: dict[str, str] = Field(default_factory=dict, description="sha256 of every model file by name.")

    @property
    def seg_len(self) -> int:
        return self.architecture.seg_len

    @property
    def divisors(self) -> tuple[float, float]:
        return self.normalization.divisors

    @property
    def window_normalization(self) -> str:
        return self.normalization.method

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2) + "\n"


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_windows(x: np.ndarray) -> str:
    """Content hash of a window array: shape, dtype and float32 C-order bytes."""
    a = np.ascontiguousarray(x, dtype=np.float32)
    h = hashlib.sha256(f"{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()
