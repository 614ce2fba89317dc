"""CLEAR MOT (MOTA) and identity (IDF1) scores of MOT results against ground truth.

Definitions as in Bernardin & Stiefelhagen (2008) and Ristani et al. (2016), with the conventions of
the MOTChallenge tools: a ground-truth box and a result box may correspond when their IoU is at least
``min_iou`` (0.5).

- MOTA: per frame, correspondences of the previous frames are kept while still valid; the rest are
  assigned by minimum total distance (1 - IoU) among the largest possible sets of valid pairs. A
  ground-truth object matched to another result id than at its last match is a switch.
  MOTA = 1 - (misses + false positives + switches) / ground-truth boxes.
- IDF1: one global one-to-one mapping of ground-truth ids to result ids maximising the frames in
  which mapped boxes correspond; IDF1 = 2 IDTP / (ground-truth boxes + result boxes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.tracking.lapjv import linear_assignment


@dataclass(frozen=True)
class MotScores:
    mota: float
    idf1: float
    num_gt: int
    num_pred: int
    misses: int
    false_positives: int
    switches: int
    idtp: int


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of tlwh boxes a (n, 4) and b (m, 4)."""
    ax2 = a[:, None, 0] + a[:, None, 2]
    ay2 = a[:, None, 1] + a[:, None, 3]
    bx2 = b[None, :, 0] + b[None, :, 2]
    by2 = b[None, :, 1] + b[None, :, 3]
    iw = np.clip(np.minimum(ax2, bx2) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2, by2) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, None, 2] * a[:, None, 3]) + (b[None, :, 2] * b[None, :, 3]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _frames(rows: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    out = {}
    fr = rows[:, 0].astype(np.int64)
    for f in np.unique(fr):
        sel = rows[fr == f]
        out[int(f)] = (sel[:, 1].astype(np.int64), sel[:, 2:6].astype(np.float64))
    return out


def evaluate(gt: np.ndarray, pred: np.ndarray, min_iou: float = 0.5) -> MotScores:
    """``gt`` and ``pred``: (N, >=6) arrays of frame, id, x, y, w, h (MOT rows)."""
    g = _frames(gt)
    p = _frames(pred)
    last_match: dict[int, int] = {}
    misses = fps = switches = 0
    pair_counts: dict[tuple[int, int], int] = {}
    for f in sorted(set(g) | set(p)):
        gid, gbox = g.get(f, (np.zeros(0, np.int64), np.zeros((0, 4))))
        pid, pbox = p.get(f, (np.zeros(0, np.int64), np.zeros((0, 4))))
        iou = _iou(gbox, pbox) if len(gid) and len(pid) else np.zeros((len(gid), len(pid)))
        valid = iou >= min_iou
        for i, j in zip(*np.nonzero(valid)):
            key = (int(gid[i]), int(pid[j]))
            pair_counts[key] = pair_counts.get(key, 0) + 1
        g_free = np.ones(len(gid), bool)
        p_free = np.ones(len(pid), bool)
        pcol = {int(h): j for j, h in enumerate(pid)}
        for i, o in enumerate(gid.tolist()):
            j = pcol.get(last_match.get(o, -1))
            if j is not None and valid[i, j] and p_free[j]:
                g_free[i] = p_free[j] = False
        gi = np.nonzero(g_free)[0]
        pj = np.nonzero(p_free)[0]
        matched = 0
        if len(gi) and len(pj):
            sub_valid = valid[np.ix_(gi, pj)]
            # Most pairs first, then least distance: each pair is worth (limit - distance) > 0.
            limit = float(min(len(gi), len(pj)) + 2)
            cost = np.where(sub_valid, 1.0 - iou[np.ix_(gi, pj)], 2.0 * limit)
            x, _ = linear_assignment(cost, limit)
            for a, b in enumerate(x.tolist()):
                if b < 0 or not sub_valid[a, b]:
                    continue
                o = int(gid[gi[a]])
                h = int(pid[pj[b]])
                if o in last_match and last_match[o] != h:
                    switches += 1
                last_match[o] = h
                g_free[gi[a]] = p_free[pj[b]] = False
                matched += 1
        misses += int(g_free.sum())
        fps += int(p_free.sum())
    num_gt, num_pred = len(gt), len(pred)
    gids = sorted({k[0] for k in pair_counts})
    hids = sorted({k[1] for k in pair_counts})
    idtp = 0
    if gids and hids:
        gi = {o: i for i, o in enumerate(gids)}
        hi = {h: j for j, h in enumerate(hids)}
        counts = np.zeros((len(gids), len(hids)))
        for (o, h), c in pair_counts.items():
            counts[gi[o], hi[h]] = c
        x, _ = linear_assignment(-counts)
        idtp = int(sum(counts[i, j] for i, j in enumerate(x.tolist()) if j >= 0))
    mota = 1.0 - (misses + fps + switches) / num_gt if num_gt else float("nan")
    idf1 = 2.0 * idtp / (num_gt + num_pred) if (num_gt + num_pred) else float("nan")
    return MotScores(mota, idf1, num_gt, num_pred, misses, fps, switches, idtp)
