"""Geometry shared by the model adapters: letterbox, affine crops, bilinear warps, NMS.

Every function takes and returns contiguous numpy arrays. OpenCV is used for resizing and warping
when it imports (it is faster and is what calibration images are prepared with); the numpy
fallback follows the same pixel conventions so results agree to within interpolation rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

try:  # optional: present on Jetson images and with the ``video`` extra
    import cv2 as _cv2
except Exception:  # pragma: no cover - exercised where OpenCV is absent
    _cv2 = None


def have_cv2() -> bool:
    return _cv2 is not None


def check_image(image: np.ndarray, what: str = "frame") -> np.ndarray:
    """A BGR uint8 H x W x 3 image, or a ValueError that names what is wrong."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{what}: expected a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"{what}: expected an H x W x 3 image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{what}: expected uint8 pixels, got {image.dtype}")
    return image


# --------------------------------------------------------------------------- affine warps

def affine_inverse(m: np.ndarray) -> np.ndarray:
    """Inverse of 2x3 affine matrices, shape (..., 2, 3)."""
    m = np.asarray(m, dtype=np.float64)
    a = m[..., :2]
    t = m[..., 2:]
    ai = np.linalg.inv(a)
    return np.concatenate([ai, -ai @ t], axis=-1)


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Map points (..., K, 2) through matrices (..., 2, 3)."""
    m = np.asarray(m, dtype=np.float64)
    p = np.asarray(pts, dtype=np.float64)
    return p @ np.swapaxes(m[..., :2], -1, -2) + m[..., None, :, 2]


def warp_affine_numpy(image: np.ndarray, dst_to_src: np.ndarray, size: tuple[int, int],
                      border: float = 0.0) -> np.ndarray:
    """Bilinear warp: output pixel (u, v) samples ``image`` at ``dst_to_src @ (u, v, 1)``.

    Neighbours outside the image take the border value (OpenCV's BORDER_CONSTANT convention), so
    edges blend into the border exactly as ``cv2.warpAffine`` does.
    """
    w, h = int(size[0]), int(size[1])
    src = np.asarray(image)
    hs, ws = src.shape[:2]
    img = src.reshape(hs, ws, -1).astype(np.float32)
    m = np.asarray(dst_to_src, dtype=np.float64)
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    x = m[0, 0] * u + m[0, 1] * v + m[0, 2]
    y = m[1, 0] * u + m[1, 1] * v + m[1, 2]
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = (x - x0).astype(np.float32)[..., None]
    fy = (y - y0).astype(np.float32)[..., None]
    x0 = x0.astype(np.int64)
    y0 = y0.astype(np.int64)
    out = np.zeros((h, w, img.shape[2]), dtype=np.float32)
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            xi = x0 + dx
            yi = y0 + dy
            inside = (xi >= 0) & (xi < ws) & (yi >= 0) & (yi < hs)
            vals = np.where(inside[..., None], img[np.clip(yi, 0, hs - 1), np.clip(xi, 0, ws - 1)],
                            np.float32(border))
            out += wy * wx * vals
    if src.dtype == np.uint8:
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.reshape((h, w) + src.shape[2:])


def warp_affine_numba(image: np.ndarray, dst_to_src: np.ndarray, size: tuple[int, int],
                      border: float = 0.0) -> np.ndarray:
    """The numpy warp's conventions in a Numba kernel (compiled on first use, cached on disk)."""
    from engines.adapters._warp_kernel import warp_bilinear

    src = np.ascontiguousarray(image)
    h3 = src.reshape(src.shape[0], src.shape[1], -1)
    out = warp_bilinear(h3, np.ascontiguousarray(dst_to_src, dtype=np.float64), int(size[0]), int(size[1]),
                        float(border))
    if src.dtype == np.uint8:
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.reshape((int(size[1]), int(size[0])) + src.shape[2:])


def _numba_ok() -> bool:
    try:
        import numba  # noqa: F401
    except Exception:  # pragma: no cover
        return False
    return True


def warp_affine(image: np.ndarray, dst_to_src: np.ndarray, size: tuple[int, int], border: float = 0.0,
                use_cv2: bool | None = None, impl: str | None = None) -> np.ndarray:
    """Bilinear affine crop to ``size`` = (width, height): OpenCV when available, else Numba, else numpy."""
    if impl is None:
        if use_cv2 is None:
            use_cv2 = _cv2 is not None
        impl = "cv2" if use_cv2 and _cv2 is not None else ("numba" if _numba_ok() else "numpy")
    if impl == "cv2":
        m = np.asarray(dst_to_src, dtype=np.float64)
        return _cv2.warpAffine(image, m, (int(size[0]), int(size[1])),
                               flags=_cv2.INTER_LINEAR | _cv2.WARP_INVERSE_MAP,
                               borderMode=_cv2.BORDER_CONSTANT, borderValue=(border, border, border))
    if impl == "numba":
        return warp_affine_numba(image, dst_to_src, size, border)
    return warp_affine_numpy(image, dst_to_src, size, border)


def resize_bilinear(image: np.ndarray, size: tuple[int, int], use_cv2: bool | None = None) -> np.ndarray:
    """Bilinear resize with the half-pixel convention of ``cv2.resize(..., INTER_LINEAR)``."""
    w, h = int(size[0]), int(size[1])
    if use_cv2 is None:
        use_cv2 = _cv2 is not None
    if use_cv2 and _cv2 is not None:
        return _cv2.resize(image, (w, h), interpolation=_cv2.INTER_LINEAR)
    hs, ws = image.shape[:2]
    sx, sy = ws / w, hs / h
    # src = (dst + 0.5) * scale - 0.5, clamped to the edge (resize replicates, it has no border)
    m = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    x = np.clip(m[0, 0] * u + m[0, 2], 0, ws - 1)
    y = np.clip(m[1, 1] * v + m[1, 2], 0, hs - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), ws - 1)
    y0 = np.minimum(np.floor(y).astype(np.int64), hs - 1)
    x1 = np.minimum(x0 + 1, ws - 1)
    y1 = np.minimum(y0 + 1, hs - 1)
    fx = (x - x0)[..., None]
    fy = (y - y0)[..., None]
    img = image.reshape(hs, ws, -1).astype(np.float32)
    out = ((1 - fy) * ((1 - fx) * img[y0, x0] + fx * img[y0, x1])
           + fy * ((1 - fx) * img[y1, x0] + fx * img[y1, x1]))
    if image.dtype == np.uint8:
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.reshape((h, w) + image.shape[2:])


