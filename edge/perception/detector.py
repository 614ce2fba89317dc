"""Person detection stage: Frame -> Detections, through an engine and a detector adapter."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.records import Detections, Frame
from engines.adapters import detector_adapter


class PersonDetector:
    """Run a YOLO-family detector on frames and keep the person class.

    ``engine`` is any :class:`engines.base.Engine` (``engines.select.open_engine`` or ``OrtEngine``).
    Not thread-safe (engines are not); use one detector per inference thread.
    """

    def __init__(self, engine, family: str = "yolox", score_thresh: float = 0.3, nms_iou: float = 0.45,
                 classes: Sequence[int] = (0,)):
        self.engine = engine
        self.family = family
        self.adapter = detector_adapter(family, engine, score_thresh=score_thresh, nms_iou=nms_iou,
                                        classes=classes)
        shape = engine.inputs[0].shape
        self._dynamic_batch = not (isinstance(shape[0], int) and shape[0] > 0)

    def detect(self, frame: Frame) -> Detections:
        return self.detect_many([frame])[0]

    def detect_many(self, frames: Sequence[Frame]) -> list[Detections]:
        """Detections for each frame; one engine call when the model takes a dynamic batch."""
        prepared = []
        for f in frames:
            try:
                prepared.append(self.adapter.preprocess_image(f.image))
            except ValueError as e:
                raise ValueError(f"camera {f.camera_id!r} frame {f.frame_index}: {e}") from None
        name = self.adapter.input_name
        if self._dynamic_batch and len(frames) > 1:
            out = self.engine.infer({name: np.concatenate([x for x, _ in prepared])})
            per_frame = [{k: v[i:i + 1] for k, v in out.items()} for i in range(len(frames))]
        else:
            per_frame = [self.engine.infer({name: x}) for x, _ in prepared]
        result = []
        for f, (_, lb), out in zip(frames, prepared, per_frame):
            d = self.adapter.postprocess(out, lb)
            h, w = f.image.shape[:2]
            result.append(Detections(camera_id=f.camera_id, frame_index=f.frame_index, t=f.t,
                                     boxes=d.boxes, scores=d.scores, frame_size=(w, h)))
        return result
