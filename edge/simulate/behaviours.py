"""What people do in the aisle: normal shopping and shoplifting, composed from :class:`Script` primitives.

``do_stop`` is one stop at a shelf (browse, pick, inspect, stand, crouch low, turn, phone, put back);
``conceal`` and ``theft_cycle`` hide an item (pocket, waistband, pants, shirt, jacket, bag, a bag on
the floor) with the shielding, fidgeting and peeking that go with it; ``glance`` looks around.
"""

from __future__ import annotations

import numpy as np

from edge.simulate.script import (
    FOOT_L, FOOT_R, HAND_L, HAND_R, PELVIS_Z, YAW_OFF, Script, hand_key,
)

# relative weights of the stops a shopper makes (same for train and test people)
NORMAL_STOPS = {"browse": 0.23, "pick": 0.28, "inspect": 0.13, "stand": 0.11, "low": 0.06, "turn": 0.07,
                "phone": 0.06, "put_back": 0.06}
# where items go, with how often (crouching to a bag on the floor or a trouser leg is common: out of view)
CONCEALMENTS = {"pocket": 0.11, "back_pocket": 0.06, "waistband": 0.12, "pants": 0.2, "shirt": 0.1,
                "jacket": 0.09, "bag": 0.12, "floor_bag": 0.2}



# --- normal actions ----------------------------------------------------------------------------

def _shelf_target(sc: Script, height: float, side: int) -> tuple[float, float, float]:
    reach = sc.rng.uniform(0.5, 0.68)
    return (reach, side * sc.rng.uniform(0.0, 0.3), height)


def reach_shelf(sc: Script, height: float, side: int, label: int = 0) -> None:
    """Hand to a shelf at ``height`` (bending or crouching for the low ones), take, back to holding."""
    s, rng = sc.shape, sc.rng
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
    sc.move(rng.uniform(0.5, 0.9), label, **{hand_key(side): tuple(tgt)})
    sc.hold(rng.uniform(0.2, 0.6), label)
    sc.move(rng.uniform(0.5, 0.8), label, pelvis_z=s.hip_height - 0.01, pitch=0.1, head_pitch=0.3,
            foot_l=sc.rest_pose()[FOOT_L], foot_r=sc.rest_pose()[FOOT_R], **{hand_key(side): sc.hold_point(side)})


def place_item(sc: Script, side: int) -> None:
    H = sc.shape.height
    if sc.carry == "cart":
        sc.move(0.4, 0, yaw_off=side * -0.6)
        sc.move(0.7, 0, pitch=0.35, head_pitch=0.35, **{hand_key(side): (0.7, side * 0.15, 0.47 * H)})
        sc.hold(0.3)
        sc.move(0.6, 0, pitch=0.05, head_pitch=0.05, yaw_off=0.0,
                **{hand_key(side): sc.rest_pose()[sc.hand_slice(side)]})
    elif sc.carry == "basket":
        bx = sc.rest_pose()[sc.hand_slice(-side)]
        sc.move(0.7, 0, head_pitch=0.4, yaw_off=-side * 0.2,
                **{hand_key(side): (bx[0] + 0.12, bx[1] * 0.55, bx[2] + 0.05)})
        sc.hold(0.3)
        sc.move(0.6, 0, head_pitch=0.05, yaw_off=0.0, **{hand_key(side): sc.rest_pose()[sc.hand_slice(side)]})
    else:  # carry it in the hand, arm down
        sc.move(0.7, 0, head_pitch=0.05,
                **{hand_key(side): sc.rest_pose()[sc.hand_slice(side)] + np.array([0.08, 0, 0.05])})


def inspect(sc: Script, side: int) -> None:
    H, rng = sc.shape.height, sc.rng
    sc.move(0.6, 0, head_pitch=rng.uniform(0.35, 0.6), pitch=0.12,
            **{hand_key(side): (0.3, side * 0.06, 0.64 * H), hand_key(-side): (0.28, -side * 0.07, 0.62 * H)})
    for _ in range(rng.integers(1, 4)):
        sc.move(rng.uniform(0.6, 1.2), 0, **{hand_key(side): (0.3 + rng.uniform(-0.05, 0.05), side * 0.05,
                                                          0.64 * H + rng.uniform(-0.05, 0.06))},
                head_yaw=rng.uniform(-0.15, 0.15))
    sc.hold(rng.uniform(0.3, 1.2))
    sc.move(0.5, 0, **{hand_key(-side): sc.rest_pose()[sc.hand_slice(-side)]})