# --------------------------------------------------------------------------- letterbox

@dataclass(frozen=True)
class Letterbox:
    """How a frame was placed on the network canvas: ``input = frame * scale + (pad_x, pad_y)``."""

    scale: float
    pad_x: float
    pad_y: float
    frame_size: tuple[int, int]  # (width, height)

    def to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes (N, 4) x1y1x2y2 in input pixels -> frame pixels, clipped to the frame."""
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
        b[:, [0, 2]] = (b[:, [0, 2]] - self.pad_x) / self.scale
        b[:, [1, 3]] = (b[:, [1, 3]] - self.pad_y) / self.scale
        w, h = self.frame_size
        np.clip(b[:, [0, 2]], 0, w, out=b[:, [0, 2]])
        np.clip(b[:, [1, 3]], 0, h, out=b[:, [1, 3]])
        return b


def letterbox(image: np.ndarray, size: tuple[int, int], mode: str = "topleft", pad_value: float = 114,
              use_cv2: bool | None = None) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio and pad to ``size`` = (width, height).

    ``topleft``: YOLOX's placement (frame at the origin, resized to ``int(W*r) x int(H*r)``).
    ``center``: Ultralytics' placement (rounded size, padding split evenly, as their letterbox).
    """
    tw, th = int(size[0]), int(size[1])
    h, w = image.shape[:2]
    r = min(tw / w, th / h)
    if mode == "topleft":
        nw, nh = int(w * r), int(h * r)
        px = py = 0
    elif mode == "center":
        nw, nh = int(round(w * r)), int(round(h * r))
        px = int(round((tw - nw) / 2 - 0.1))
        py = int(round((th - nh) / 2 - 0.1))
    else:
        raise ValueError(f"unknown letterbox mode {mode!r} (topleft or center)")
    nw, nh = max(1, min(nw, tw)), max(1, min(nh, th))
    canvas = np.full((th, tw, image.shape[2]), pad_value, dtype=image.dtype)
    resized = image if (nw, nh) == (w, h) else resize_bilinear(image, (nw, nh), use_cv2)
    canvas[py:py + nh, px:px + nw] = resized
    # the scale actually applied may differ from r by the integer rounding of the size
    return canvas, Letterbox(scale=float(r), pad_x=float(px), pad_y=float(py), frame_size=(w, h))


# --------------------------------------------------------------------------- NMS

def box_iou_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) against boxes (N, 4), plain convention (no +1)."""
    xx1 = np.maximum(box[0], boxes[:, 0])
    yy1 = np.maximum(box[1], boxes[:, 1])
    xx2 = np.minimum(box[2], boxes[:, 2])
    yy2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
    area_a = max(float(box[2] - box[0]), 0.0) * max(float(box[3] - box[1]), 0.0)
    area_b = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thresh: float, classes: np.ndarray | None = None,
        max_out: int = 300) -> np.ndarray:
    """Greedy NMS; returns kept indices, best score first. Per class when ``classes`` is given."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    work = boxes
    if classes is not None:
        # offset each class into its own region so one pass never suppresses across classes
        span = float(boxes.max() - boxes.min()) + 1.0
        work = boxes + (np.asarray(classes, dtype=np.float32).reshape(-1, 1) * span)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_out:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        if rest.size == 0:
            break
        order = rest[box_iou_one(work[i], work[rest]) <= iou_thresh]
    return np.asarray(keep, dtype=np.int64)


