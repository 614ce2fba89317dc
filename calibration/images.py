"""The calibration image folder: listing, reading, and refusing folders that cannot calibrate anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class CalibrationDataError(ValueError):
    """The calibration images are missing, empty or unreadable; the message names the folder or file."""


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name; refuses a missing or image-less folder."""
    folder = Path(folder)
    if not folder.exists():
        raise CalibrationDataError(f"calibration folder not found: {folder}")
    if not folder.is_dir():
        raise CalibrationDataError(f"calibration path is not a folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise CalibrationDataError(
            f"no calibration images in {folder} (looked for {', '.join(IMAGE_SUFFIXES)}); INT8 needs real images "
            "from the cameras it will run on")
    return files


def read_image(path: str | Path) -> np.ndarray:
    """BGR uint8 (H, W, 3) image; a file OpenCV cannot decode is refused by name."""
    import cv2

    path = Path(path)
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    if img is None:
        raise CalibrationDataError(f"cannot read calibration image {path} (not an image, or damaged)")
    return img


def read_images(folder: str | Path, skip_unreadable: bool = True) -> tuple[list[Path], list[np.ndarray], list[str]]:
    """All readable images of a folder; returns (paths, images, problems). Refuses when none is readable."""
    paths, images, problems = [], [], []
    for p in list_images(folder):
        try:
            images.append(read_image(p))
            paths.append(p)
        except CalibrationDataError as e:
            if not skip_unreadable:
                raise
            problems.append(str(e))
    if not images:
        raise CalibrationDataError(f"none of the images in {folder} could be read: {'; '.join(problems[:3])}")
    return paths, images, problems