def phone(sc: Script, side: int) -> None:
    s, H, rng = sc.shape, sc.shape.height, sc.rng
    kind = rng.choice(["call", "text", "photo"], p=[0.4, 0.4, 0.2])
    if kind == "call":
        ear = (0.02, side * 0.07, s.shoulder_height + 0.16)
        sc.move(0.8, 0, head_yaw=side * 0.2, head_pitch=0.1, **{hand_key(side): ear})
        sc.hold(rng.uniform(3, 9))
    elif kind == "text":
        sc.move(0.7, 0, head_pitch=0.6, **{hand_key(side): (0.27, side * 0.04, 0.64 * H),
                                           hand_key(-side): (0.26, -side * 0.02, 0.63 * H)})
        for _ in range(rng.integers(2, 5)):
            sc.move(rng.uniform(0.8, 1.6), 0, head_pitch=rng.uniform(0.45, 0.7))
    else:
        sc.move(0.7, 0, head_pitch=0.0, **{hand_key(side): (0.38, 0.0, 0.90 * H)})
        sc.hold(rng.uniform(1.5, 4))
    sc.move(0.7, 0, head_pitch=0.05, head_yaw=0.0, **{hand_key(side): sc.rest_pose()[sc.hand_slice(side)],
                                                       hand_key(-side): sc.rest_pose()[sc.hand_slice(-side)]})