@dataclass(frozen=True)
class DetectionArrays:
    """Decoded detections of one image in frame pixels."""

    boxes: np.ndarray  # (N, 4) float32 x1y1x2y2
    scores: np.ndarray  # (N,) float32
    class_ids: np.ndarray  # (N,) int64

    @staticmethod
    def empty() -> "DetectionArrays":
        return DetectionArrays(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.boxes)


def select_and_suppress(boxes_xyxy: np.ndarray, class_scores: np.ndarray, classes, score_thresh: float,
                        nms_iou: float, max_out: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class filter, score threshold and per-class NMS on (N, 4) boxes and (N, C) scores."""
    cls = np.asarray(list(classes), dtype=np.int64)
    if cls.size and (cls.min() < 0 or cls.max() >= class_scores.shape[1]):
        raise ValueError(f"class ids {cls.tolist()} outside the model's {class_scores.shape[1]} classes")
    sub = class_scores[:, cls]
    rows, cols = np.nonzero(sub >= score_thresh)
    if rows.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    b = boxes_xyxy[rows]
    s = sub[rows, cols]
    c = cls[cols]
    keep = nms(b, s, nms_iou, classes=c if cls.size > 1 else None, max_out=max_out)
    return b[keep].astype(np.float32), s[keep].astype(np.float32), c[keep].astype(np.int64)


def cxcywh_to_xyxy(a: np.ndarray) -> np.ndarray:
    out = np.empty_like(a, dtype=np.float32)
    out[:, 0] = a[:, 0] - a[:, 2] / 2
    out[:, 1] = a[:, 1] - a[:, 3] / 2
    out[:, 2] = a[:, 0] + a[:, 2] / 2
    out[:, 3] = a[:, 1] + a[:, 3] / 2
    return out


# --------------------------------------------------------------------------- pose regions

def box_rois(boxes: np.ndarray, aspect: float | None, scale: float) -> np.ndarray:
    """Person boxes (N, 4) -> regions (N, 5) ``cx, cy, w, h, rotation``.

    With ``aspect`` (= width / height of the model input) the shorter side is padded to that aspect
    before scaling, so the crop is not distorted; without it the region is a square of the longer side.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cx = (b[:, 0] + b[:, 2]) / 2
    cy = (b[:, 1] + b[:, 3]) / 2
    w = np.maximum(b[:, 2] - b[:, 0], 1.0)
    h = np.maximum(b[:, 3] - b[:, 1], 1.0)
    if aspect is None:
        w = h = np.maximum(w, h)
    else:
        wide = w > aspect * h
        h = np.where(wide, w / aspect, h)
        w = np.where(wide, w, h * aspect)
    out = np.stack([cx, cy, w * scale, h * scale, np.zeros_like(cx)], axis=1)
    return out.astype(np.float32)


def roi_affines(rois: np.ndarray, in_size: tuple[int, int]) -> np.ndarray:
    """Crop -> frame affines (N, 2, 3) for regions ``cx, cy, w, h, rotation`` and an input (W, H).

    Crop pixel (u, v) maps to ``c + (u/W - 0.5) w (cos r, sin r) + (v/H - 0.5) h (-sin r, cos r)``
    (rotation clockwise in image coordinates, y down).
    """
    r = np.asarray(rois, dtype=np.float64).reshape(-1, 5)
    iw, ih = float(in_size[0]), float(in_size[1])
    cx, cy, w, h, rot = r.T
    c, s = np.cos(rot), np.sin(rot)
    m = np.empty((len(r), 2, 3))
    m[:, 0, 0] = w / iw * c
    m[:, 0, 1] = -h / ih * s
    m[:, 1, 0] = w / iw * s
    m[:, 1, 1] = h / ih * c
    m[:, 0, 2] = cx - 0.5 * w * c + 0.5 * h * s
    m[:, 1, 2] = cy - 0.5 * w * s - 0.5 * h * c
    return m


def crop_rois(image: np.ndarray, rois: np.ndarray, in_size: tuple[int, int], border: float = 0.0,
              use_cv2: bool | None = None, impl: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Warp each region to ``in_size``; returns crops (N, H, W, 3) uint8 and their crop -> frame affines."""
    m = roi_affines(rois, in_size)
    w, h = int(in_size[0]), int(in_size[1])
    crops = np.empty((len(m), h, w, image.shape[2]), dtype=image.dtype)
    for i in range(len(m)):
        crops[i] = warp_affine(image, m[i], (w, h), border, use_cv2, impl)
    return crops, m


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(x, dtype=np.float32), -80.0, 80.0)
    return 1.0 / (1.0 + np.exp(-x))
