"""What the YOLO-family detector adapters share: input discovery and the preprocess contract."""

from __future__ import annotations

import numpy as np

from engines.adapters.common import DetectionArrays, Letterbox, check_image, letterbox


def input_geometry(engine, default_size: tuple[int, int]) -> tuple[str, tuple[int, int]]:
    """(input name, (width, height)) of an NCHW image model; dynamic sizes fall back to the default."""
    if engine is None:
        return "images", default_size
    spec = engine.inputs[0]
    shape = tuple(spec.shape)
    if len(shape) != 4 or shape[1] != 3:
        raise ValueError(f"detector input {spec.name!r} has shape {shape}; expected (N, 3, H, W) - "
                         f"is this a detector model?")
    h, w = shape[2], shape[3]
    if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
        return spec.name, default_size
    return spec.name, (w, h)


class LetterboxDetector:
    """Base for single-image detectors fed a letterboxed NCHW float tensor."""

    family = "abstract"
    letterbox_mode = "topleft"
    rgb = False
    scale = 1.0

    def __init__(self, input_name: str = "images", input_size: tuple[int, int] = (416, 416),
                 score_thresh: float = 0.3, nms_iou: float = 0.45, classes=(0,), pad_value: float = 114,
                 output_name: str | None = None, max_detections: int = 300):
        self.input_name = input_name
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.score_thresh = float(score_thresh)
        self.nms_iou = float(nms_iou)
        self.classes = tuple(int(c) for c in classes)
        self.pad_value = pad_value
        self.output_name = output_name
        self.max_detections = int(max_detections)

    @classmethod
    def for_engine(cls, engine, **kw):
        name, size = input_geometry(engine, kw.pop("input_size", cls.default_size))
        out = engine.outputs[0].name if engine is not None and engine.outputs else None
        return cls(input_name=name, input_size=size, output_name=out, **kw)

    default_size = (416, 416)

    def preprocess_image(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """(1, 3, H, W) float32 tensor and the letterbox that produced it."""
        check_image(image)
        canvas, lb = letterbox(image, self.input_size, self.letterbox_mode, self.pad_value)
        if self.rgb:
            canvas = canvas[..., ::-1]
        x = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32)
        if self.scale != 1.0:
            x *= np.float32(self.scale)
        return x, lb

    def preprocess(self, image: np.ndarray) -> tuple[dict[str, np.ndarray], Letterbox]:
        x, lb = self.preprocess_image(image)
        return {self.input_name: x}, lb

    def _output(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        if self.output_name is not None and self.output_name in outputs:
            return np.asarray(outputs[self.output_name])
        if len(outputs) != 1 and self.output_name is None:
            raise ValueError(f"{self.family}: expected one output, got {sorted(outputs)}")
        return np.asarray(next(iter(outputs.values())))

    def postprocess(self, outputs: dict[str, np.ndarray], transform: Letterbox) -> DetectionArrays:
        raw = self._output(outputs)
        boxes, class_scores = self.decode(raw)
        b, s, c = self._select(boxes, class_scores)
        return DetectionArrays(transform.to_frame(b), s, c)

    def _select(self, boxes, class_scores):
        from engines.adapters.common import select_and_suppress

        return select_and_suppress(boxes, class_scores, self.classes, self.score_thresh, self.nms_iou,
                                   self.max_detections)

    def decode(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw output of one image -> boxes (N, 4) xyxy in input pixels and class scores (N, C)."""
        raise NotImplementedError
