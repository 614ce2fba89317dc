"""YOLOv8 (``[1, 4 + C, N]``): centred letterbox, RGB / 255, boxes already in input pixels, no objectness."""

from __future__ import annotations

import numpy as np

from engines.adapters._detector import LetterboxDetector
from engines.adapters.common import cxcywh_to_xyxy


class Yolov8Adapter(LetterboxDetector):
    family = "yolov8"
    letterbox_mode = "center"
    rgb = True
    scale = 1.0 / 255.0
    default_size = (640, 640)

    def __init__(self, *args, anchors_last: bool = True, **kw):
        super().__init__(*args, **kw)
        self.anchors_last = anchors_last

    def decode(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = np.asarray(raw, dtype=np.float32)
        if a.ndim == 3:
            if a.shape[0] != 1:
                raise ValueError(f"yolov8: decode takes one image, got batch {a.shape[0]}")
            a = a[0]
        if a.ndim != 2 or a.shape[0] < 5:
            raise ValueError(f"yolov8: expected output (1, 4 + classes, N), got {np.shape(raw)}")
        if not self.anchors_last:
            a = a.T  # an export transposed to [1, N, 4 + C]
        a = np.ascontiguousarray(a.T)
        return cxcywh_to_xyxy(a[:, :4]), a[:, 4:]
