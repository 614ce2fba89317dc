"""Alerting: window scores per camera and track become alerts with a lifecycle (new, update, end)."""

from edge.alerting.engine import AlertEngine, release_level
from edge.alerting.zones import Zone, ZoneMap

__all__ = ["AlertEngine", "Zone", "ZoneMap", "release_level"]
