"""Perception: person detection and top-down pose on tracked boxes."""

from __future__ import annotations

__all__ = ["PersonDetector", "PoseEstimator"]


def __getattr__(name):  # keep ``import edge.perception`` cheap
    if name == "PersonDetector":
        from edge.perception.detector import PersonDetector
        return PersonDetector
    if name == "PoseEstimator":
        from edge.perception.pose import PoseEstimator
        return PoseEstimator
    raise AttributeError(name)
