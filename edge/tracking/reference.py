"""ByteTrack in plain numpy, one Python object per track: the yardstick for the Numba tracker.

Written in the shape of the original (lists of track objects, id-keyed list joins and differences,
dense matrix Kalman algebra), so that it is a second, independent reading of the algorithm: tests
compare the Numba tracker with it on inputs the reference files do not cover (score fusion off,
other frame rates, crowded scenes, low-score detections), and the benchmark uses it as the baseline
of a straightforward implementation. It is not used by the device.
"""

from __future__ import annotations

import numpy as np

from edge.tracking.bytetrack import TrackerOutput
from edge.tracking.lapjv import linear_assignment

_F = np.eye(8)
_F[:4, 4:] = np.eye(4)
_H = np.eye(4, 8)


class _Track:
    def __init__(self, tlwh, score):
        self.tlwh0 = np.asarray(tlwh, dtype=np.float64)
        self.score = float(score)
        self.mean = None
        self.cov = None
        self.tid = 0
        self.state = 0
        self.activated = False
        self.frame_id = 0
        self.start_frame = 0

    @property
    def tlbr(self):
        if self.mean is None:
            t = self.tlwh0.copy()
        else:
            t = self.mean[:4].copy()
            t[2] *= t[3]
            t[:2] -= t[2:] / 2
        t[2:] += t[:2]
        return t

    def xyah(self):
        t = self.tlwh0.copy()
        t[:2] += t[2:] / 2
        t[2] /= t[3]
        return t


def _initiate(z):
    h = z[3]
    std = np.array([h / 10, h / 10, 1e-2, h / 10, h / 16, h / 16, 1e-5, h / 16])
    return np.r_[z, np.zeros(4)], np.diag(std * std)


def _predict(mean, cov):
    h = mean[3]
    std = np.array([h / 20, h / 20, 1e-2, h / 20, h / 160, h / 160, 1e-5, h / 160])
    return _F @ mean, _F @ cov @ _F.T + np.diag(std * std)


def _update(mean, cov, z):
    h = mean[3]
    r = np.array([h / 20, h / 20, 1e-1, h / 20])
    s = _H @ cov @ _H.T + np.diag(r * r)
    gain = np.linalg.solve(s, (cov @ _H.T).T).T
    return mean + gain @ (z - _H @ mean), cov - gain @ s @ gain.T


def _iou_dist(a, b, legacy):
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    a = np.asarray([t.tlbr for t in a])
    b = np.asarray([t.tlbr for t in b])
    one = 1.0 if legacy else 0.0
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + one
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + one
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    area_a = (a[:, 2] - a[:, 0] + one) * (a[:, 3] - a[:, 1] + one)
    area_b = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    return 1.0 - inter / (area_a[:, None] + area_b[None, :] - inter)


def _fuse(cost, dets):
    if cost.size == 0:
        return cost
    return 1.0 - (1.0 - cost) * np.array([d.score for d in dets])[None, :]


def _match(cost, limit):
    if cost.size == 0:
        return [], list(range(cost.shape[0])), list(range(cost.shape[1]))
    x, y = linear_assignment(cost, limit)
    return ([(i, j) for i, j in enumerate(x.tolist()) if j >= 0],
            np.nonzero(x < 0)[0].tolist(), np.nonzero(y < 0)[0].tolist())


def _joint(a, b):
    seen = {t.tid for t in a}
    return a + [t for t in b if t.tid not in seen]


def _sub(a, b):
    drop = {t.tid for t in b}
    return [t for t in a if t.tid not in drop]


