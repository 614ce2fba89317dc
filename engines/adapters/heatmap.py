"""Top-down heatmap pose models (HRNet/SimpleBaseline style): ``[N, 3, H, W]`` -> ``[N, 17, h, w]``.

The crop is the person box padded to the input aspect ratio and enlarged by ``box_scale`` (1.25);
a heatmap pixel ``(x, y)`` sits at input pixel ``(x * W / w, y * H / h)`` and goes back to the frame
through the crop's affine. The peak is refined below one heatmap pixel, either DARK-style (second-
order Taylor expansion of the log of the blurred heatmap) or with the classical quarter offset.
"""

from __future__ import annotations

import numpy as np

from engines.adapters.common import apply_affine, box_rois, crop_rois

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # RGB, 0..255
IMAGENET_STD = (58.395, 57.12, 57.375)


def _gaussian_blur(hm: np.ndarray, kernel: int) -> np.ndarray:
    """Separable Gaussian blur of (..., h, w) maps with replicated edges."""
    sigma = 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8
    r = kernel // 2
    g = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    g = (g / g.sum()).astype(np.float32)
    out = hm
    for axis in (-1, -2):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (r, r)
        p = np.pad(out, pad, mode="edge")
        n = out.shape[axis]
        acc = np.zeros_like(out)
        for k in range(kernel):
            acc += g[k] * np.take(p, np.arange(k, k + n), axis=axis)
        out = acc
    return out


