"""Store scenes: who is in the aisle when, what they do, and what the camera's detector reports.

A video plan (name, camera, frames, tracks, labelled frames) becomes a :class:`PoseVideo`: shoppers are
scheduled to enter, make stops and leave; in a test video with shoplifting one of them conceals items
for exactly the planned number of frames (those frames are labelled 1). Each person is an articulated
body (:mod:`body`) driven by a behaviour script (:mod:`behaviours`), projected by the camera and spoiled
by the detector model (:mod:`noise`); tracks get ByteTrack-like, non-contiguous ids and occasional id
switches.

Randomness comes from one generator per video, seeded by (seed, split, video index), so a video does
not depend on which others are generated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.datasets.poselift import PoseVideo, Track
from edge.simulate import behaviours as bh
from edge.simulate.script import Script
from edge.simulate.body import forward_kinematics, head_top, random_shape
from edge.simulate.camera import CAMERAS, Camera
from edge.simulate.noise import NoiseConfig, apply_detector

FPS = 15.0


@dataclass(frozen=True)
class VideoPlan:
    name: str
    camera: int
    n_frames: int            # frames in the pickle
    n_tracks: int            # tracks the tracker reports (people plus id switches)
    label_frames: int = -1   # length of the label array; -1: no labels (train)
    anomaly_frames: int = 0  # frames labelled 1


# --- one person --------------------------------------------------------------------------------

def _stop_pose(cam: Camera, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    lo, hi = cam.aisle_range
    s = rng.uniform(lo + 0.2, hi - 0.2)
    side = rng.choice([-1.0, 1.0])
    lat = side * (0.5 * cam.aisle_width - 0.45)
    pos = cam.floor_point(s, lat)
    nrm = cam.aisle_normal * side
    return pos, float(np.arctan2(nrm[1], nrm[0]))


def _new_script(cam: Camera, rng: np.random.Generator, *, enter: bool) -> Script:
    shape = random_shape(rng)
    carry = str(rng.choice(["none", "basket", "cart", "bag"], p=[0.35, 0.3, 0.2, 0.15]))
    lo, hi = cam.aisle_range
    if enter:
        s = lo - 1.2 if rng.random() < 0.5 else hi + 1.2
        pos = cam.floor_point(s, rng.uniform(-0.3, 0.3))
        yaw = float(np.arctan2(*(cam.aisle_dir * np.sign(-s))[::-1]))
    else:
        pos, yaw = _stop_pose(cam, rng)
    sc = Script(shape, rng, cam, FPS, pos, yaw, carry=carry, side=int(rng.choice([-1, 1], p=[0.35, 0.65])),
                   tempo=float(np.clip(rng.normal(1.0, 0.12), 0.75, 1.3)))
    return sc


def _visit_stop(sc: Script, kind: str | None = None) -> None:
    pos, yaw = _stop_pose(sc.cam, sc.rng)
    sc.walk_to(pos)
    sc.turn_to(yaw)
    kinds = list(bh.NORMAL_STOPS)
    p = np.array([bh.NORMAL_STOPS[k] for k in kinds])
    bh.do_stop(sc, kind or str(sc.rng.choice(kinds, p=p / p.sum())))
    if sc.rng.random() < 0.35:
        bh.do_stop(sc, str(sc.rng.choice(kinds, p=p / p.sum())))


def _leave(sc: Script) -> None:
    lo, hi = sc.cam.aisle_range
    s = lo - 1.5 if sc.rng.random() < 0.5 else hi + 1.5
    sc.walk_to(sc.cam.floor_point(s, sc.rng.uniform(-0.3, 0.3)))


def normal_person(cam: Camera, rng: np.random.Generator, frames: int, *, enter: bool, leave: bool) -> Script:
    sc = _new_script(cam, rng, enter=enter)
    if not enter:
        bh.do_stop(sc, str(rng.choice(["browse", "pick", "stand", "inspect"])))
    budget = frames - (int(4 * FPS) if leave else 0)
    while sc.n < budget:
        _visit_stop(sc)
    if leave:
        _leave(sc)
    return sc


def _warp_parts(sc: Script, first: int, n_target: int) -> None:
    """Resample the parts from ``first`` on to exactly ``n_target`` frames (all labelled 1)."""
    parts = sc.parts[first:]
    pos = np.concatenate([p[0] for p in parts])
    yaw = np.unwrap(np.concatenate([p[1] for p in parts]))
    pose = np.concatenate([p[2] for p in parts])
    src = np.linspace(0, len(yaw) - 1, n_target)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, len(yaw) - 1)
    w = (src - i0)[:, None]

    def lerp(a):
        a2 = a.reshape(len(a), -1)
        return (a2[i0] * (1 - w) + a2[i1] * w).reshape((n_target,) + a.shape[1:])

    del sc.parts[first:]
    sc.parts.append((lerp(pos), lerp(yaw), lerp(pose), np.ones(n_target, np.uint8)))


def shoplifter(cam: Camera, rng: np.random.Generator, frames: int, start: int, length: int) -> Script:
    """A person present for ``frames`` frames who conceals items during ``[start, start + length)``."""
    sc = _new_script(cam, rng, enter=False)
    kinds = list(bh.CONCEALMENTS)
    w = np.array([bh.CONCEALMENTS[k] for k in kinds])
    kind = str(rng.choice(kinds, p=w / w.sum()))
    bh.do_stop(sc, str(rng.choice(["browse", "stand", "pick"])))
    while sc.n < start:
        _visit_stop(sc, str(rng.choice(["browse", "stand", "pick", "inspect"])))
    pos, yaw = _stop_pose(cam, rng)
    sc.walk_to(pos)
    sc.turn_to(yaw)
    bh.glance(sc, int(rng.integers(1, 4)))
    head = sc.n
    first = len(sc.parts)
    if length < 25:
        bh.conceal(sc, kind, sc.side)
    else:
        while sc.n - head < 0.8 * length:
            bh.theft_cycle(sc, kind)
    _warp_parts(sc, first, length)
    bh.glance(sc, int(rng.integers(1, 4)))
    while sc.n - (head + length) < frames - start - length:
        _visit_stop(sc, str(rng.choice(["browse", "stand", "pick"])))
    sc.crop_from = head - start
    return sc


# --- one video ---------------------------------------------------------------------------------

def _stationary(pos: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """Frames of stops (not walking) that a shelf hides the lower body of, one coin per stop."""
    speed = np.r_[0.0, np.linalg.norm(np.diff(pos, axis=0), axis=1)] * FPS
    still = speed < 0.25
    out = np.zeros(len(pos), bool)
    idx = np.flatnonzero(still)
    if len(idx) == 0:
        return out
    for run in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1):
        if len(run) > 8 and rng.random() < p:
            out[run] = True
    return out


def _render(sc: Script, cam: Camera, rng: np.random.Generator, noise: NoiseConfig):
    ctrl, label = sc.controls()
    joints = forward_kinematics(sc.shape, ctrl)
    occluded = _stationary(ctrl.pos, rng, cam.shelf_occlusion)
    crown = head_top(sc.shape, joints)
    uv_top, _ = cam.project(crown)
    kp, box, present = apply_detector(rng, joints, cam, occluded, noise)
    box[:, 1] = np.clip(np.minimum(box[:, 1], uv_top[:, 1] - 0.02 * (box[:, 3] - box[:, 1])), 0, cam.size[1] - 1)
    return kp, box, present, label


def simulate_video(plan: VideoPlan, rng: np.random.Generator, noise: NoiseConfig = NoiseConfig()) -> PoseVideo:
    cam = CAMERAS[plan.camera]
    n = plan.n_frames
    n_lab = plan.label_frames if plan.label_frames >= 0 else n
    people: list[tuple[int, Script]] = []  # (first frame in the video, script)
    n_people = max(1, plan.n_tracks - int(rng.binomial(max(plan.n_tracks - 1, 0), 0.12)))
    labels = np.zeros(n_lab, np.uint8)
    if plan.anomaly_frames > 0:
        a = min(plan.anomaly_frames, n_lab)
        hi = max(0, min(n, n_lab) - a)
        start = int(rng.integers(0, hi + 1))
        sc = shoplifter(cam, rng, n, start, a)
        people.append((-sc.crop_from, sc))
        labels[start: start + a] = 1
        n_people -= 1
    occupancy = 1.25 if n > 300 else 1.0
    for _ in range(max(n_people, 0)):
        mean_dwell = n * occupancy / max(plan.n_tracks, 1)
        dwell = int(np.clip(mean_dwell * rng.lognormal(0, 0.5), min(n, 30), max(n, 30)))
        if n <= 300 and plan.label_frames >= 0:
            # a short test clip is cut around an event: most others are already there, shopping
            if rng.random() < 0.6:
                t0, enter, leave = 0, False, False
            else:
                t0, enter, leave = int(rng.integers(0, max(n // 2, 1))), True, False
            sc = normal_person(cam, rng, n - t0, enter=enter, leave=leave)
        else:
            t0 = int(rng.integers(-dwell // 3, max(n - dwell // 2, 1)))
            enter = t0 > 0 or rng.random() < 0.3
            sc = normal_person(cam, rng, dwell, enter=enter, leave=True)
        people.append((t0, sc))

    tracks: dict[int, Track] = {}
    next_id = int(rng.integers(1, 8))
    for t0, sc in sorted(people, key=lambda x: x[0]):
        kp, box, present, _ = _render(sc, cam, rng, noise)
        frames = t0 + np.arange(len(kp))
        keep = present & (frames >= 0) & (frames < n)
        idx = np.flatnonzero(keep)
        if len(idx) == 0:
            continue
        # occasional id switch: the tracker loses the person and starts a new id
        cuts = [0, len(idx)]
        if len(idx) > 40 and rng.random() < 1 - np.exp(-len(idx) / (FPS * 120)):
            cuts.insert(1, int(rng.integers(20, len(idx) - 20)))
        for a, b in zip(cuts[:-1], cuts[1:]):
            sel = idx[a:b]
            tracks[next_id] = Track(frames=frames[sel].astype(np.int64), keypoints=kp[sel], boxes=box[sel])
            next_id += int(rng.integers(1, 12))
    # the clip is as long as its labels (as the reader makes it); the pickle keeps plan.n_frames frames
    return PoseVideo(name=plan.name, camera=plan.camera, n_frames=n_lab, fps=FPS, frame_size=cam.size,
                     tracks=tracks, labels=labels if plan.label_frames >= 0 else None, source="simulated")
