"""Topic layout ``<prefix>/<store>/<device>/...`` and how each kind of message is delivered.

=========================  =============================  ====  ======  ========================
topic (below the device)   kind                           QoS   retain  direction
=========================  =============================  ====  ======  ========================
``status``                 status (birth, will, stopped)  1     yes     device -> HQ
``health``                 health                         1     no      device -> HQ
``cam/<camera>/status``    camera_status                  1     yes     device -> HQ
``cam/<camera>/poses``     poses                          1     no      device -> HQ
``cam/<camera>/alerts``    alert                          1     no      device -> HQ
``ota/state``              ota_state                      1     yes     device -> HQ
``cmd/<verb>``             command                        1     never   HQ -> device
``cmd/<verb>/result``      command_result                 1     no      device -> HQ
=========================  =============================  ====  ======  ========================

``SEND_PRIORITY`` orders a backlog (alerts first, poses last; FIFO within a kind) and
``EVICT_RANK`` is the outbox cap policy (poses are evicted first, then health; alerts never).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

QOS = 1
RETAINED = frozenset({"status", "camera_status", "ota_state"})
SEND_PRIORITY = {"alert": 0, "command_result": 1, "status": 1, "camera_status": 1, "ota_state": 1,
                 "health": 2, "poses": 3}
EVICT_RANK = {"poses": 0, "health": 1, "command_result": 2, "status": 2, "camera_status": 2,
              "ota_state": 2, "alert": 3}

_LEVEL = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_VERB = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class TopicInfo:
    store: str
    device: str
    kind: str
    camera: str | None = None
    verb: str | None = None


class Topics:
    """Topic names of one device."""

    def __init__(self, prefix: str, store: str, device: str):
        for name, v in (("store", store), ("device", device)):
            if not _LEVEL.match(v):
                raise ValueError(f"{name} id {v!r} is not a valid topic level ([A-Za-z0-9_-], 1..64)")
        self.prefix = prefix.strip("/")
        self.base = f"{self.prefix}/{store}/{device}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def health(self) -> str:
        return f"{self.base}/health"

    @property
    def ota_state(self) -> str:
        return f"{self.base}/ota/state"

    @property
    def commands(self) -> str:
        """Subscription filter for this device's commands."""
        return f"{self.base}/cmd/+"

    def camera(self, camera_id: str, what: str) -> str:
        if not _LEVEL.match(camera_id):
            raise ValueError(f"camera id {camera_id!r} is not a valid topic level")
        return f"{self.base}/cam/{camera_id}/{what}"

    def command(self, verb: str) -> str:
        return f"{self.base}/cmd/{verb}"

    def result(self, verb: str) -> str:
        """Result topic; a verb that is not a clean topic level is answered on ``cmd/invalid/result``."""
        return f"{self.base}/cmd/{verb if _VERB.match(verb) else 'invalid'}/result"

    def for_kind(self, kind: str, camera_id: str | None = None, verb: str | None = None) -> str:
        if kind == "status":
            return self.status
        if kind == "health":
            return self.health
        if kind == "ota_state":
            return self.ota_state
        if kind == "camera_status":
            return self.camera(camera_id, "status")
        if kind == "poses":
            return self.camera(camera_id, "poses")
        if kind == "alert":
            return self.camera(camera_id, "alerts")
        if kind == "command_result":
            return self.result(verb or "invalid")
        raise ValueError(f"no topic for message kind {kind!r}")


def subscriptions(prefix: str, store: str = "+") -> list[str]:
    """What HQ subscribes to (everything devices publish, never the commands it sends itself)."""
    b = f"{prefix.strip('/')}/{store}/+"
    return [f"{b}/status", f"{b}/health", f"{b}/ota/state", f"{b}/cam/+/status", f"{b}/cam/+/poses",
            f"{b}/cam/+/alerts", f"{b}/cmd/+/result"]


def parse(topic: str, prefix: str) -> TopicInfo | None:
    """The parts of a device topic, or None for anything outside the layout."""
    root = prefix.strip("/").split("/")
    parts = topic.split("/")
    if parts[: len(root)] != root:
        return None
    rest = parts[len(root):]
    if len(rest) < 3 or not _LEVEL.match(rest[0]) or not _LEVEL.match(rest[1]):
        return None
    store, device, tail = rest[0], rest[1], rest[2:]
    if tail == ["status"]:
        return TopicInfo(store, device, "status")
    if tail == ["health"]:
        return TopicInfo(store, device, "health")
    if tail == ["ota", "state"]:
        return TopicInfo(store, device, "ota_state")
    if len(tail) == 3 and tail[0] == "cam" and _LEVEL.match(tail[1]):
        kind = {"status": "camera_status", "poses": "poses", "alerts": "alert"}.get(tail[2])
        return TopicInfo(store, device, kind, camera=tail[1]) if kind else None
    if len(tail) == 2 and tail[0] == "cmd":
        return TopicInfo(store, device, "command", verb=tail[1])
    if len(tail) == 3 and tail[0] == "cmd" and tail[2] == "result":
        return TopicInfo(store, device, "command_result", verb=tail[1])
    return None
