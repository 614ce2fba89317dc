"""BlazePose GHUM landmark models used top-down on an external person box.

Contract (MediaPipe pose_landmark, converted to ONNX with NHWC input): the rotated square region is
warped to 256 x 256 RGB in [0, 1]; ``Identity`` holds 39 x (x, y, z, visibility logit, presence logit)
in crop pixels, ``Identity_1`` the pose presence, ``Identity_3`` 64 x 64 x 39 heatmap logits used to
refine x, y. Points 33 and 34 (hip centre, scale point) give the next region. From a box the first
region is the box centre with side 1.25 * max(w, h) and no rotation; it is refined once from the
auxiliary points (two passes). With ``reuse`` the stage feeds the previous frame's auxiliary region
instead (one pass).
"""

from __future__ import annotations

import numpy as np

from engines.adapters.common import apply_affine, box_rois, crop_rois, sigmoid

COCO17_FROM_BLAZEPOSE33 = np.array([0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28])
_LANDMARKS = 39
_HEATMAP_STRIDE = 4
_WINDOW = 3  # half size of the 7 x 7 refinement window


def rois_from_aux(p_centre: np.ndarray, p_scale: np.ndarray, scale: float = 1.25) -> np.ndarray:
    """Regions (N, 5) from the hip centre and scale point (N, 2) in frame pixels."""
    d = p_scale - p_centre
    side = 2.0 * np.hypot(d[:, 0], d[:, 1]) * scale
    rot = np.pi / 2 - np.arctan2(-d[:, 1], d[:, 0])
    rot = (rot + np.pi) % (2 * np.pi) - np.pi
    return np.stack([p_centre[:, 0], p_centre[:, 1], side, side, rot], axis=1).astype(np.float32)


def refine_from_heatmap(xy: np.ndarray, heatmap_logits: np.ndarray, min_conf: float = 0.5) -> np.ndarray:
    """MediaPipe's heatmap refinement of crop coordinates (N, L, 2) with logits (N, h, w, L)."""
    n, hh, ww, nl = heatmap_logits.shape
    out = np.array(xy, dtype=np.float64, copy=True)
    col = np.trunc(out[..., 0] / _HEATMAP_STRIDE).astype(np.int64)
    row = np.trunc(out[..., 1] / _HEATMAP_STRIDE).astype(np.int64)
    off = np.arange(-_WINDOW, _WINDOW + 1)
    cols = col[..., None, None] + off[None, None, None, :]  # (N, L, 1, 7)
    rows = row[..., None, None] + off[None, None, :, None]  # (N, L, 7, 1)
    valid = (cols >= 0) & (cols < ww) & (rows >= 0) & (rows < hh)  # (N, L, 7, 7)
    ni = np.arange(n)[:, None, None, None]
    li = np.arange(nl)[None, :, None, None]
    vals = heatmap_logits[ni, np.clip(rows, 0, hh - 1), np.clip(cols, 0, ww - 1), li]
    w = np.where(valid, sigmoid(vals), 0.0).astype(np.float64)
    total = w.sum(axis=(2, 3))
    ok = (w.max(axis=(2, 3)) >= min_conf) & (total > 0)
    safe = np.where(total > 0, total, 1.0)
    rx = _HEATMAP_STRIDE * (w * np.broadcast_to(cols, w.shape)).sum(axis=(2, 3)) / safe
    ry = _HEATMAP_STRIDE * (w * np.broadcast_to(rows, w.shape)).sum(axis=(2, 3)) / safe
    out[..., 0] = np.where(ok, rx, out[..., 0])
    out[..., 1] = np.where(ok, ry, out[..., 1])
    return out


class BlazePoseAdapter:
    """Pre- and post-processing of ``mediapipe_pose_landmark_{lite,full,heavy}.onnx``."""

    family = "blazepose"
    passes = 2

    def __init__(self, input_name: str = "input_1", input_size: int = 256, box_scale: float = 1.25,
                 roi_scale: float = 1.25, presence_thresh: float = 0.5, refine: bool = True,
                 fixed_batch: int | None = 1, names: dict[str, str] | None = None):
        self.input_name = input_name
        self.input_size = (int(input_size), int(input_size))
        self.box_scale = float(box_scale)
        self.roi_scale = float(roi_scale)
        self.presence_thresh = float(presence_thresh)
        self.refine = refine
        self.fixed_batch = fixed_batch
        self.names = {"landmarks": "Identity", "presence": "Identity_1", "heatmap": "Identity_3"}
        self.names.update(names or {})

    @classmethod
    def for_engine(cls, engine, **kw):
        if engine is None:
            return cls(**kw)
        spec = engine.inputs[0]
        shape = tuple(spec.shape)
        if len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2] or not isinstance(shape[1], int):
            raise ValueError(f"BlazePose input {spec.name!r} has shape {shape}; expected (N, S, S, 3) NHWC")
        fixed = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        kw.setdefault("fixed_batch", fixed)
        names = {o.name for o in engine.outputs}
        missing = [n for n in ("Identity", "Identity_1") if n not in names]
        if missing and "names" not in kw:
            raise ValueError(f"BlazePose model lacks outputs {missing}; it has {sorted(names)}")
        return cls(input_name=spec.name, input_size=shape[1], **kw)

    def initial_rois(self, boxes: np.ndarray) -> np.ndarray:
        return box_rois(boxes, None, self.box_scale)

    def crop(self, image: np.ndarray, rois: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Network input (N, S, S, 3) RGB float32 in [0, 1] and the crop -> frame affines."""
        crops, affines = crop_rois(image, rois, self.input_size, border=0.0)
        x = crops[..., ::-1].astype(np.float32)
        x *= np.float32(1.0 / 255.0)
        return np.ascontiguousarray(x), affines

    def decode(self, outputs: dict[str, np.ndarray], affines: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, 17, 3) in frame pixels and the auxiliary regions (N, 5) for the next pass."""
        n = len(affines)
        try:
            lm = np.asarray(outputs[self.names["landmarks"]], dtype=np.float32).reshape(n, _LANDMARKS, 5)
            presence = np.asarray(outputs[self.names["presence"]], dtype=np.float32).reshape(n)
        except KeyError as e:
            raise ValueError(f"BlazePose outputs lack {e.args[0]!r}; got {sorted(outputs)}") from None
        except ValueError:
            raise ValueError(f"BlazePose landmark output shape {np.shape(outputs[self.names['landmarks']])} "
                             f"does not hold {n} x {_LANDMARKS} x 5 values") from None
        xy = lm[..., :2].astype(np.float64)
        hm = outputs.get(self.names["heatmap"]) if self.refine else None
        if hm is not None:
            hm = np.asarray(hm, dtype=np.float32)
            if hm.ndim == 4 and hm.shape[0] == n and hm.shape[3] == _LANDMARKS:
                xy = refine_from_heatmap(xy, hm)
        frame_xy = apply_affine(affines, xy)
        vis = sigmoid(lm[..., 3])
        conf = np.where((presence >= self.presence_thresh)[:, None], vis, 0.0)
        kp = np.concatenate([frame_xy[:, COCO17_FROM_BLAZEPOSE33], conf[:, COCO17_FROM_BLAZEPOSE33, None]],
                            axis=-1).astype(np.float32)
        aux = rois_from_aux(frame_xy[:, 33], frame_xy[:, 34], self.roi_scale)
        return kp, aux

    def presence(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(outputs[self.names["presence"]], dtype=np.float32).reshape(-1)
