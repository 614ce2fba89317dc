"""Calibration samples prepared exactly as inference prepares them, through the model adapters.

Detector families: the adapter's letterbox preprocessing of each whole image. Pose families: person crops
as the pose stage cuts them, from the boxes a (full-precision) detector finds in each image, and for
BlazePose also the second-pass crops from the auxiliary points, since inference runs both.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from calibration.images import CalibrationDataError
from engines.adapters import DETECTOR_FAMILIES, POSE_FAMILIES, detector_adapter, pose_adapter

log = logging.getLogger(__name__)

FAMILIES = DETECTOR_FAMILIES + POSE_FAMILIES


def check_family(family: str) -> str:
    if family not in FAMILIES:
        raise CalibrationDataError(f"unknown model family {family!r}; expected one of {', '.join(FAMILIES)}")
    return family


def detect_boxes(detector, detector_family: str, image: np.ndarray) -> np.ndarray:
    """Person boxes (N, 4) in frame pixels from a detector engine."""
    ad = detector_adapter(detector_family, detector)
    inputs, lb = ad.preprocess(image)
    return ad.postprocess(detector.infer(inputs), lb).boxes


def _pose_inputs(engine, adapter, image: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
    """The crops inference feeds the pose model for these boxes (all passes), each (1, ...)."""
    out: list[np.ndarray] = []
    rois = adapter.initial_rois(boxes)
    for p in range(adapter.passes):
        x, affines = adapter.crop(image, rois)
        out.extend(x[i:i + 1] for i in range(len(x)))
        if p + 1 < adapter.passes:
            nxt_rois = rois.copy()
            for i in range(len(x)):
                res = engine.infer({adapter.input_name: np.ascontiguousarray(x[i:i + 1])})
                kp, nxt = adapter.decode(res, affines[i:i + 1])
                if nxt is not None and kp[..., 2].max() > 0 and np.isfinite(nxt).all() and nxt[0, 2] > 1:
                    nxt_rois[i] = nxt[0]
            rois = nxt_rois
    return out


def collect_samples(family: str, engine, images: Sequence[np.ndarray], *, detector=None,
                    detector_family: str = "yolox", max_people: int = 8) -> list[dict[str, np.ndarray]]:
    """Model inputs (batch 1 each) for every calibration image, as inference builds them.

    ``engine`` is the full-precision model being calibrated (it sizes the adapter, and runs the first
    BlazePose pass); ``detector`` is required for pose families.
    """
    check_family(family)
    samples: list[dict[str, np.ndarray]] = []
    if family in DETECTOR_FAMILIES:
        ad = detector_adapter(family, engine)
        for img in images:
            inputs, _ = ad.preprocess(img)
            samples.append(inputs)
        return samples
    if detector is None:
        raise CalibrationDataError(f"{family} calibration needs a person detector (--detector) to cut crops "
                                   "the way the pose stage does")
    ad = pose_adapter(family, engine)
    for img in images:
        boxes = detect_boxes(detector, detector_family, img)[:max_people]
        for x in _pose_inputs(engine, ad, img, boxes):
            samples.append({ad.input_name: x})
    if not samples:
        raise CalibrationDataError("the detector found no person in any calibration image; pose calibration "
                                   "needs images with people")
    return samples


def preprocess_full_image(family: str, image: np.ndarray, input_name: str | None = None) -> np.ndarray:
    """(1, ...) input of one image without a detector: detectors letterbox it, pose models take the whole
    image as one person box (for calibration sets that are already person crops)."""
    check_family(family)
    if family in DETECTOR_FAMILIES:
        inputs, _ = detector_adapter(family, None).preprocess(image)
        return next(iter(inputs.values()))
    ad = pose_adapter(family, None)
    h, w = image.shape[:2]
    x, _ = ad.crop(image, ad.initial_rois(np.array([[0, 0, w, h]], np.float32)))
    return x