def decode_heatmaps(heatmaps: np.ndarray, refine: str = "dark", blur_kernel: int = 11
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Peaks of (N, K, h, w) heatmaps -> coordinates (N, K, 2) in heatmap pixels and peak values (N, K)."""
    hm = np.ascontiguousarray(heatmaps, dtype=np.float32)
    if hm.ndim != 4:
        raise ValueError(f"heatmaps must be (N, K, h, w), got {hm.shape}")
    n, k, h, w = hm.shape
    flat = hm.reshape(n, k, -1)
    idx = flat.argmax(axis=2)
    maxval = np.take_along_axis(flat, idx[..., None], axis=2)[..., 0]
    py, px = np.divmod(idx, w)
    coords = np.stack([px, py], axis=-1).astype(np.float64)
    ni, ki = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    if refine == "quarter":
        def at(yy, xx):
            return hm[ni, ki, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]
        inner_x = (px > 0) & (px < w - 1)
        inner_y = (py > 0) & (py < h - 1)
        coords[..., 0] += np.where(inner_x, 0.25 * np.sign(at(py, px + 1) - at(py, px - 1)), 0.0)
        coords[..., 1] += np.where(inner_y, 0.25 * np.sign(at(py + 1, px) - at(py - 1, px)), 0.0)
    elif refine == "dark":
        blurred = _gaussian_blur(hm, blur_kernel)
        # rescale each map to its own peak so the log is taken of values comparable to the raw heatmap
        bmax = blurred.reshape(n, k, -1).max(axis=2)[..., None, None]
        blurred = blurred * (np.abs(hm).reshape(n, k, -1).max(axis=2)[..., None, None] / np.maximum(bmax, 1e-10))
        lg = np.log(np.maximum(blurred, 1e-10))
        lp = np.pad(lg, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
        y, x = py + 2, px + 2

        def L(dy, dx):
            return lp[ni, ki, y + dy, x + dx].astype(np.float64)
        dx = 0.5 * (L(0, 1) - L(0, -1))
        dy = 0.5 * (L(1, 0) - L(-1, 0))
        dxx = 0.25 * (L(0, 2) - 2 * L(0, 0) + L(0, -2))
        dyy = 0.25 * (L(2, 0) - 2 * L(0, 0) + L(-2, 0))
        dxy = 0.25 * (L(1, 1) - L(-1, 1) - L(1, -1) + L(-1, -1))
        det = dxx * dyy - dxy * dxy
        ok = (np.abs(det) > 1e-12) & (maxval > 0)
        safe = np.where(ok, det, 1.0)
        ox = -(dyy * dx - dxy * dy) / safe
        oy = -(dxx * dy - dxy * dx) / safe
        ok &= (np.abs(ox) <= 1.0) & (np.abs(oy) <= 1.0)
        coords[..., 0] += np.where(ok, ox, 0.0)
        coords[..., 1] += np.where(ok, oy, 0.0)
    elif refine != "none":
        raise ValueError(f"unknown heatmap refinement {refine!r} (dark, quarter or none)")
    return coords, maxval


class HeatmapPoseAdapter:
    """Pre- and post-processing of an NCHW heatmap pose model."""

    family = "heatmap"
    passes = 1

    def __init__(self, input_name: str = "input", input_size: tuple[int, int] = (192, 256),
                 output_name: str | None = None, box_scale: float = 1.25, rgb: bool = True,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, refine: str = "dark", blur_kernel: int = 11,
                 fixed_batch: int | None = None):
        self.input_name = input_name
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.output_name = output_name
        self.box_scale = float(box_scale)
        self.rgb = rgb
        self.mean = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
        self.inv_std = (1.0 / np.asarray(std, dtype=np.float32)).reshape(1, 3, 1, 1)
        self.refine = refine
        self.blur_kernel = int(blur_kernel)
        self.fixed_batch = fixed_batch

    @classmethod
    def for_engine(cls, engine, **kw):
        if engine is None:
            return cls(**kw)
        spec = engine.inputs[0]
        shape = tuple(spec.shape)
        if len(shape) != 4 or shape[1] != 3:
            raise ValueError(f"heatmap pose input {spec.name!r} has shape {shape}; expected (N, 3, H, W)")
        if isinstance(shape[2], int) and isinstance(shape[3], int):
            kw.setdefault("input_size", (shape[3], shape[2]))
        if isinstance(shape[0], int) and shape[0] > 0:
            kw.setdefault("fixed_batch", shape[0])
        out = engine.outputs[0].name if engine.outputs else None
        return cls(input_name=spec.name, output_name=out, **kw)

    @property
    def aspect(self) -> float:
        return self.input_size[0] / self.input_size[1]

    def initial_rois(self, boxes: np.ndarray) -> np.ndarray:
        return box_rois(boxes, self.aspect, self.box_scale)

    def crop(self, image: np.ndarray, rois: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Network input (N, 3, H, W) float32 for the regions and their crop -> frame affines."""
        crops, affines = crop_rois(image, rois, self.input_size, border=0.0)
        if self.rgb:
            crops = crops[..., ::-1]
        x = crops.transpose(0, 3, 1, 2).astype(np.float32)
        x -= self.mean
        x *= self.inv_std
        return np.ascontiguousarray(x), affines

    def heatmaps(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        if self.output_name is not None and self.output_name in outputs:
            return np.asarray(outputs[self.output_name])
        return np.asarray(next(iter(outputs.values())))

    def decode(self, outputs: dict[str, np.ndarray], affines: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """Keypoints (N, 17, 3) in frame pixels; no follow-up regions (one pass)."""
        hm = self.heatmaps(outputs)
        if hm.ndim != 4 or hm.shape[0] != len(affines):
            raise ValueError(f"heatmap output shape {hm.shape} does not match {len(affines)} crops")
        if hm.shape[1] != 17:
            raise ValueError(f"heatmap output has {hm.shape[1]} keypoint maps; expected 17 (COCO)")
        coords, maxval = decode_heatmaps(hm, self.refine, self.blur_kernel)
        h, w = hm.shape[2:]
        coords[..., 0] *= self.input_size[0] / w
        coords[..., 1] *= self.input_size[1] / h
        xy = apply_affine(affines, coords)
        kp = np.concatenate([xy, np.clip(maxval, 0.0, 1.0)[..., None]], axis=-1).astype(np.float32)
        return kp, None
