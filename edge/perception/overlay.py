"""Draw boxes and COCO-17 skeletons on a copy of a frame (OpenCV when present, numpy otherwise)."""

from __future__ import annotations

import numpy as np

try:
    import cv2 as _cv2
except Exception:  # pragma: no cover - exercised where OpenCV is absent
    _cv2 = None

SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
            (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))
# BGR: the subject's left side orange, right side blue, centre green, so a left/right swap is visible
_LEFT, _RIGHT, _MID = (0, 140, 255), (255, 120, 0), (0, 200, 0)
_SIDE = {0: _MID, **{k: _LEFT for k in (1, 3, 5, 7, 9, 11, 13, 15)}, **{k: _RIGHT for k in (2, 4, 6, 8, 10, 12, 14, 16)}}


def _line(img, p, q, colour, thickness):
    if _cv2 is not None:
        _cv2.line(img, (int(round(p[0])), int(round(p[1]))), (int(round(q[0])), int(round(q[1]))), colour,
                  thickness, _cv2.LINE_AA)
        return
    n = int(max(abs(q[0] - p[0]), abs(q[1] - p[1]))) + 1
    xs = np.rint(np.linspace(p[0], q[0], n)).astype(int)
    ys = np.rint(np.linspace(p[1], q[1], n)).astype(int)
    h, w = img.shape[:2]
    r = max(thickness // 2, 0)
    for dx in range(-r, r + 1):
        for dy in range(-r, r + 1):
            x, y = xs + dx, ys + dy
            ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
            img[y[ok], x[ok]] = colour


def _dot(img, p, colour, radius):
    if _cv2 is not None:
        _cv2.circle(img, (int(round(p[0])), int(round(p[1]))), radius, colour, -1, _cv2.LINE_AA)
        return
    h, w = img.shape[:2]
    x0, y0 = int(round(p[0])), int(round(p[1]))
    ys, xs = np.ogrid[max(y0 - radius, 0):min(y0 + radius + 1, h), max(x0 - radius, 0):min(x0 + radius + 1, w)]
    mask = (xs - x0) ** 2 + (ys - y0) ** 2 <= radius * radius
    img[ys, xs][mask] = colour
    sub = img[max(y0 - radius, 0):min(y0 + radius + 1, h), max(x0 - radius, 0):min(x0 + radius + 1, w)]
    sub[mask] = colour


def draw_persons(image: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray | None = None,
                 scores: np.ndarray | None = None, min_conf: float = 0.3) -> np.ndarray:
    """A copy of ``image`` with boxes (N, 4) and keypoints (N, 17, 3) drawn."""
    out = np.ascontiguousarray(image).copy()
    scale = max(1, int(round(max(out.shape[:2]) / 640)))
    for i, b in enumerate(np.asarray(boxes, dtype=np.float32).reshape(-1, 4)):
        x1, y1, x2, y2 = b
        for p, q in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
            _line(out, p, q, (0, 255, 255), scale)
        if scores is not None and _cv2 is not None:
            _cv2.putText(out, f"{float(scores[i]):.2f}", (int(x1), max(int(y1) - 4, 10)),
                         _cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale, (0, 255, 255), scale)
        if keypoints is None:
            continue
        kp = keypoints[i]
        for a, c in SKELETON:
            if kp[a, 2] >= min_conf and kp[c, 2] >= min_conf:
                _line(out, kp[a, :2], kp[c, :2], _SIDE[c] if _SIDE[a] == _SIDE[c] else _MID, scale)
        for k in range(17):
            if kp[k, 2] >= min_conf:
                _dot(out, kp[k, :2], _SIDE[k], 2 * scale)
    return out


def write_png(path, image: np.ndarray) -> None:
    """Write a BGR image as PNG (OpenCV, else matplotlib)."""
    if _cv2 is not None:
        if not _cv2.imwrite(str(path), image):
            raise OSError(f"could not write image {path}")
        return
    import matplotlib.image as mpimg

    mpimg.imsave(str(path), np.ascontiguousarray(image[..., ::-1]))