class NumpyByteTracker:
    def __init__(self, track_thresh=0.5, match_thresh=0.8, track_buffer=30, frame_rate=30.0,
                 fuse_score=True, iou="plain"):
        self.tt, self.mt = float(track_thresh), float(match_thresh)
        self.det_thresh = self.tt + 0.1
        self.max_time_lost = int(frame_rate / 30.0 * track_buffer)
        self.fuse, self.legacy = bool(fuse_score), iou == "legacy"
        self.tracked, self.lost, self.removed = [], [], []
        self.frame = 0
        self.count = 0
        self._prev_out: set[int] = set()
        self._started: set[int] = set()

    def _take(self, t, d):
        t.mean, t.cov = _update(t.mean, t.cov, d.xyah())
        t.state, t.activated, t.frame_id, t.score = 1, True, self.frame, d.score

    def update(self, boxes, scores) -> TrackerOutput:
        self.frame += 1
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(boxes).all(1) & np.isfinite(scores) & (np.abs(boxes) < 1e6).all(1) \
                & (boxes[:, 2] - boxes[:, 0] >= 1e-3) & (boxes[:, 3] - boxes[:, 1] >= 1e-3) \
                & (scores >= 0) & (scores <= 1)
        boxes, scores = boxes[ok], scores[ok]
        tlwh = boxes.copy()
        tlwh[:, 2:] -= tlwh[:, :2]
        hi = scores > self.tt
        lo = (scores > 0.1) & (scores < self.tt)
        dets = [_Track(b, s) for b, s in zip(tlwh[hi], scores[hi])]
        dets_low = [_Track(b, s) for b, s in zip(tlwh[lo], scores[lo])]
        unconf = [t for t in self.tracked if not t.activated]
        pool = _joint([t for t in self.tracked if t.activated], self.lost)
        for t in pool:
            m = t.mean.copy()
            if t.state != 1:
                m[7] = 0
            t.mean, t.cov = _predict(m, t.cov)
        activated, refind, lost_now, removed_now = [], [], [], []
        cost = _iou_dist(pool, dets, self.legacy)
        matches, u_track, u_det = _match(_fuse(cost, dets) if self.fuse else cost, self.mt)
        for i, j in matches:
            t = pool[i]
            (activated if t.state == 1 else refind).append(t)
            self._take(t, dets[j])
        r_tracked = [pool[i] for i in u_track if pool[i].state == 1]
        matches, u_track, _ = _match(_iou_dist(r_tracked, dets_low, self.legacy), 0.5)
        for i, j in matches:
            self._take(r_tracked[i], dets_low[j])
            activated.append(r_tracked[i])
        for i in u_track:
            r_tracked[i].state = 2
            lost_now.append(r_tracked[i])
        dets = [dets[j] for j in u_det]
        cost = _iou_dist(unconf, dets, self.legacy)
        matches, u_unc, u_det = _match(_fuse(cost, dets) if self.fuse else cost, 0.7)
        for i, j in matches:
            self._take(unconf[i], dets[j])
            activated.append(unconf[i])
        for i in u_unc:
            unconf[i].state = 3
            removed_now.append(unconf[i])
        for j in u_det:
            d = dets[j]
            if d.score < self.det_thresh:
                continue
            self.count += 1
            d.tid = self.count
            d.mean, d.cov = _initiate(d.xyah())
            d.state, d.activated = 1, self.frame == 1
            d.frame_id = d.start_frame = self.frame
            activated.append(d)
        for t in self.lost:
            if self.frame - t.frame_id > self.max_time_lost:
                t.state = 3
                removed_now.append(t)
        self.tracked = _joint(_joint([t for t in self.tracked if t.state == 1], activated), refind)
        self.lost = _sub(_sub(self.lost, self.tracked) + lost_now, self.removed)
        self.removed += removed_now
        dist = _iou_dist(self.tracked, self.lost, self.legacy)
        drop_a, drop_b = set(), set()
        for p, q in zip(*np.nonzero(dist < 0.15)):
            tp = self.tracked[p].frame_id - self.tracked[p].start_frame
            tq = self.lost[q].frame_id - self.lost[q].start_frame
            (drop_b.add(q) if tp > tq else drop_a.add(p))
        self.tracked = [t for i, t in enumerate(self.tracked) if i not in drop_a]
        self.lost = [t for i, t in enumerate(self.lost) if i not in drop_b]
        out = [t for t in self.tracked if t.activated]
        alive = {t.tid for t in self.tracked} | {t.tid for t in self.lost}
        now = {t.tid for t in out}
        kinds, ids = [], []
        for t in out:
            if t.tid not in self._started:
                self._started.add(t.tid)
                kinds.append(0)
                ids.append(t.tid)
        for tid in sorted(self._prev_out - now):
            if tid in alive:
                kinds.append(1)
                ids.append(tid)
        for tid in sorted(self._started - alive):
            self._started.discard(tid)
            kinds.append(2)
            ids.append(tid)
        self._prev_out = now
        tl = np.array([t.tlbr for t in out]).reshape(-1, 4)
        tl[:, 2:] -= tl[:, :2]
        return TrackerOutput(np.array([t.tid for t in out], np.int64), tl, np.array([t.score for t in out]),
                             np.array(kinds, np.int8), np.array(ids, np.int64))
