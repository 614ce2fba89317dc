"""What INT8 costs: the quantized model against the full-precision one on the same images.

Detectors: detections matched one-to-one at IoU >= 0.5 (how many fp32 detections INT8 keeps, how many it
adds). Pose models: keypoint distance in frame pixels on the same person boxes (from the fp32 detector),
over keypoints the fp32 model is confident about.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from engines.adapters import DETECTOR_FAMILIES, detector_adapter


def pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of x1y1x2y2 boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_boxes(ref: np.ndarray, other: np.ndarray, iou_thresh: float = 0.5) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching, highest IoU first; returns (ref index, other index, IoU)."""
    iou = pair_iou(ref, other)
    pairs = []
    if iou.size == 0:
        return pairs
    order = np.dstack(np.unravel_index(np.argsort(-iou, axis=None, kind="stable"), iou.shape))[0]
    used_r, used_o = set(), set()
    for i, j in order:
        v = float(iou[i, j])
        if v < iou_thresh:
            break
        if i in used_r or j in used_o:
            continue
        used_r.add(int(i))
        used_o.add(int(j))
        pairs.append((int(i), int(j), v))
    return pairs


def detector_report(fp32, int8, family: str, images: Sequence[np.ndarray], names: Sequence[str],
                    iou_thresh: float = 0.5) -> dict:
    ad32 = detector_adapter(family, fp32)
    ad8 = detector_adapter(family, int8)
    per_image, n32, n8, matched, ious, dscore = [], 0, 0, 0, [], []
    for img, name in zip(images, names):
        inp, lb = ad32.preprocess(img)
        a = ad32.postprocess(fp32.infer(inp), lb)
        inp8, lb8 = ad8.preprocess(img)
        b = ad8.postprocess(int8.infer(inp8), lb8)
        pairs = match_boxes(a.boxes, b.boxes, iou_thresh)
        n32 += len(a)
        n8 += len(b)
        matched += len(pairs)
        ious += [p[2] for p in pairs]
        dscore += [float(b.scores[j] - a.scores[i]) for i, j, _ in pairs]
        per_image.append({"image": name, "fp32": len(a), "int8": len(b), "matched": len(pairs)})
    return {
        "kind": "detector", "family": family, "iou_threshold": iou_thresh, "images": len(per_image),
        "fp32_detections": n32, "int8_detections": n8, "matched": matched,
        "kept_fraction": matched / n32 if n32 else None,
        "extra_int8": n8 - matched, "missed_by_int8": n32 - matched,
        "mean_matched_iou": float(np.mean(ious)) if ious else None,
        "mean_score_change": float(np.mean(dscore)) if dscore else None,
        "per_image": per_image,
    }


def _keypoints(engine, family: str, image: np.ndarray, boxes: np.ndarray, max_batch: int) -> np.ndarray:
    from edge.perception.pose import PoseEstimator
    from edge.records import Frame, Tracks

    h, w = image.shape[:2]
    n = len(boxes)
    tracks = Tracks("calib", 0, 0.0, np.arange(n), boxes, np.ones(n, np.float32), (), (w, h))
    est = PoseEstimator(engine, family, max_batch=max_batch)
    return est.estimate(Frame("calib", 0, 0.0, image), tracks).keypoints


def pose_report(fp32, int8, family: str, detector, detector_family: str, images: Sequence[np.ndarray],
                names: Sequence[str], min_conf: float = 0.5, max_batch: int = 16) -> dict:
    from calibration.preprocess import detect_boxes

    errs, per_image, people, vis_lost = [], [], 0, 0
    heights = []
    for img, name in zip(images, names):
        boxes = detect_boxes(detector, detector_family, img)
        if len(boxes) == 0:
            per_image.append({"image": name, "people": 0})
            continue
        k32 = _keypoints(fp32, family, img, boxes, max_batch)
        k8 = _keypoints(int8, family, img, boxes, max_batch)
        conf = k32[..., 2] >= min_conf
        d = np.hypot(*(k32[..., :2] - k8[..., :2]).transpose(2, 0, 1))
        e = d[conf]
        bh = np.broadcast_to((boxes[:, 3] - boxes[:, 1])[:, None], d.shape)[conf]
        errs.append(e)
        heights.append(bh)
        vis_lost += int(np.sum(conf & (k8[..., 2] < min_conf)))
        people += len(boxes)
        per_image.append({"image": name, "people": int(len(boxes)),
                          "mean_error_px": float(e.mean()) if e.size else None})
    e = np.concatenate(errs) if errs else np.zeros(0)
    h = np.concatenate(heights) if heights else np.zeros(0)
    rel = e / np.maximum(h, 1.0)
    return {
        "kind": "pose", "family": family, "images": len(per_image), "people": people,
        "keypoints_compared": int(e.size), "min_confidence": min_conf,
        "mean_error_px": float(e.mean()) if e.size else None,
        "median_error_px": float(np.median(e)) if e.size else None,
        "p95_error_px": float(np.percentile(e, 95)) if e.size else None,
        "mean_error_box_height_fraction": float(rel.mean()) if e.size else None,
        "confident_keypoints_lost": vis_lost,
        "per_image": per_image,
    }


def format_report(r: dict) -> str:
    if r["kind"] == "detector":
        kept = "n/a" if r["kept_fraction"] is None else f"{100 * r['kept_fraction']:.1f}%"
        miou = "n/a" if r["mean_matched_iou"] is None else f"{r['mean_matched_iou']:.3f}"
        return (f"INT8 vs fp32 ({r['family']}, {r['images']} images): fp32 {r['fp32_detections']} detections, "
                f"int8 {r['int8_detections']}; matched at IoU {r['iou_threshold']}: {r['matched']} ({kept} kept), "
                f"{r['missed_by_int8']} missed, {r['extra_int8']} extra; mean IoU of matches {miou}")
    if r["mean_error_px"] is None:
        return f"INT8 vs fp32 ({r['family']}): no confident keypoints to compare ({r['people']} people found)"
    return (f"INT8 vs fp32 ({r['family']}, {r['images']} images, {r['people']} people, "
            f"{r['keypoints_compared']} keypoints): error mean {r['mean_error_px']:.2f} px, median "
            f"{r['median_error_px']:.2f} px, p95 {r['p95_error_px']:.2f} px "
            f"({100 * r['mean_error_box_height_fraction']:.2f}% of box height); "
            f"{r['confident_keypoints_lost']} confident keypoints lost")


def is_detector(family: str) -> bool:
    return family in DETECTOR_FAMILIES
