"""One person's timeline of body controls: the primitives behaviours are made of.

A :class:`Script` appends segments (easing between key poses, holding, turning, stepping, walking with
a gait) and finally turns them into per-frame :class:`~edge.simulate.body.Controls` with smoothing and
the small involuntary motions people make. Every frame carries a label (1 while an item is being
concealed). The control vector's layout is named by the constants below.
"""

from __future__ import annotations

import numpy as np

from edge.simulate.body import BodyShape, Controls
from edge.simulate.camera import Camera

# control vector: hands (L, R) x (fwd, left, z), feet (L, R) x (fwd, left, z), pitch, pelvis_z, head_yaw,
# head_pitch, yaw_off (body turn relative to the heading of the segment)
HAND_L, HAND_R, FOOT_L, FOOT_R = slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 12)
PITCH, PELVIS_Z, HEAD_YAW, HEAD_PITCH, YAW_OFF = 12, 13, 14, 15, 16
N_CONTROLS = 17


def _ease(n: int) -> np.ndarray:
    u = (np.arange(1, n + 1) / n) if n > 0 else np.zeros(0)
    return u * u * (3 - 2 * u)


def _smooth_noise(rng: np.random.Generator, n: int, sigma_frames: float, scale: float, dims: int = 1) -> np.ndarray:
    """Low-frequency noise with unit-ish std times ``scale``."""
    if n == 0:
        return np.zeros((0, dims))
    k = max(1, int(3 * sigma_frames))
    x = np.arange(-k, k + 1)
    w = np.exp(-0.5 * (x / sigma_frames) ** 2)
    w /= np.sqrt((w * w).sum())
    white = rng.standard_normal((n + 2 * k, dims))
    out = np.stack([np.convolve(white[:, d], w, mode="valid") for d in range(dims)], 1)
    return out[:n] * scale


def _gauss_smooth(a: np.ndarray, sigma: float) -> np.ndarray:
    if len(a) < 3 or sigma <= 0:
        return a
    k = max(1, int(3 * sigma))
    x = np.arange(-k, k + 1)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    w /= w.sum()
    pad = np.concatenate([np.repeat(a[:1], k, 0), a, np.repeat(a[-1:], k, 0)])
    flat = pad.reshape(len(pad), -1)
    out = np.stack([np.convolve(flat[:, d], w, mode="valid") for d in range(flat.shape[1])], 1)
    return out.reshape(a.shape)


