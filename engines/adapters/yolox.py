"""YOLOX (``[1, N, 85]``): top-left letterbox, BGR 0..255, grid decode, score = objectness * class."""

from __future__ import annotations

import numpy as np

from engines.adapters._detector import LetterboxDetector
from engines.adapters.common import cxcywh_to_xyxy


def yolox_grid(input_size: tuple[int, int], strides=(8, 16, 32)) -> tuple[np.ndarray, np.ndarray]:
    """Grid cell origins (N, 2) and strides (N,) in the model's row order (stride, then y, then x)."""
    w, h = input_size
    cells, steps = [], []
    for s in strides:
        gh, gw = h // s, w // s
        gy, gx = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        cells.append(np.stack([gx.ravel(), gy.ravel()], axis=1))
        steps.append(np.full(gh * gw, s))
    return np.concatenate(cells).astype(np.float32), np.concatenate(steps).astype(np.float32)


class YoloxAdapter(LetterboxDetector):
    family = "yolox"
    letterbox_mode = "topleft"
    rgb = False
    scale = 1.0
    default_size = (416, 416)

    def __init__(self, *args, strides=(8, 16, 32), **kw):
        super().__init__(*args, **kw)
        self.strides = tuple(strides)
        self._grid, self._stride = yolox_grid(self.input_size, self.strides)

    def decode(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = np.asarray(raw, dtype=np.float32)
        if a.ndim == 3:
            if a.shape[0] != 1:
                raise ValueError(f"yolox: decode takes one image, got batch {a.shape[0]}")
            a = a[0]
        if a.ndim != 2 or a.shape[1] < 6:
            raise ValueError(f"yolox: expected output (1, N, 5 + classes), got {np.shape(raw)}")
        if a.shape[0] != len(self._grid):
            raise ValueError(f"yolox: output has {a.shape[0]} rows but a {self.input_size[0]}x"
                             f"{self.input_size[1]} input with strides {self.strides} has {len(self._grid)}")
        s = self._stride[:, None]
        cxcy = (a[:, :2] + self._grid) * s
        wh = np.exp(np.minimum(a[:, 2:4], 20.0)) * s
        boxes = cxcywh_to_xyxy(np.concatenate([cxcy, wh], axis=1))
        scores = a[:, 4:5] * a[:, 5:]
        return boxes, scores
