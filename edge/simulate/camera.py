"""Ceiling cameras (pinhole, 1920x1080) and the aisle each one looks at.

Every camera hangs at the world origin at its mounting height, looks along +y tilted down, and sees one
aisle: two shelf rows either side of an axis on the floor. The six cameras differ in height, tilt,
focal length, roll and in how the aisle runs through the picture (down the view, across it, diagonal),
so people are seen from the front, back, side and above, large and small, as in a real store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

WIDTH, HEIGHT = 1920, 1080


@dataclass(frozen=True)
class Camera:
    camera_id: int
    height: float        # metres above the floor
    tilt: float          # downward tilt, radians
    focal: float         # pixels
    roll: float = 0.0    # radians
    aisle_angle: float = 0.0   # aisle axis direction on the floor, radians from the view direction
    aisle_offset: float = 0.0  # lateral shift of the aisle axis, metres
    aisle_width: float = 2.2   # shelf face to shelf face, metres
    shelf_occlusion: float = 0.3  # chance a stop at a shelf hides the lower body
    size: tuple[int, int] = (WIDTH, HEIGHT)
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def basis(self) -> np.ndarray:
        """Rows: image-right, image-down, forward (world coordinates)."""
        ct, st = np.cos(self.tilt), np.sin(self.tilt)
        fwd = np.array([0.0, ct, -st])
        right = np.array([1.0, 0.0, 0.0])
        down = np.cross(fwd, right)
        cr, sr = np.cos(self.roll), np.sin(self.roll)
        return np.stack([cr * right + sr * down, -sr * right + cr * down, fwd])

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points ``(..., 3)`` -> pixels ``(..., 2)`` and depth ``(...)`` (metres along the view)."""
        rel = np.asarray(pts, np.float64) - np.array([0.0, 0.0, self.height])
        cam = rel @ self.basis.T
        z = cam[..., 2]
        zs = np.where(z > 0.05, z, 0.05)
        w, h = self.size
        uv = np.stack([self.focal * cam[..., 0] / zs + w / 2, self.focal * cam[..., 1] / zs + h / 2], -1)
        return uv, z

    # --- the aisle ------------------------------------------------------------------------------
    @property
    def aisle_dir(self) -> np.ndarray:
        a = np.pi / 2 + self.aisle_angle
        return np.array([np.cos(a), np.sin(a)])

    @property
    def aisle_normal(self) -> np.ndarray:
        d = self.aisle_dir
        return np.array([-d[1], d[0]])

    @cached_property
    def aisle_origin(self) -> np.ndarray:
        """A floor point near the middle of the picture, on the aisle axis."""
        # the floor point seen at the image centre, pulled a bit closer so heads stay in view
        ct, st = np.cos(self.tilt), np.sin(self.tilt)
        dist = self.height * ct / max(st, 0.2)
        return np.array([0.0, 0.8 * dist]) + self.aisle_offset * self.aisle_normal

    def floor_point(self, s, lateral) -> np.ndarray:
        """Point at arc ``s`` along the aisle axis, ``lateral`` metres to its left."""
        s = np.asarray(s, np.float64)[..., None]
        lat = np.asarray(lateral, np.float64)[..., None]
        return self.aisle_origin + s * self.aisle_dir + lat * self.aisle_normal

    def visible(self, floor_xy: np.ndarray, person_height: float = 1.8, margin: float = 20.0) -> np.ndarray:
        """Whether a standing person at each floor point is fully in the picture and not absurdly close."""
        xy = np.asarray(floor_xy, np.float64).reshape(-1, 2)
        feet = np.concatenate([xy, np.zeros((len(xy), 1))], 1)
        top = feet + np.array([0.0, 0.0, person_height])
        ok = np.ones(len(xy), bool)
        for dx in (-0.3, 0.3):
            for p in (feet, top):
                uv, z = self.project(p + np.array([dx, 0.0, 0.0]))
                ok &= (z > 1.0) & (uv[:, 0] > margin) & (uv[:, 0] < self.size[0] - margin)
                ok &= (uv[:, 1] > margin) & (uv[:, 1] < self.size[1] - margin)
        uvf, _ = self.project(feet)
        uvt, _ = self.project(top)
        ok &= np.abs(uvf[:, 1] - uvt[:, 1]) > 110  # people smaller than this are not detected well
        return ok

    @cached_property
    def aisle_range(self) -> tuple[float, float]:
        """The longest run of arc positions where people at both shelf fronts and on the axis are visible."""
        s = np.arange(-20.0, 20.0, 0.1)
        lat = 0.5 * self.aisle_width - 0.45
        ok = self.visible(self.floor_point(s, 0.0))
        ok &= self.visible(self.floor_point(s, lat)) & self.visible(self.floor_point(s, -lat))
        if not ok.any():
            raise ValueError(f"camera {self.camera_id}: the aisle is not in view")
        idx = np.flatnonzero(ok)
        runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
        best = max(runs, key=len)
        return float(s[best[0]]), float(s[best[-1]])


CAMERAS: dict[int, Camera] = {
    1: Camera(1, height=3.2, tilt=np.radians(33), focal=1150, aisle_angle=0.0, aisle_width=2.4),
    2: Camera(2, height=2.9, tilt=np.radians(26), focal=1350, aisle_angle=np.radians(90), aisle_width=2.0,
              aisle_offset=0.5),
    3: Camera(3, height=3.5, tilt=np.radians(42), focal=1000, aisle_angle=np.radians(40), aisle_width=2.6,
              roll=np.radians(2)),
    4: Camera(4, height=3.0, tilt=np.radians(40), focal=850, aisle_angle=np.radians(-60), aisle_width=2.2,
              shelf_occlusion=0.15),
    5: Camera(5, height=2.7, tilt=np.radians(22), focal=1550, aisle_angle=np.radians(10), aisle_width=2.0,
              shelf_occlusion=0.45, aisle_offset=-0.3),
    6: Camera(6, height=3.3, tilt=np.radians(37), focal=1200, aisle_angle=np.radians(-25), aisle_width=2.8,
              roll=np.radians(-3)),
}