class Script:
    """One person's timeline of body controls and per-frame labels."""

    def __init__(self, shape: BodyShape, rng: np.random.Generator, camera: Camera, fps: float,
                 pos, yaw: float, carry: str = "none", side: int = -1, tempo: float = 1.0):
        self.shape, self.rng, self.cam, self.fps = shape, rng, camera, fps
        self.pos = np.asarray(pos, np.float64)
        self.yaw = float(yaw)
        self.carry = carry          # none | basket | cart | bag
        self.side = side            # item hand: +1 left, -1 right
        self.tempo = tempo          # >1: quicker movements
        self.nervous = 1.0          # strength of the fidgeting while concealing
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.pose = self.rest_pose()

    # --- key poses (body frame) -----------------------------------------------------------------
    def rest_pose(self) -> np.ndarray:
        s = self.shape
        p = np.zeros(N_CONTROLS)
        hx = 0.5 * s.shoulder_width + 0.05
        p[HAND_L] = (0.03, hx, s.rest_hand_z + 0.03)
        p[HAND_R] = (0.03, -hx, s.rest_hand_z + 0.03)
        fx = 0.5 * s.hip_width + 0.03
        p[FOOT_L] = (0.0, fx, s.ankle)
        p[FOOT_R] = (0.0, -fx, s.ankle)
        p[PELVIS_Z] = s.hip_height - 0.01
        if self.carry == "basket":  # the other hand holds the basket's handle
            p[self.hand_slice(-self.side)] = (0.10, -self.side * (hx + 0.04), s.rest_hand_z + 0.10)
        return p

    def hand_slice(self, side: int) -> slice:
        return HAND_L if side > 0 else HAND_R

    def hold_point(self, side: int) -> tuple[float, float, float]:
        H = self.shape.height
        return (0.30, side * 0.08, 0.62 * H)

    @property
    def n(self) -> int:
        return sum(len(p[1]) for p in self.parts)

    def frames(self, seconds: float) -> int:
        return max(2, int(round(seconds * self.fps / self.tempo)))

    # --- primitives -----------------------------------------------------------------------------
    def _append(self, pos, yaw, pose, label):
        self.parts.append((pos, yaw, pose, label))
        self.pos, self.yaw, self.pose = pos[-1].copy(), float(yaw[-1]), pose[-1].copy()

    def move(self, seconds: float, label: int = 0, **targets) -> None:
        """Ease from the current pose to the current pose with ``targets`` changed."""
        n = self.frames(seconds * self.rng.uniform(0.85, 1.15))
        goal = self.pose.copy()
        for key, val in targets.items():
            goal[CONTROL_KEYS[key]] = val
        u = _ease(n)[:, None]
        pose = self.pose + u * (goal - self.pose)
        self._append(np.repeat(self.pos[None], n, 0), np.full(n, self.yaw), pose, np.full(n, label, np.uint8))

    def hold(self, seconds: float, label: int = 0) -> None:
        n = self.frames(seconds * self.rng.uniform(0.8, 1.2))
        self._append(np.repeat(self.pos[None], n, 0), np.full(n, self.yaw), np.repeat(self.pose[None], n, 0),
                     np.full(n, label, np.uint8))

    def turn_to(self, yaw: float, label: int = 0) -> None:
        d = (yaw - self.yaw + np.pi) % (2 * np.pi) - np.pi
        if abs(d) < 0.05:
            return
        n = self.frames(0.35 + 0.35 * abs(d))
        u = _ease(n)
        yaws = self.yaw + d * u
        pose = np.repeat(self.pose[None], n, 0)
        # shuffle the feet while turning
        lift = 0.04 * np.abs(np.sin(np.pi * 2 * u))
        pose[:, FOOT_L.start + 2] += lift * (np.sin(np.pi * 4 * u) > 0)
        pose[:, FOOT_R.start + 2] += lift * (np.sin(np.pi * 4 * u) <= 0)
        self._append(np.repeat(self.pos[None], n, 0), yaws, pose, np.full(n, label, np.uint8))

    def step(self, seconds: float, fwd: float, left: float, label: int = 0) -> None:
        """A small step (shifting the weight, sidestepping) without turning."""
        n = self.frames(seconds)
        u = _ease(n)
        c, s_ = np.cos(self.yaw), np.sin(self.yaw)
        delta = np.array([c * fwd - s_ * left, s_ * fwd + c * left])
        pos = self.pos + u[:, None] * delta
        pose = np.repeat(self.pose[None], n, 0)
        lift = 0.06 * np.sin(np.pi * u)
        lead = FOOT_L if left > 0 or (left == 0 and fwd > 0) else FOOT_R
        pose[:, lead.start + 2] += lift
        pose[:, PELVIS_Z] -= 0.02 * np.sin(np.pi * u)
        self._append(pos, np.full(n, self.yaw), pose, np.full(n, label, np.uint8))

    def walk_to(self, target, speed: float | None = None, label: int = 0) -> None:
        target = np.asarray(target, np.float64)
        delta = target - self.pos
        dist = float(np.hypot(*delta))
        if dist < 0.15:
            return
        self.turn_to(float(np.arctan2(delta[1], delta[0])), label)
        self.move(0.25, label, hand_l=self.rest_pose()[HAND_L], hand_r=self.rest_pose()[HAND_R],
                  pitch=0.05, head_pitch=0.05, yaw_off=0.0)
        v = speed or float(np.clip(self.rng.normal(1.1, 0.18), 0.6, 1.6))
        n = max(3, int(round(dist / v * self.fps)))
        t = np.arange(1, n + 1) / n
        prog = t + (np.sin(2 * np.pi * t) * -0.5 / (2 * np.pi)) * 0.3  # soft start and stop
        pos = self.pos + prog[:, None] * delta
        cadence = 1.75 * np.sqrt(v / 1.1)  # steps per second
        step = v / cadence
        phase = self.rng.uniform(0, 2 * np.pi) + np.pi * cadence * np.arange(n) / self.fps
        s, c = np.sin(phase), np.cos(phase)
        base = self.rest_pose()
        pose = np.repeat(base[None], n, 0)
        pose[:, FOOT_L.start] = 0.5 * step * s
        pose[:, FOOT_R.start] = -0.5 * step * s
        pose[:, FOOT_L.start + 2] += 0.08 * np.clip(c, 0, None)
        pose[:, FOOT_R.start + 2] += 0.08 * np.clip(-c, 0, None)
        pose[:, PELVIS_Z] -= 0.025 * (0.5 - 0.5 * np.cos(2 * phase))
        pose[:, PITCH] = 0.06
        swing = 0.45 * step
        if self.carry == "cart":
            H = self.shape.height
            pose[:, HAND_L] = (0.45, 0.22, 0.58 * H)
            pose[:, HAND_R] = (0.45, -0.22, 0.58 * H)
            pose[:, PITCH] = 0.15
        else:
            pose[:, HAND_L.start] += -swing * s
            pose[:, HAND_R.start] += swing * s
            pose[:, HAND_L.start + 2] += 0.05 * np.abs(s)
            pose[:, HAND_R.start + 2] += 0.05 * np.abs(s)
            if self.carry == "basket":
                pose[:, self.hand_slice(-self.side)] = base[self.hand_slice(-self.side)]
        pose[:, HEAD_YAW] = 0.5 * _smooth_noise(self.rng, n, 12, 1.0)[:, 0]
        yaws = np.full(n, np.arctan2(delta[1], delta[0]))
        self._append(pos, yaws, pose, np.full(n, label, np.uint8))
        self.move(0.3, label, foot_l=base[FOOT_L], foot_r=base[FOOT_R], pelvis_z=base[PELVIS_Z], pitch=0.02)

    # --- output ---------------------------------------------------------------------------------
    def controls(self) -> tuple[Controls, np.ndarray]:
        pos = np.concatenate([p[0] for p in self.parts])
        yaw = np.unwrap(np.concatenate([p[1] for p in self.parts]))
        pose = np.concatenate([p[2] for p in self.parts])
        label = np.concatenate([p[3] for p in self.parts])
        n = len(yaw)
        pose = _gauss_smooth(pose, 1.3)
        yaw = _gauss_smooth(yaw, 1.5)
        rng = self.rng
        pose[:, :6] += _smooth_noise(rng, n, 6, 0.012, 6)
        pose[:, HEAD_YAW] += _smooth_noise(rng, n, 10, 0.12)[:, 0]
        pose[:, HEAD_PITCH] += _smooth_noise(rng, n, 10, 0.05)[:, 0]
        pose[:, PITCH] += _smooth_noise(rng, n, 15, 0.02)[:, 0]
        pos = pos + _smooth_noise(rng, n, 20, 0.012, 2)
        hide = label.astype(bool)
        if hide.any():  # while hiding something: darting looks, fumbling hands, a tense upper body
            k = int(hide.sum())
            pose[hide, HEAD_YAW] += _smooth_noise(rng, k, 3, self.nervous * 0.45)[:, 0]
            pose[hide, HEAD_PITCH] += _smooth_noise(rng, k, 3, self.nervous * 0.15)[:, 0]
            pose[hide, :6] += _smooth_noise(rng, k, 2.5, self.nervous * 0.035, 6)
            pose[hide, YAW_OFF] += _smooth_noise(rng, k, 5, self.nervous * 0.2)[:, 0]
        c = Controls(pos=pos, yaw=yaw + pose[:, YAW_OFF], pelvis_z=pose[:, PELVIS_Z], pitch=pose[:, PITCH],
                     head_yaw=pose[:, HEAD_YAW], head_pitch=pose[:, HEAD_PITCH],
                     hands=pose[:, :6].reshape(n, 2, 3).copy(), feet=pose[:, 6:12].reshape(n, 2, 3).copy())
        return c, label


CONTROL_KEYS = {"hand_l": HAND_L, "hand_r": HAND_R, "foot_l": FOOT_L, "foot_r": FOOT_R, "pitch": PITCH,
                "pelvis_z": PELVIS_Z, "head_yaw": HEAD_YAW, "head_pitch": HEAD_PITCH, "yaw_off": YAW_OFF}


def hand_key(side: int) -> str:
    return "hand_l" if side > 0 else "hand_r"
