"""Pose windows for STG-NF: offline cutting and normalisation (:mod:`.stgnf`), live per-track
windows (:mod:`.live`)."""

from edge.windowing.stgnf import (
    DEFAULT_DIVISORS, DEFAULT_SEG_LEN, coco17_to_18, flip_x, model_input, normalize_window, track_windows,
    training_windows,
)

__all__ = ["DEFAULT_DIVISORS", "DEFAULT_SEG_LEN", "coco17_to_18", "flip_x", "model_input", "normalize_window",
           "track_windows", "training_windows"]
