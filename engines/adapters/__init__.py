"""Model adapters: the pre- and post-processing around an :class:`engines.base.Engine`.

Detector adapters (``yolox``, ``yolov8``) offer ``preprocess(image) -> (inputs, transform)`` and
``postprocess(outputs, transform) -> DetectionArrays``; calibration reuses ``preprocess`` so INT8
statistics see exactly what inference sees. Pose adapters (``heatmap``, ``blazepose``) take an image
and person boxes and return COCO-17 keypoints in frame pixels.
"""

from __future__ import annotations

DETECTOR_FAMILIES = ("yolox", "yolov8")
POSE_FAMILIES = ("heatmap", "blazepose")


def detector_adapter(family: str, engine=None, **kw):
    """The detector adapter of ``family`` sized from the engine's input spec."""
    if family == "yolox":
        from engines.adapters.yolox import YoloxAdapter as cls
    elif family == "yolov8":
        from engines.adapters.yolov8 import Yolov8Adapter as cls
    else:
        raise ValueError(f"unknown detector family {family!r}; expected one of {', '.join(DETECTOR_FAMILIES)}")
    return cls.for_engine(engine, **kw)


def pose_adapter(family: str, engine=None, **kw):
    """The pose adapter of ``family`` sized from the engine's input spec."""
    if family == "heatmap":
        from engines.adapters.heatmap import HeatmapPoseAdapter as cls
    elif family == "blazepose":
        from engines.adapters.blazepose import BlazePoseAdapter as cls
    else:
        raise ValueError(f"unknown pose family {family!r}; expected one of {', '.join(POSE_FAMILIES)}")
    return cls.for_engine(engine, **kw)
