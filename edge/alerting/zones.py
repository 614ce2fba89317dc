"""Alert zones: named polygons in image coordinates where alerts may fire.

A camera with no zones alerts anywhere in the frame. With zones, a person counts only while the
ground point of their pose (the window's anchor) lies inside one of them; shelves that hide the
lower body make the rest of the frame unreliable, so stores fence alerts to the aisles they trust.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Zone:
    """A named simple polygon; vertices ``(K, 2)`` float64 in frame pixels, K >= 3."""

    name: str
    polygon: np.ndarray

    def __post_init__(self):
        try:
            poly = np.asarray(self.polygon, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"zone {self.name!r}: polygon must be a list of [x, y] pairs") from None
        if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3:
            raise ValueError(f"zone {self.name!r}: polygon needs at least 3 [x, y] vertices, got shape {poly.shape}")
        if not np.isfinite(poly).all():
            raise ValueError(f"zone {self.name!r}: polygon has non-finite vertices")
        object.__setattr__(self, "polygon", np.ascontiguousarray(poly))

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Even-odd rule for ``(N, 2)`` points; returns ``(N,)`` bool. NaN points are outside."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        x, y = pts[:, 0:1], pts[:, 1:2]
        xi, yi = self.polygon[:, 0], self.polygon[:, 1]
        xj, yj = np.roll(xi, 1), np.roll(yi, 1)
        straddles = (yi > y) != (yj > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = xi + (y - yi) * (xj - xi) / (yj - yi)
        crossings = straddles & (x < x_cross)
        return (crossings.sum(axis=1) % 2) == 1


class ZoneMap:
    """Zones per camera. ``locate`` says which zone each anchor is in, and whether it may alert at all."""

    def __init__(self, zones: Mapping[str, Iterable] | None = None):
        self._zones: dict[str, tuple[Zone, ...]] = {}
        for camera_id, items in (zones or {}).items():
            parsed = tuple(_as_zone(z) for z in items)
            if parsed:
                self._zones[str(camera_id)] = parsed

    @classmethod
    def from_cameras(cls, cameras: Sequence) -> ZoneMap:
        """From ``EdgeConfig.cameras`` (each with ``id`` and ``zones``)."""
        return cls({c.id: c.zones for c in cameras})

    def restricted(self, camera_id: str) -> bool:
        return camera_id in self._zones

    def locate(self, camera_id: str, anchors: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
        """``(allowed (N,) bool, zone name or None per anchor)``; the first matching zone wins."""
        pts = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
        zones = self._zones.get(camera_id)
        if zones is None:
            return np.ones(len(pts), dtype=bool), [None] * len(pts)
        names: list[str | None] = [None] * len(pts)
        allowed = np.zeros(len(pts), dtype=bool)
        for zone in zones:
            hit = zone.contains(pts) & ~allowed
            for i in np.flatnonzero(hit):
                names[i] = zone.name
            allowed |= hit
        return allowed, names


def _as_zone(z) -> Zone:
    if isinstance(z, Zone):
        return z
    if isinstance(z, Mapping):
        return Zone(str(z["name"]), z["polygon"])
    name = getattr(z, "name", None)
    polygon = getattr(z, "polygon", None)
    if name is None or polygon is None:
        raise ValueError(f"not a zone (needs a name and a polygon): {z!r}")
    return Zone(str(name), polygon)
