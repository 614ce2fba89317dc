"""One ByteTrack step over preallocated state arrays (Numba).

Tracks live in slots of fixed-size arrays; the tracker's ordered lists (tracked, lost) are arrays of
slot numbers. The order of those lists, the order of the detections and the solver's tie-breaking
decide which track wins an even match and which id a new track gets, so every list here is built in
the same order as in the original implementation, including two of its quirks that change results:
a lost track that times out stays in the lost list (and can still be matched) for one more frame,
and a track that was ever removed and later lost again leaves the lost list at once.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edge.tracking.kalman import initiate, predict, update
from edge.tracking.lapjv import assign_limited

TRACKED = 1
LOST = 2
REMOVED = 3

EV_STARTED = 0
EV_LOST = 1
EV_REMOVED = 2

_MAX_COORD = 1e6   # pixels
_MIN_SIDE = 1e-3   # pixels

# meta slots
M_FRAME, M_NEXT_ID, M_NT, M_NL, M_NFREE = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True)
def _track_tlbr(mean, slots, n, out):
    for k in range(n):
        s = slots[k]
        h = mean[s, 3]
        w = mean[s, 2] * h
        x = mean[s, 0] - w / 2.0
        y = mean[s, 1] - h / 2.0
        out[k, 0] = x
        out[k, 1] = y
        out[k, 2] = x + w
        out[k, 3] = y + h


@njit(cache=True, nogil=True)
def _iou_cost(a, na, b, nb, legacy):
    """1 - IoU for boxes x1y1x2y2; legacy counts both end pixels (+1 on every side length)."""
    one = 1.0 if legacy else 0.0
    cost = np.empty((na, nb))
    for j in range(nb):
        b_area = (b[j, 2] - b[j, 0] + one) * (b[j, 3] - b[j, 1] + one)
        for i in range(na):
            ov = 0.0
            iw = min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0]) + one
            if iw > 0:
                ih = min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1]) + one
                if ih > 0:
                    ua = (a[i, 2] - a[i, 0] + one) * (a[i, 3] - a[i, 1] + one) + b_area - iw * ih
                    ov = iw * ih / ua
            # A non-finite overlap (only from a diverged filter) must not reach the solver.
            cost[i, j] = 1.0 - ov if np.isfinite(ov) else 1.0
    return cost


@njit(cache=True, nogil=True)
def _fuse(cost, scores, idx):
    for i in range(cost.shape[0]):
        for j in range(cost.shape[1]):
            cost[i, j] = 1.0 - (1.0 - cost[i, j]) * scores[idx[j]]


@njit(cache=True, nogil=True)
def _measure(det, d, out4):
    w = det[d, 2]
    h = det[d, 3]
    out4[0] = det[d, 0] + w / 2.0
    out4[1] = det[d, 1] + h / 2.0
    out4[2] = w / h
    out4[3] = h


@njit(cache=True, nogil=True)
def _take(mean, cov, score, frame_id, state, activated, tracklet, s, det, dscore, d, frame, refind, z):
    _measure(det, d, z)
    update(mean[s], cov[s], z[0], z[1], z[2], z[3])
    tracklet[s] = 0 if refind else tracklet[s] + 1
    frame_id[s] = frame
    state[s] = TRACKED
    activated[s] = True
    score[s] = dscore[d]


@njit(cache=True, nogil=True)
def step(boxes, scores, p_track, p_match, p_det, max_lost, fuse, legacy,
         meta, mean, cov, tid, state, activated, tracklet, score, frame_id, start_frame,
         ever_removed, started, was_out, alive, tl, ll, free,
         out_id, out_slot, out_tlwh, out_score, ev_kind, ev_id, ev_slot):
    """Advance one frame with detections ``boxes`` (N, 4) x1y1x2y2 and ``scores`` (N,).

    Returns (tracks written to out_*, events written to ev_*, detections dropped as invalid).
    """
    frame = meta[M_FRAME] + 1
    meta[M_FRAME] = frame
    nt = meta[M_NT]
    nl = meta[M_NL]
    cap = mean.shape[0]
    z = np.empty(4)

    # Detections: drop what no detector should produce; keep tlwh as the original stores it.
    n_in = boxes.shape[0]
    det = np.empty((n_in, 4))
    dtlbr = np.empty((n_in, 4))
    dsc = np.empty(n_in)
    n_det = 0
    dropped = 0
    for k in range(n_in):
        x1 = boxes[k, 0]
        y1 = boxes[k, 1]
        x2 = boxes[k, 2]
        y2 = boxes[k, 3]
        sc = scores[k]
        ok = np.isfinite(x1) and np.isfinite(y1) and np.isfinite(x2) and np.isfinite(y2) and np.isfinite(sc)
        # Bounds far outside any camera keep the filter's squares and divisions finite.
        ok = ok and abs(x1) < _MAX_COORD and abs(y1) < _MAX_COORD and abs(x2) < _MAX_COORD \
            and abs(y2) < _MAX_COORD
        if not ok or not (x2 - x1 >= _MIN_SIDE and y2 - y1 >= _MIN_SIDE) or sc < 0.0 or sc > 1.0:
            dropped += 1
            continue
        w = x2 - x1
        h = y2 - y1
        det[n_det, 0] = x1
        det[n_det, 1] = y1
        det[n_det, 2] = w
        det[n_det, 3] = h
        dtlbr[n_det, 0] = x1
        dtlbr[n_det, 1] = y1
        dtlbr[n_det, 2] = x1 + w
        dtlbr[n_det, 3] = y1 + h
        dsc[n_det] = sc
        n_det += 1
    high = np.empty(n_det, dtype=np.int64)
    low = np.empty(n_det, dtype=np.int64)
    nh = 0
    nlow = 0
    for k in range(n_det):
        if dsc[k] > p_track:
            high[nh] = k
            nh += 1
        elif dsc[k] > 0.1 and dsc[k] < p_track:
            low[nlow] = k
            nlow += 1

    # Split the tracked list into confirmed and unconfirmed; the pool is confirmed + lost.
    unconf = np.empty(nt, dtype=np.int64)
    pool = np.empty(nt + nl, dtype=np.int64)
    nu = 0
    npool = 0
    for k in range(nt):
        s = tl[k]
        if activated[s]:
            pool[npool] = s
            npool += 1
        else:
            unconf[nu] = s
            nu += 1
    for k in range(nl):
        pool[npool] = ll[k]
        npool += 1
    for k in range(npool):
        s = pool[k]
        if state[s] != TRACKED:
            mean[s, 7] = 0.0
        predict(mean[s], cov[s])

    act_new = np.empty(nh, dtype=np.int64)   # new tracks, in creation order
    created = np.zeros(cap, dtype=np.bool_)
    refind = np.empty(npool, dtype=np.int64)
    lost_new = np.empty(npool, dtype=np.int64)
    removed_now = np.empty(nu + nl, dtype=np.int64)
    n_new = 0
    n_ref = 0
    n_lostnew = 0
    n_rem = 0

    # First association: pool vs high detections, score-fused IoU cost.
    htlbr = np.empty((nh, 4))
    for k in range(nh):
        htlbr[k] = dtlbr[high[k]]
    ptlbr = np.empty((npool, 4))
    _track_tlbr(mean, pool, npool, ptlbr)
    c1 = _iou_cost(ptlbr, npool, htlbr, nh, legacy)
    if fuse:
        _fuse(c1, dsc, high)
    x1m = np.empty(npool, dtype=np.int64)
    y1m = np.empty(nh, dtype=np.int64)
    assign_limited(c1, p_match, x1m, y1m)
    for k in range(npool):
        if x1m[k] >= 0:
            s = pool[k]
            was_tracked = state[s] == TRACKED
            _take(mean, cov, score, frame_id, state, activated, tracklet, s, det, dsc, high[x1m[k]], frame,
                  not was_tracked, z)
            if not was_tracked:
                refind[n_ref] = s
                n_ref += 1

    # Second association: still-unmatched tracked tracks vs low detections, plain IoU cost.
    rt = np.empty(npool, dtype=np.int64)
    nr = 0
    for k in range(npool):
        if x1m[k] < 0 and state[pool[k]] == TRACKED:
            rt[nr] = pool[k]
            nr += 1
    ltlbr = np.empty((nlow, 4))
    for k in range(nlow):
        ltlbr[k] = dtlbr[low[k]]
    rtlbr = np.empty((nr, 4))
    _track_tlbr(mean, rt, nr, rtlbr)
    c2 = _iou_cost(rtlbr, nr, ltlbr, nlow, legacy)
    x2m = np.empty(nr, dtype=np.int64)
    y2m = np.empty(nlow, dtype=np.int64)
    assign_limited(c2, 0.5, x2m, y2m)
    for k in range(nr):
        s = rt[k]
        if x2m[k] >= 0:
            _take(mean, cov, score, frame_id, state, activated, tracklet, s, det, dsc, low[x2m[k]], frame,
                  False, z)
        else:
            state[s] = LOST
            lost_new[n_lostnew] = s
            n_lostnew += 1

    # Unconfirmed tracks (not predicted) vs the high detections left over.
    rem = np.empty(nh, dtype=np.int64)
    nrem = 0
    for k in range(nh):
        if y1m[k] < 0:
            rem[nrem] = high[k]
            nrem += 1
    remtlbr = np.empty((nrem, 4))
    for k in range(nrem):
        remtlbr[k] = dtlbr[rem[k]]
    utlbr = np.empty((nu, 4))
    _track_tlbr(mean, unconf, nu, utlbr)
    c3 = _iou_cost(utlbr, nu, remtlbr, nrem, legacy)
    if fuse:
        _fuse(c3, dsc, rem)
    x3m = np.empty(nu, dtype=np.int64)
    y3m = np.empty(nrem, dtype=np.int64)
    assign_limited(c3, 0.7, x3m, y3m)
    for k in range(nu):
        s = unconf[k]
        if x3m[k] >= 0:
            _take(mean, cov, score, frame_id, state, activated, tracklet, s, det, dsc, rem[x3m[k]], frame,
                  False, z)
        else:
            state[s] = REMOVED
            removed_now[n_rem] = s
            n_rem += 1

    # New tracks from confident leftovers; only the very first frame confirms them at once.
    for k in range(nrem):
        if y3m[k] >= 0:
            continue
        d = rem[k]
        if dsc[d] < p_det:
            continue
        nf = meta[M_NFREE] - 1
        meta[M_NFREE] = nf
        s = free[nf]
        meta[M_NEXT_ID] += 1
        tid[s] = meta[M_NEXT_ID]
        _measure(det, d, z)
        initiate(mean[s], cov[s], z[0], z[1], z[2], z[3])
        tracklet[s] = 0
        state[s] = TRACKED
        activated[s] = frame == 1
        frame_id[s] = frame
        start_frame[s] = frame
        score[s] = dsc[d]
        ever_removed[s] = False
        started[s] = False
        was_out[s] = False
        act_new[n_new] = s
        created[s] = True
        n_new += 1

    # Lost tracks past the buffer are marked removed (but stay listed until the next frame).
    for k in range(nl):
        s = ll[k]
        if frame - frame_id[s] > max_lost:
            state[s] = REMOVED
            removed_now[n_rem] = s
            n_rem += 1

    # New lists: tracked = still tracked + new + re-found; lost = old lost - re-found + newly lost,
    # minus whatever was removed in an earlier frame.
    tnew = np.empty(nt + n_new + n_ref, dtype=np.int64)
    ntn = 0
    for k in range(nt):
        s = tl[k]
        if state[s] == TRACKED:
            tnew[ntn] = s
            ntn += 1
    for k in range(n_new):
        tnew[ntn] = act_new[k]
        ntn += 1
    for k in range(n_ref):
        tnew[ntn] = refind[k]
        ntn += 1
    lnew = np.empty(nl + n_lostnew, dtype=np.int64)
    nln = 0
    for k in range(nl):
        s = ll[k]
        if state[s] != TRACKED and not ever_removed[s]:
            lnew[nln] = s
            nln += 1
    for k in range(n_lostnew):
        s = lost_new[k]
        if not ever_removed[s]:
            lnew[nln] = s
            nln += 1
    for k in range(n_rem):
        ever_removed[removed_now[k]] = True

    # Duplicates between tracked and lost: the younger of each overlapping pair goes.
    ttlbr = np.empty((ntn, 4))
    _track_tlbr(mean, tnew, ntn, ttlbr)
    ltl = np.empty((nln, 4))
    _track_tlbr(mean, lnew, nln, ltl)
    cd = _iou_cost(ttlbr, ntn, ltl, nln, legacy)
    drop_t = np.zeros(ntn, dtype=np.bool_)
    drop_l = np.zeros(nln, dtype=np.bool_)
    for p in range(ntn):
        for q in range(nln):
            if cd[p, q] < 0.15:
                tp = frame_id[tnew[p]] - start_frame[tnew[p]]
                tq = frame_id[lnew[q]] - start_frame[lnew[q]]
                if tp > tq:
                    drop_l[q] = True
                else:
                    drop_t[p] = True

    # Commit the lists and work out membership changes for the lifecycle events.
    alive_now = np.zeros(cap, dtype=np.bool_)
    nt2 = 0
    for p in range(ntn):
        if not drop_t[p]:
            tl[nt2] = tnew[p]
            alive_now[tnew[p]] = True
            nt2 += 1
    nl2 = 0
    for q in range(nln):
        if not drop_l[q]:
            ll[nl2] = lnew[q]
            alive_now[lnew[q]] = True
            nl2 += 1
    meta[M_NT] = nt2
    meta[M_NL] = nl2

    n_out = 0
    n_ev = 0
    out_now = np.zeros(cap, dtype=np.bool_)
    for k in range(nt2):
        s = tl[k]
        if not activated[s]:
            continue
        out_now[s] = True
        h = mean[s, 3]
        w = mean[s, 2] * h
        out_id[n_out] = tid[s]
        out_slot[n_out] = s
        out_tlwh[n_out, 0] = mean[s, 0] - w / 2.0
        out_tlwh[n_out, 1] = mean[s, 1] - h / 2.0
        out_tlwh[n_out, 2] = w
        out_tlwh[n_out, 3] = h
        out_score[n_out] = score[s]
        n_out += 1
        if not started[s]:
            started[s] = True
            ev_kind[n_ev] = EV_STARTED
            ev_id[n_ev] = tid[s]
            ev_slot[n_ev] = s
            n_ev += 1
    for s in range(cap):
        if alive[s] or alive_now[s]:
            if alive_now[s]:
                if was_out[s] and not out_now[s]:
                    ev_kind[n_ev] = EV_LOST
                    ev_id[n_ev] = tid[s]
                    ev_slot[n_ev] = s
                    n_ev += 1
            elif started[s]:
                ev_kind[n_ev] = EV_REMOVED
                ev_id[n_ev] = tid[s]
                ev_slot[n_ev] = s
                n_ev += 1
        # Slots that left both lists are free again, including new tracks dropped as duplicates.
        if (alive[s] or created[s]) and not alive_now[s]:
            free[meta[M_NFREE]] = s
            meta[M_NFREE] += 1
            tid[s] = 0
            state[s] = 0
            started[s] = False
        was_out[s] = out_now[s]
        alive[s] = alive_now[s]
    return n_out, n_ev, dropped