def browse(sc: Script, seconds: float) -> None:
    rng = sc.rng
    t = 0.0
    while t < seconds:
        d = rng.uniform(0.8, 2.0)
        sc.move(d, 0, head_yaw=rng.uniform(-0.6, 0.6), head_pitch=rng.uniform(-0.3, 0.5))
        t += d
        if rng.random() < 0.25:  # touch an item without taking it
            side = sc.side if rng.random() < 0.7 else -sc.side
            sc.move(0.6, 0, **{hand_key(side): _shelf_target(sc, rng.uniform(0.8, 1.5), side)})
            sc.move(0.6, 0, **{hand_key(side): sc.rest_pose()[sc.hand_slice(side)]})
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
        sc.move(0.8, 0, **{hand_key(side): _shelf_target(sc, rng.uniform(0.8, 1.4), side)})
        sc.move(0.7, 0, **{hand_key(side): sc.rest_pose()[sc.hand_slice(side)]})
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
    sc.move(0.4, 0, **{k: v for k, v in zip(("hand_l", "hand_r"), (sc.rest_pose()[HAND_L], sc.rest_pose()[HAND_R]))},
            pelvis_z=sc.rest_pose()[PELVIS_Z], pitch=0.03, head_pitch=0.1, yaw_off=0.0)


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
    keep = sc.pose[YAW_OFF]
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
        sc.move(0.5, label, head_yaw=side * 0.5, **{hand_key(side): tgt},
                **{hand_key(other): (0.2, other * 0.05, hip + 0.1)})
        for _ in range(rng.integers(2, 4)):
            sc.move(0.2, label, **{hand_key(side): (tgt[0] + 0.03, tgt[1], tgt[2] - 0.09)})
            sc.move(0.2, label, **{hand_key(side): tgt})
    elif kind == "back_pocket":
        tgt = (-0.16, side * (0.5 * s.hip_width + 0.02), hip + 0.02)
        sc.move(0.6, label, head_yaw=side * 0.8, **{hand_key(side): tgt})
        sc.move(0.3, label, **{hand_key(side): (tgt[0], tgt[1], tgt[2] - 0.08)})
        sc.hold(0.3, label)
    elif kind == "waistband":
        back = rng.random() < 0.3
        if back:
            sc.move(0.7, label, head_yaw=side * 0.7, **{hand_key(side): (-0.17, side * 0.03, hip + 0.12)})
        else:
            sc.move(0.7, label, pitch=0.45, head_pitch=0.7,
                    **{hand_key(side): (0.18, side * 0.04, hip + 0.1),
                       hand_key(other): (0.18, other * 0.08, hip + 0.12)})
        for _ in range(rng.integers(2, 4)):
            sc.move(0.25, label, **{hand_key(side): (0.14 if not back else -0.17, side * 0.03, hip - 0.03)})
            sc.move(0.25, label, **{hand_key(side): (0.18 if not back else -0.17, side * 0.04, hip + 0.1)})
    elif kind == "pants":  # down a trouser leg or into a sock
        sc.move(0.6, label, pelvis_z=0.5 * s.hip_height, pitch=0.7, head_pitch=0.5,
                foot_l=(0.15, 0.5 * s.hip_width + 0.08, s.ankle), foot_r=(-0.08, -0.5 * s.hip_width - 0.08, s.ankle))
        sc.move(0.5, label, **{hand_key(side): (0.2, side * 0.12, 0.18), hand_key(other): (0.25, side * 0.05, 0.3)})
        for _ in range(rng.integers(1, 3)):
            sc.move(0.25, label, **{hand_key(side): (0.18, side * 0.12, 0.10)})
            sc.move(0.25, label, **{hand_key(side): (0.2, side * 0.12, 0.2)})
        _peek(sc, label)
        sc.move(0.6, label, pelvis_z=s.hip_height - 0.01, pitch=0.1,
                foot_l=sc.rest_pose()[FOOT_L], foot_r=sc.rest_pose()[FOOT_R])
    elif kind == "shirt":
        sc.move(0.5, label, **{hand_key(other): (0.2, other * 0.05, hip + 0.22)})
        sc.move(0.5, label, **{hand_key(side): (0.15, other * 0.05, 0.72 * H)})
        sc.hold(0.3, label)
        sc.move(0.4, label,
                **{hand_key(side): (0.17, side * 0.02, hip + 0.15), hand_key(other): (0.18, other * 0.02, hip + 0.18)})
        sc.move(0.3, label, **{hand_key(side): (0.16, 0.0, hip + 0.25)})  # smooth the shirt down
        sc.move(0.3, label, **{hand_key(side): (0.16, side * 0.03, hip + 0.1)})
    elif kind == "jacket":
        sc.move(0.5, label, head_yaw=other * 0.4, **{hand_key(other): (0.17, other * 0.08, 0.77 * H)})
        sc.move(0.5, label, **{hand_key(side): (0.12, other * 0.13, 0.72 * H)})
        sc.move(0.3, label, **{hand_key(side): (0.06, other * 0.17, 0.68 * H)})
        sc.hold(0.3, label)
        sc.move(0.4, label, **{hand_key(side): (0.1, side * 0.05, 0.74 * H)})
    elif kind in ("bag", "floor_bag"):
        if kind == "floor_bag":  # bag or basket at the feet
            sc.move(0.7, label, pelvis_z=0.52 * s.hip_height, pitch=0.65, head_pitch=0.45,
                    foot_l=(0.12, 0.5 * s.hip_width + 0.07, s.ankle),
                    foot_r=(-0.06, -0.5 * s.hip_width - 0.07, s.ankle))
            bag = (0.38, side * 0.15, 0.12)
        else:
            bag = (0.22, other * 0.26, hip + 0.02) if rng.random() < 0.6 else (0.34, 0.0, 0.58 * H)
        sc.move(0.5, label, head_yaw=other * 0.4, **{hand_key(other): (bag[0], bag[1] + other * 0.07, bag[2] + 0.06)})
        sc.move(0.5, label, **{hand_key(side): bag})
        sc.move(0.25, label, **{hand_key(side): (bag[0], bag[1], bag[2] - 0.1)})
        sc.move(0.25, label, **{hand_key(side): bag})
        if kind == "floor_bag":
            _peek(sc, label)
            sc.move(0.6, label, pelvis_z=s.hip_height - 0.01, pitch=0.1,
                    foot_l=sc.rest_pose()[FOOT_L], foot_r=sc.rest_pose()[FOOT_R])
    else:
        raise ValueError(f"unknown concealment {kind!r}")
    sc.hold(rng.uniform(0.4, 1.2), label)  # adjusting clothes / the bag over the item
    if rng.random() < 0.6:
        _peek(sc, label)
    if rng.random() < 0.85:
        _fidget(sc, label)
    sc.move(0.4, label, pitch=0.03, head_pitch=0.1, head_yaw=0.0, yaw_off=0.0,
            **{hand_key(side): sc.rest_pose()[sc.hand_slice(side)],
               hand_key(other): sc.rest_pose()[sc.hand_slice(other)]})
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
