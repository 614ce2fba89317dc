"""Model directory on disk: ``card.json``, ``stgnf.onnx`` and ``weights.npz``.

* ``stgnf.onnx`` is the deployable graph (ONNX Runtime here, TensorRT on a device).
* ``weights.npz`` holds the same weights under their state_dict names, unfolded, so the numpy scorer
  loads without the ``onnx`` package (a plain ``np.load``, no pickle) and the model can be re-exported
  or trained further. Both files are written from the same arrays in one go.
* ``card.json`` lists the sha256 of both; loading checks them, so a truncated or swapped file is
  refused before anything is scored.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from edge import __version__
from edge.scoring.architecture import ModelFormatError, StgnfArchitecture, check_tensors
from edge.scoring.card import ModelCard, TrainingInfo, sha256_file
from edge.windowing.stgnf import WINDOW_MEAN

CARD_FILE = "card.json"
ONNX_FILE = "stgnf.onnx"
WEIGHTS_FILE = "weights.npz"


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(model_dir, weights: dict[str, np.ndarray], arch: StgnfArchitecture, *,
               divisors: tuple[float, float] = (856.0, 480.0), normalization: str = WINDOW_MEAN,
               training: TrainingInfo | None = None, name: str = "stgnf") -> ModelCard:
    """Validate ``weights`` and write a complete model directory; returns its card."""
    try:
        from edge.scoring.onnx_build import build_onnx
        import onnx  # noqa: F401
    except ImportError as e:
        raise RuntimeError("writing a model needs the 'onnx' package (pip install 'poselift-edge[ort]')") from e
    w = check_tensors(weights, arch, "weights")
    d = Path(model_dir)
    d.mkdir(parents=True, exist_ok=True)
    onnx_bytes = build_onnx(w, arch).SerializeToString()
    _atomic_write(d / ONNX_FILE, onnx_bytes)
    tmp = d / f".{WEIGHTS_FILE}.tmp.npz"
    np.savez(tmp, **w)
    os.replace(tmp, d / WEIGHTS_FILE)
    card = ModelCard(name=name, software_version=__version__, architecture=arch,
                     normalization={"divisors": tuple(float(v) for v in divisors), "method": normalization},
                     training=training,
                     files={ONNX_FILE: sha256_file(d / ONNX_FILE), WEIGHTS_FILE: sha256_file(d / WEIGHTS_FILE)})
    write_card(d, card)
    return card


def write_card(model_dir, card: ModelCard) -> None:
    """(Re)write ``card.json`` atomically, e.g. after calibrating ``threshold``."""
    _atomic_write(Path(model_dir) / CARD_FILE, card.to_json().encode())


def read_card(model_dir) -> ModelCard:
    d = Path(model_dir)
    path = d / CARD_FILE
    if not d.is_dir():
        raise ModelFormatError(f"{d}: model directory not found" if not d.exists() else f"{d}: not a directory")
    if not path.is_file():
        raise ModelFormatError(f"{path}: missing (a model directory needs {CARD_FILE}, {ONNX_FILE}, {WEIGHTS_FILE})")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFormatError(f"{path}: not valid JSON ({e})") from None
    if isinstance(raw, dict) and isinstance(raw.get("schema_version"), int) and raw["schema_version"] > 1:
        raise ModelFormatError(f"{path}: card schema_version {raw['schema_version']} is newer than this "
                               f"software understands (1); upgrade poselift-edge")
    try:
        return ModelCard.model_validate(raw)
    except ValidationError as e:
        msgs = "; ".join(f"{'.'.join(map(str, err['loc'])) or '(top)'}: {err['msg']}" for err in e.errors())
        raise ModelFormatError(f"{path}: invalid model card: {msgs}") from None


def verify_file(model_dir, card: ModelCard, name: str) -> Path:
    """Path of a model file after checking it exists and matches the card's sha256."""
    path = Path(model_dir) / name
    if name not in card.files:
        raise ModelFormatError(f"{Path(model_dir) / CARD_FILE}: no sha256 recorded for {name}")
    if not path.is_file():
        raise ModelFormatError(f"{path}: missing")
    digest = sha256_file(path)
    if digest != card.files[name]:
        raise ModelFormatError(f"{path}: sha256 {digest[:16]}... does not match the card "
                               f"({card.files[name][:16]}...): file changed, truncated or replaced")
    return path


def load_weights(model_dir, card: ModelCard | None = None) -> tuple[ModelCard, dict[str, np.ndarray]]:
    """Card and validated weights of a model directory (no ``onnx`` package needed)."""
    card = card or read_card(model_dir)
    path = verify_file(model_dir, card, WEIGHTS_FILE)
    try:
        with np.load(path, allow_pickle=False) as z:
            tensors = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ModelFormatError(f"{path}: unreadable weight archive ({e})") from None
    return card, check_tensors(tensors, card.architecture, str(path))
