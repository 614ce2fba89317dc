"""A 3D articulated body with the COCO-17 joints, driven by per-frame controls.

The controls say where the body is and what it does (pelvis position and height on the floor, heading,
torso bend, head turn, and where each wrist and ankle should be); :func:`forward_kinematics` turns them
into joint positions, solving elbows and knees with two-bone inverse kinematics, vectorised over frames.
Lengths are fractions of the person's height with per-person variation, so adults differ in build.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# fractions of body height (adult averages); each person scales them by ~N(1, 0.04)
_FRACTIONS = dict(hip_height=0.53, thigh=0.245, shin=0.245, ankle=0.04, hip_width=0.095, spine=0.29,
                  shoulder_width=0.215, neck=0.10, upper_arm=0.17, forearm=0.155)


@dataclass(frozen=True)
class BodyShape:
    height: float
    hip_height: float
    thigh: float
    shin: float
    ankle: float
    hip_width: float
    spine: float
    shoulder_width: float
    neck: float
    upper_arm: float
    forearm: float

    @property
    def shoulder_height(self) -> float:
        return self.hip_height + self.spine

    @property
    def rest_hand_z(self) -> float:
        return self.shoulder_height - 0.94 * (self.upper_arm + self.forearm)


def random_shape(rng: np.random.Generator) -> BodyShape:
    height = float(np.clip(rng.normal(1.72, 0.09), 1.50, 1.98))
    broad = rng.normal(1.0, 0.05)  # build varies shoulders and hips together
    f = {k: v * float(rng.normal(1.0, 0.035)) for k, v in _FRACTIONS.items()}
    f["shoulder_width"] *= broad
    f["hip_width"] *= 2.0 - broad * 0.9 - 0.1
    f["hip_height"] = f["thigh"] + f["shin"] + f["ankle"] - 0.005
    return BodyShape(height=height, **{k: v * height for k, v in f.items()})


@dataclass
class Controls:
    """Per-frame controls (T frames). Hand and foot targets are in the body frame
    (forward, left, height above the floor), relative to the pelvis' floor point."""

    pos: np.ndarray         # (T, 2) pelvis floor position, metres
    yaw: np.ndarray         # (T,) heading, radians
    pelvis_z: np.ndarray    # (T,) pelvis height above the floor
    pitch: np.ndarray       # (T,) torso forward bend
    head_yaw: np.ndarray    # (T,) head turn relative to the torso
    head_pitch: np.ndarray  # (T,) head nod (down > 0)
    hands: np.ndarray       # (T, 2, 3) wrist targets, [left, right]
    feet: np.ndarray        # (T, 2, 3) ankle targets, [left, right]

    @classmethod
    def concat(cls, parts: list[Controls]) -> Controls:
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in cls.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.yaw)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-9)


def _two_bone(root: np.ndarray, target: np.ndarray, a: float, b: float, pole: np.ndarray):
    """Middle and end joints of a two-bone chain from ``root`` towards ``target``, bending towards ``pole``."""
    d_vec = target - root
    d = np.linalg.norm(d_vec, axis=-1, keepdims=True)
    dirn = d_vec / np.maximum(d, 1e-9)
    d = np.clip(d, abs(a - b) + 1e-3, (a + b) * 0.999)
    cos_a = (a * a + d * d - b * b) / (2 * a * d)
    sin_a = np.sqrt(np.clip(1 - cos_a * cos_a, 0, 1))
    perp = pole - np.sum(pole * dirn, axis=-1, keepdims=True) * dirn
    perp = _unit(perp)
    mid = root + a * (cos_a * dirn + sin_a * perp)
    return mid, root + d * dirn


def forward_kinematics(shape: BodyShape, c: Controls) -> np.ndarray:
    """World joint positions ``(T, 17, 3)`` in COCO-17 order (metres, z up)."""
    T = len(c)
    up = np.broadcast_to(np.array([0.0, 0.0, 1.0]), (T, 3))
    cy, sy = np.cos(c.yaw), np.sin(c.yaw)
    fwd = np.stack([cy, sy, np.zeros(T)], 1)
    left = np.stack([-sy, cy, np.zeros(T)], 1)
    ground = np.concatenate([c.pos, np.zeros((T, 1))], 1)
    pelvis = ground + c.pelvis_z[:, None] * up

    def body(p):  # (T, 3) body-frame point -> world
        return ground + p[:, :1] * fwd + p[:, 1:2] * left + p[:, 2:3] * up

    spine_dir = np.cos(c.pitch)[:, None] * up + np.sin(c.pitch)[:, None] * fwd
    chest = pelvis + shape.spine * spine_dir
    sh_l = chest + 0.5 * shape.shoulder_width * left
    sh_r = chest - 0.5 * shape.shoulder_width * left
    head_pitch_abs = 0.55 * c.pitch + c.head_pitch
    neck_dir = np.cos(0.55 * c.pitch)[:, None] * up + np.sin(0.55 * c.pitch)[:, None] * fwd
    head = chest + shape.neck * neck_dir
    hy = c.yaw + c.head_yaw
    cp, sp = np.cos(head_pitch_abs), np.sin(head_pitch_abs)
    hf = np.stack([np.cos(hy) * cp, np.sin(hy) * cp, -sp], 1)
    hl = np.stack([-np.sin(hy), np.cos(hy), np.zeros(T)], 1)
    hu = np.cross(hf, hl)
    H = shape.height
    nose = head + 0.058 * H * hf - 0.012 * H * hu
    eye_l = head + 0.047 * H * hf + 0.008 * H * hu + 0.019 * H * hl
    eye_r = head + 0.047 * H * hf + 0.008 * H * hu - 0.019 * H * hl
    ear_l = head - 0.004 * H * hf + 0.043 * H * hl
    ear_r = head - 0.004 * H * hf - 0.043 * H * hl

    hip_l = pelvis + 0.5 * shape.hip_width * left
    hip_r = pelvis - 0.5 * shape.hip_width * left
    arm_pole_l = 0.6 * left - 0.8 * up - 0.25 * fwd
    arm_pole_r = -0.6 * left - 0.8 * up - 0.25 * fwd
    elb_l, wr_l = _two_bone(sh_l, body(c.hands[:, 0]), shape.upper_arm, shape.forearm, arm_pole_l)
    elb_r, wr_r = _two_bone(sh_r, body(c.hands[:, 1]), shape.upper_arm, shape.forearm, arm_pole_r)
    knee_pole_l = fwd + 0.15 * left
    knee_pole_r = fwd - 0.15 * left
    kn_l, an_l = _two_bone(hip_l, body(c.feet[:, 0]), shape.thigh, shape.shin, knee_pole_l)
    kn_r, an_r = _two_bone(hip_r, body(c.feet[:, 1]), shape.thigh, shape.shin, knee_pole_r)
    return np.stack([nose, eye_l, eye_r, ear_l, ear_r, sh_l, sh_r, elb_l, elb_r, wr_l, wr_r,
                     hip_l, hip_r, kn_l, kn_r, an_l, an_r], axis=1)


def head_top(shape: BodyShape, joints: np.ndarray) -> np.ndarray:
    """Approximate crown of the head (for boxes): above the ears' midpoint."""
    ears = 0.5 * (joints[:, 3] + joints[:, 4])
    return ears + np.array([0.0, 0.0, 0.075 * shape.height])
