"""What people do in the aisle: normal shopping and shoplifting, as key-framed body controls.

A :class:`Script` holds one person's timeline. Stationary actions move the body between key poses with
eased transitions; walking generates a gait. Every frame carries a label (1 while an item is being
concealed). ``normal_visit`` and ``shoplifting`` compose the actions into plausible sequences.
"""

from __future__ import annotations

import numpy as np

from edge.simulate.body import BodyShape, Controls
from edge.simulate.camera import Camera

# pose vector: hands (L, R) x (fwd, left, z), feet (L, R) x (fwd, left, z), pitch, pelvis_z, head_yaw,
# head_pitch, yaw_off (body turn relative to the heading of the segment)
_HL, _HR, _FL, _FR = slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 12)
_PITCH, _PZ, _HYAW, _HPITCH, _YOFF = 12, 13, 14, 15, 16
_NP = 17

# relative weights of the stops a shopper makes (same for train and test people)
NORMAL_STOPS = {"browse": 0.23, "pick": 0.28, "inspect": 0.13, "stand": 0.11, "low": 0.06, "turn": 0.07,
                "phone": 0.06, "put_back": 0.06}
# where items go, with how often (crouching to a bag on the floor or a trouser leg is common: out of view)
CONCEALMENTS = {"pocket": 0.11, "back_pocket": 0.06, "waistband": 0.12, "pants": 0.2, "shirt": 0.1,
                "jacket": 0.09, "bag": 0.12, "floor_bag": 0.2}


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
        p = np.zeros(_NP)
        hx = 0.5 * s.shoulder_width + 0.05
        p[_HL] = (0.03, hx, s.rest_hand_z + 0.03)
        p[_HR] = (0.03, -hx, s.rest_hand_z + 0.03)
        fx = 0.5 * s.hip_width + 0.03
        p[_FL] = (0.0, fx, s.ankle)
        p[_FR] = (0.0, -fx, s.ankle)
        p[_PZ] = s.hip_height - 0.01
        if self.carry == "basket":  # the other hand holds the basket's handle
            p[self._hand(-self.side)] = (0.10, -self.side * (hx + 0.04), s.rest_hand_z + 0.10)
        return p

    def _hand(self, side: int) -> slice:
        return _HL if side > 0 else _HR

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
            goal[_KEYS[key]] = val
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
        pose[:, _FL.start + 2] += lift * (np.sin(np.pi * 4 * u) > 0)
        pose[:, _FR.start + 2] += lift * (np.sin(np.pi * 4 * u) <= 0)
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
        lead = _FL if left > 0 or (left == 0 and fwd > 0) else _FR
        pose[:, lead.start + 2] += lift
        pose[:, _PZ] -= 0.02 * np.sin(np.pi * u)
        self._append(pos, np.full(n, self.yaw), pose, np.full(n, label, np.uint8))

    def walk_to(self, target, speed: float | None = None, label: int = 0) -> None:
        target = np.asarray(target, np.float64)
        delta = target - self.pos
        dist = float(np.hypot(*delta))
        if dist < 0.15:
            return
        self.turn_to(float(np.arctan2(delta[1], delta[0])), label)
        self.move(0.25, label, hand_l=self.rest_pose()[_HL], hand_r=self.rest_pose()[_HR],
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
        pose[:, _FL.start] = 0.5 * step * s
        pose[:, _FR.start] = -0.5 * step * s
        pose[:, _FL.start + 2] += 0.08 * np.clip(c, 0, None)
        pose[:, _FR.start + 2] += 0.08 * np.clip(-c, 0, None)
        pose[:, _PZ] -= 0.025 * (0.5 - 0.5 * np.cos(2 * phase))
        pose[:, _PITCH] = 0.06
        swing = 0.45 * step
        if self.carry == "cart":
            H = self.shape.height
            pose[:, _HL] = (0.45, 0.22, 0.58 * H)
            pose[:, _HR] = (0.45, -0.22, 0.58 * H)
            pose[:, _PITCH] = 0.15
        else:
            pose[:, _HL.start] += -swing * s
            pose[:, _HR.start] += swing * s
            pose[:, _HL.start + 2] += 0.05 * np.abs(s)
            pose[:, _HR.start + 2] += 0.05 * np.abs(s)
            if self.carry == "basket":
                pose[:, self._hand(-self.side)] = base[self._hand(-self.side)]
        pose[:, _HYAW] = 0.5 * _smooth_noise(self.rng, n, 12, 1.0)[:, 0]
        yaws = np.full(n, np.arctan2(delta[1], delta[0]))
        self._append(pos, yaws, pose, np.full(n, label, np.uint8))
        self.move(0.3, label, foot_l=base[_FL], foot_r=base[_FR], pelvis_z=base[_PZ], pitch=0.02)

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
        pose[:, _HYAW] += _smooth_noise(rng, n, 10, 0.12)[:, 0]
        pose[:, _HPITCH] += _smooth_noise(rng, n, 10, 0.05)[:, 0]
        pose[:, _PITCH] += _smooth_noise(rng, n, 15, 0.02)[:, 0]
        pos = pos + _smooth_noise(rng, n, 20, 0.012, 2)
        hide = label.astype(bool)
        if hide.any():  # while hiding something: darting looks, fumbling hands, a tense upper body
            k = int(hide.sum())
            pose[hide, _HYAW] += _smooth_noise(rng, k, 3, self.nervous * 0.45)[:, 0]
            pose[hide, _HPITCH] += _smooth_noise(rng, k, 3, self.nervous * 0.15)[:, 0]
            pose[hide, :6] += _smooth_noise(rng, k, 2.5, self.nervous * 0.035, 6)
            pose[hide, _YOFF] += _smooth_noise(rng, k, 5, self.nervous * 0.2)[:, 0]
        c = Controls(pos=pos, yaw=yaw + pose[:, _YOFF], pelvis_z=pose[:, _PZ], pitch=pose[:, _PITCH],
                     head_yaw=pose[:, _HYAW], head_pitch=pose[:, _HPITCH],
                     hands=pose[:, :6].reshape(n, 2, 3).copy(), feet=pose[:, 6:12].reshape(n, 2, 3).copy())
        return c, label


_KEYS = {"hand_l": _HL, "hand_r": _HR, "foot_l": _FL, "foot_r": _FR, "pitch": _PITCH, "pelvis_z": _PZ,
         "head_yaw": _HYAW, "head_pitch": _HPITCH, "yaw_off": _YOFF}


def _hk(side: int) -> str:
    return "hand_l" if side > 0 else "hand_r"


# --- normal actions ----------------------------------------------------------------------------

def _shelf_target(sc: Script, height: float, side: int) -> tuple[float, float, float]:
    reach = sc.rng.uniform(0.5, 0.68)
    return (reach, side * sc.rng.uniform(0.0, 0.3), height)


def reach_shelf(sc: Script, height: float, side: int, label: int = 0) -> None:
    """Hand to a shelf at ``height`` (bending or crouching for the low ones), take, back to holding."""
    s, H, rng = sc.shape, sc.shape.height, sc.rng
    low = height < 0.55
    crouch = low and rng.random() < 0.5
    if low and crouch:
        sc.move(0.8, label, pelvis_z=0.62 * s.hip_height, pitch=0.35, head_pitch=0.35,
                foot_l=(0.12, 0.5 * s.hip_width + 0.06, s.ankle), foot_r=(-0.05, -0.5 * s.hip_width - 0.06, s.ankle))
    elif low:
        sc.move(0.8, label, pitch=rng.uniform(0.8, 1.1), head_pitch=0.2)
    elif height > 1.55:
        sc.move(0.3, label, head_pitch=-0.35)
    else:
        sc.move(0.3, label, head_pitch=0.15, pitch=0.08)
    tgt = list(_shelf_target(sc, height, side))
    if low and not crouch:
        tgt[0] += 0.15
    sc.move(rng.uniform(0.5, 0.9), label, **{_hk(side): tuple(tgt)})
    sc.hold(rng.uniform(0.2, 0.6), label)
    sc.move(rng.uniform(0.5, 0.8), label, pelvis_z=s.hip_height - 0.01, pitch=0.1, head_pitch=0.3,
            foot_l=sc.rest_pose()[_FL], foot_r=sc.rest_pose()[_FR], **{_hk(side): sc.hold_point(side)})


def place_item(sc: Script, side: int) -> None:
    s, H, rng = sc.shape, sc.shape.height, sc.rng
    if sc.carry == "cart":
        sc.move(0.4, 0, yaw_off=side * -0.6)
        sc.move(0.7, 0, pitch=0.35, head_pitch=0.35, **{_hk(side): (0.7, side * 0.15, 0.47 * H)})
        sc.hold(0.3)
        sc.move(0.6, 0, pitch=0.05, head_pitch=0.05, yaw_off=0.0, **{_hk(side): sc.rest_pose()[sc._hand(side)]})
    elif sc.carry == "basket":
        bx = sc.rest_pose()[sc._hand(-side)]
        sc.move(0.7, 0, head_pitch=0.4, yaw_off=-side * 0.2,
                **{_hk(side): (bx[0] + 0.12, bx[1] * 0.55, bx[2] + 0.05)})
        sc.hold(0.3)
        sc.move(0.6, 0, head_pitch=0.05, yaw_off=0.0, **{_hk(side): sc.rest_pose()[sc._hand(side)]})
    else:  # carry it in the hand, arm down
        sc.move(0.7, 0, head_pitch=0.05, **{_hk(side): sc.rest_pose()[sc._hand(side)] + np.array([0.08, 0, 0.05])})


def inspect(sc: Script, side: int) -> None:
    H, rng = sc.shape.height, sc.rng
    sc.move(0.6, 0, head_pitch=rng.uniform(0.35, 0.6), pitch=0.12,
            **{_hk(side): (0.3, side * 0.06, 0.64 * H), _hk(-side): (0.28, -side * 0.07, 0.62 * H)})
    for _ in range(rng.integers(1, 4)):
        sc.move(rng.uniform(0.6, 1.2), 0, **{_hk(side): (0.3 + rng.uniform(-0.05, 0.05), side * 0.05,
                                                          0.64 * H + rng.uniform(-0.05, 0.06))},
                head_yaw=rng.uniform(-0.15, 0.15))
    sc.hold(rng.uniform(0.3, 1.2))
    sc.move(0.5, 0, **{_hk(-side): sc.rest_pose()[sc._hand(-side)]})


def phone(sc: Script, side: int) -> None:
    s, H, rng = sc.shape, sc.shape.height, sc.rng
    kind = rng.choice(["call", "text", "photo"], p=[0.4, 0.4, 0.2])
    if kind == "call":
        ear = (0.02, side * 0.07, s.shoulder_height + 0.16)
        sc.move(0.8, 0, head_yaw=side * 0.2, head_pitch=0.1, **{_hk(side): ear})
        sc.hold(rng.uniform(3, 9))
    elif kind == "text":
        sc.move(0.7, 0, head_pitch=0.6, **{_hk(side): (0.27, side * 0.04, 0.64 * H),
                                           _hk(-side): (0.26, -side * 0.02, 0.63 * H)})
        for _ in range(rng.integers(2, 5)):
            sc.move(rng.uniform(0.8, 1.6), 0, head_pitch=rng.uniform(0.45, 0.7))
    else:
        sc.move(0.7, 0, head_pitch=0.0, **{_hk(side): (0.38, 0.0, 0.90 * H)})
        sc.hold(rng.uniform(1.5, 4))
    sc.move(0.7, 0, head_pitch=0.05, head_yaw=0.0, **{_hk(side): sc.rest_pose()[sc._hand(side)],
                                                       _hk(-side): sc.rest_pose()[sc._hand(-side)]})


def browse(sc: Script, seconds: float) -> None:
    rng = sc.rng
    t = 0.0
    while t < seconds:
        d = rng.uniform(0.8, 2.0)
        sc.move(d, 0, head_yaw=rng.uniform(-0.6, 0.6), head_pitch=rng.uniform(-0.3, 0.5))
        t += d
        if rng.random() < 0.25:  # touch an item without taking it
            side = sc.side if rng.random() < 0.7 else -sc.side
            sc.move(0.6, 0, **{_hk(side): _shelf_target(sc, rng.uniform(0.8, 1.5), side)})
            sc.move(0.6, 0, **{_hk(side): sc.rest_pose()[sc._hand(side)]})
            t += 1.2


def glance(sc: Script, times: int, label: int = 0) -> None:
    """Look around: quick head turns to both sides, the body following a little."""
    rng = sc.rng
    sgn = rng.choice([-1, 1])
    for _ in range(times):
        a = rng.uniform(0.8, 1.4) * sgn
        sc.move(rng.uniform(0.25, 0.45), label, head_yaw=a, yaw_off=0.3 * a, head_pitch=-0.05)
        sc.hold(rng.uniform(0.15, 0.45), label)
        sgn = -sgn
    sc.move(0.35, label, head_yaw=0.0, yaw_off=0.0, head_pitch=0.15)


def do_stop(sc: Script, kind: str) -> None:
    """One stop at a shelf (already standing at it, facing it)."""
    rng, side = sc.rng, sc.side if sc.rng.random() < 0.75 else -sc.side
    if sc.carry == "basket":
        side = sc.side
    if kind == "browse":
        browse(sc, rng.uniform(2, 8))
    elif kind == "pick":
        browse(sc, rng.uniform(0.5, 2))
        reach_shelf(sc, float(rng.choice([0.35, 0.75, 1.05, 1.35, 1.7])), side)
        if rng.random() < 0.4:
            inspect(sc, side)
        place_item(sc, side)
    elif kind == "put_back":
        reach_shelf(sc, float(rng.choice([0.75, 1.05, 1.35])), side)
        inspect(sc, side)
        sc.move(0.8, 0, **{_hk(side): _shelf_target(sc, rng.uniform(0.8, 1.4), side)})
        sc.move(0.7, 0, **{_hk(side): sc.rest_pose()[sc._hand(side)]})
    elif kind == "inspect":
        reach_shelf(sc, float(rng.choice([0.75, 1.05, 1.35])), side)
        inspect(sc, side)
        place_item(sc, side)
    elif kind == "stand":
        sc.hold(rng.uniform(1.5, 6))
    elif kind == "low":
        reach_shelf(sc, float(rng.choice([0.2, 0.35, 0.45])), side)
        sc.hold(rng.uniform(0.3, 1.0))
        place_item(sc, side)
    elif kind == "turn":
        sc.turn_to(sc.yaw + rng.uniform(0.6, 2.6) * rng.choice([-1, 1]))
        sc.hold(rng.uniform(0.8, 3.0))
    elif kind == "phone":
        phone(sc, side)
    sc.move(0.4, 0, **{k: v for k, v in zip(("hand_l", "hand_r"), (sc.rest_pose()[_HL], sc.rest_pose()[_HR]))},
            pelvis_z=sc.rest_pose()[_PZ], pitch=0.03, head_pitch=0.1, yaw_off=0.0)


# --- shoplifting -------------------------------------------------------------------------------

def _shield(sc: Script, label: int) -> None:
    """Turn the body partly away and hunch over the hands, as people hiding something do."""
    rng = sc.rng
    sc.move(0.35, label, yaw_off=float(rng.choice([-1, 1]) * rng.uniform(0.6, 1.1)),
            pitch=rng.uniform(0.55, 0.9), head_pitch=rng.uniform(0.55, 0.8))


def _fidget(sc: Script, label: int) -> None:
    """Nervous weight shifts and half steps."""
    rng = sc.rng
    for _ in range(int(rng.integers(1, 3))):
        sc.step(rng.uniform(0.3, 0.5), rng.uniform(-0.12, 0.12), rng.uniform(-0.2, 0.2), label)


def _peek(sc: Script, label: int) -> None:
    """A quick look over the shoulder in the middle of hiding something."""
    rng = sc.rng
    a = rng.choice([-1, 1]) * rng.uniform(0.9, 1.4)
    keep = sc.pose[_YOFF]
    sc.move(0.25, label, head_yaw=a, head_pitch=-0.1, yaw_off=keep + 0.25 * a)
    sc.hold(0.2, label)
    sc.move(0.25, label, head_yaw=0.0, head_pitch=0.5, yaw_off=keep)


def conceal(sc: Script, kind: str, side: int, label: int = 1) -> None:
    """Hide the item in hand: into a pocket, the waistband or pants, under the shirt or jacket, or a bag."""
    s, H, rng = sc.shape, sc.shape.height, sc.rng
    hip = s.hip_height
    other = -side
    tempo = sc.tempo
    sc.tempo = tempo * rng.uniform(1.2, 1.6)  # furtive: quicker than shopping
    if rng.random() < 0.85:
        _fidget(sc, label)
    if kind not in ("pants", "floor_bag") and rng.random() < 0.85:
        _shield(sc, label)
    if kind == "pocket":
        tgt = (0.06, side * (0.5 * s.hip_width + 0.08), hip - 0.03)
        sc.move(0.5, label, head_yaw=side * 0.5, **{_hk(side): tgt}, **{_hk(other): (0.2, other * 0.05, hip + 0.1)})
        for _ in range(rng.integers(2, 4)):
            sc.move(0.2, label, **{_hk(side): (tgt[0] + 0.03, tgt[1], tgt[2] - 0.09)})
            sc.move(0.2, label, **{_hk(side): tgt})
    elif kind == "back_pocket":
        tgt = (-0.16, side * (0.5 * s.hip_width + 0.02), hip + 0.02)
        sc.move(0.6, label, head_yaw=side * 0.8, **{_hk(side): tgt})
        sc.move(0.3, label, **{_hk(side): (tgt[0], tgt[1], tgt[2] - 0.08)})
        sc.hold(0.3, label)
    elif kind == "waistband":
        back = rng.random() < 0.3
        if back:
            sc.move(0.7, label, head_yaw=side * 0.7, **{_hk(side): (-0.17, side * 0.03, hip + 0.12)})
        else:
            sc.move(0.7, label, pitch=0.45, head_pitch=0.7,
                    **{_hk(side): (0.18, side * 0.04, hip + 0.1), _hk(other): (0.18, other * 0.08, hip + 0.12)})
        for _ in range(rng.integers(2, 4)):
            sc.move(0.25, label, **{_hk(side): (0.14 if not back else -0.17, side * 0.03, hip - 0.03)})
            sc.move(0.25, label, **{_hk(side): (0.18 if not back else -0.17, side * 0.04, hip + 0.1)})
    elif kind == "pants":  # down a trouser leg or into a sock
        sc.move(0.6, label, pelvis_z=0.5 * s.hip_height, pitch=0.7, head_pitch=0.5,
                foot_l=(0.15, 0.5 * s.hip_width + 0.08, s.ankle), foot_r=(-0.08, -0.5 * s.hip_width - 0.08, s.ankle))
        sc.move(0.5, label, **{_hk(side): (0.2, side * 0.12, 0.18), _hk(other): (0.25, side * 0.05, 0.3)})
        for _ in range(rng.integers(1, 3)):
            sc.move(0.25, label, **{_hk(side): (0.18, side * 0.12, 0.10)})
            sc.move(0.25, label, **{_hk(side): (0.2, side * 0.12, 0.2)})
        _peek(sc, label)
        sc.move(0.6, label, pelvis_z=s.hip_height - 0.01, pitch=0.1,
                foot_l=sc.rest_pose()[_FL], foot_r=sc.rest_pose()[_FR])
    elif kind == "shirt":
        sc.move(0.5, label, **{_hk(other): (0.2, other * 0.05, hip + 0.22)})
        sc.move(0.5, label, **{_hk(side): (0.15, other * 0.05, 0.72 * H)})
        sc.hold(0.3, label)
        sc.move(0.4, label, **{_hk(side): (0.17, side * 0.02, hip + 0.15), _hk(other): (0.18, other * 0.02, hip + 0.18)})
        sc.move(0.3, label, **{_hk(side): (0.16, 0.0, hip + 0.25)})  # smooth the shirt down
        sc.move(0.3, label, **{_hk(side): (0.16, side * 0.03, hip + 0.1)})
    elif kind == "jacket":
        sc.move(0.5, label, head_yaw=other * 0.4, **{_hk(other): (0.17, other * 0.08, 0.77 * H)})
        sc.move(0.5, label, **{_hk(side): (0.12, other * 0.13, 0.72 * H)})
        sc.move(0.3, label, **{_hk(side): (0.06, other * 0.17, 0.68 * H)})
        sc.hold(0.3, label)
        sc.move(0.4, label, **{_hk(side): (0.1, side * 0.05, 0.74 * H)})
    elif kind in ("bag", "floor_bag"):
        if kind == "floor_bag":  # bag or basket at the feet
            sc.move(0.7, label, pelvis_z=0.52 * s.hip_height, pitch=0.65, head_pitch=0.45,
                    foot_l=(0.12, 0.5 * s.hip_width + 0.07, s.ankle), foot_r=(-0.06, -0.5 * s.hip_width - 0.07, s.ankle))
            bag = (0.38, side * 0.15, 0.12)
        else:
            bag = (0.22, other * 0.26, hip + 0.02) if rng.random() < 0.6 else (0.34, 0.0, 0.58 * H)
        sc.move(0.5, label, head_yaw=other * 0.4, **{_hk(other): (bag[0], bag[1] + other * 0.07, bag[2] + 0.06)})
        sc.move(0.5, label, **{_hk(side): bag})
        sc.move(0.25, label, **{_hk(side): (bag[0], bag[1], bag[2] - 0.1)})
        sc.move(0.25, label, **{_hk(side): bag})
        if kind == "floor_bag":
            _peek(sc, label)
            sc.move(0.6, label, pelvis_z=s.hip_height - 0.01, pitch=0.1,
                    foot_l=sc.rest_pose()[_FL], foot_r=sc.rest_pose()[_FR])
    else:
        raise ValueError(f"unknown concealment {kind!r}")
    sc.hold(rng.uniform(0.4, 1.2), label)  # adjusting clothes / the bag over the item
    if rng.random() < 0.6:
        _peek(sc, label)
    if rng.random() < 0.85:
        _fidget(sc, label)
    sc.move(0.4, label, pitch=0.03, head_pitch=0.1, head_yaw=0.0, yaw_off=0.0,
            **{_hk(side): sc.rest_pose()[sc._hand(side)], _hk(other): sc.rest_pose()[sc._hand(other)]})
    sc.tempo = tempo


def theft_cycle(sc: Script, kind: str) -> None:
    """Grab an item (quickly) or take one already in the basket, and conceal it; all labelled."""
    rng = sc.rng
    side = sc.side
    if rng.random() < 0.3:
        tempo = sc.tempo
        sc.tempo = tempo * 1.4
        reach_shelf(sc, float(rng.choice([0.75, 1.05, 1.35, 0.4])), side, label=1)
        sc.tempo = tempo
    conceal(sc, kind, side)
