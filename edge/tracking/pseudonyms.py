"""Per-session pseudonyms for track ids that leave the device.

The tracker numbers tracks 1, 2, 3...: a sequence that tells how many people a camera has seen and
links records across messages and restarts. What leaves the device is instead a positive 63-bit
pseudonym per (camera, track), either

- random (``RandomPseudonyms``, from ``secrets``): unlinkable across sessions, nothing to keep; or
- keyed (``KeyedPseudonyms``): HMAC-SHA256 of (session, camera, track) under a device key that never
  leaves the device, so the same session can be re-derived on the device (e.g. to replay a recording)
  while anyone without the key sees random numbers. A new session value gives unlinkable ids again.

Both give ids in 1 .. 2**63 - 1 (never 0 or negative, which downstream code may treat as "none"),
and never hand out the same id twice within a session.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Protocol

_MASK63 = (1 << 63) - 1


class Pseudonyms(Protocol):
    def __call__(self, camera_id: str, track: int) -> int: ...


class _Unique:
    def __init__(self) -> None:
        self._given: dict[tuple[str, int], int] = {}
        self._used: set[int] = set()

    def _lookup(self, camera_id: str, track: int) -> int | None:
        return self._given.get((camera_id, int(track)))

    def _keep(self, camera_id: str, track: int, value: int) -> int:
        self._given[(camera_id, int(track))] = value
        self._used.add(value)
        return value

    def forget(self, camera_id: str, track: int) -> None:
        """Drop the mapping of a finished track (its id stays reserved for the session)."""
        self._given.pop((camera_id, int(track)), None)


class RandomPseudonyms(_Unique):
    """A fresh random id for every track of the session."""

    def __call__(self, camera_id: str, track: int) -> int:
        got = self._lookup(camera_id, track)
        if got is not None:
            return got
        while True:
            value = secrets.randbits(63)
            if value and value not in self._used:
                return self._keep(camera_id, track, value)


class KeyedPseudonyms(_Unique):
    """HMAC-SHA256(key, session | camera | track), truncated to 63 bits."""

    def __init__(self, key: bytes, session: bytes | None = None) -> None:
        super().__init__()
        if len(key) < 16:
            raise ValueError(f"pseudonym key must be at least 16 bytes, got {len(key)}")
        self._key = bytes(key)
        self.session = secrets.token_bytes(16) if session is None else bytes(session)

    def __call__(self, camera_id: str, track: int) -> int:
        got = self._lookup(camera_id, track)
        if got is not None:
            return got
        counter = 0
        while True:
            msg = b"|".join((self.session, camera_id.encode("utf-8"), str(int(track)).encode(), str(counter).encode()))
            value = int.from_bytes(hmac.new(self._key, msg, hashlib.sha256).digest()[:8], "big") & _MASK63
            if value and value not in self._used:
                return self._keep(camera_id, track, value)
            counter += 1


def load_or_create_key(path: str | Path) -> bytes:
    """The device's pseudonym key: read from ``path``, or created there (mode 0600) on first use."""
    path = Path(path)
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key
    if len(key) < 16:
        raise ValueError(f"{path}: pseudonym key too short ({len(key)} bytes, need at least 16)")
    return key


KEY_FILE = "pseudonym.key"


def pseudonyms_for(kind: str, state_dir: str | Path | None = None) -> RandomPseudonyms | KeyedPseudonyms:
    """The generator a device uses for ``TrackingConfig.pseudonyms``; share one across its cameras."""
    if kind == "random":
        return RandomPseudonyms()
    if kind == "keyed":
        if state_dir is None:
            raise ValueError("keyed pseudonyms need the device state directory for their key")
        return KeyedPseudonyms(load_or_create_key(Path(state_dir) / KEY_FILE))
    raise ValueError(f"unknown pseudonym kind {kind!r} (random or keyed)")
