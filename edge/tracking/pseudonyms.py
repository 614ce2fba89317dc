"""Per-session pseudonyms for track ids that leave the device.

The tracker numbers tracks 1, 2, 3...: a sequence that tells how many people a camera has seen and
links records across messages and restarts. What leaves the device is instead a positive 63-bit
pseudonym per (camera, track), either

- random (``RandomPseudonyms``): keys from ``secrets``, unlinkable across sessions, nothing to keep; or
- keyed (``KeyedPseudonyms``): keys derived by HMAC-SHA256 from (device key, session), the device key
  never leaving the device, so the same session can be re-derived on the device (e.g. to replay a
  recording) while anyone without the key sees random numbers. A new session value gives unlinkable
  ids again.

Both give ids in 1 .. 2**63 - 1 (never 0 or negative, which downstream code may treat as "none"),
and never hand out the same id twice within a session, while remembering only the cameras and the
tracks still open: the n-th track a camera registers is encrypted, together with the camera's slot,
by a keyed permutation of 63-bit numbers (a Feistel network), so distinct inputs cannot collide and
no set of used ids has to grow for months. Ids depend on each camera's own sequence of tracks, not
on how cameras interleave.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Protocol

_ROUNDS = 8
_COUNTER_BITS = 40   # tracks one camera can register in a session (10**12)
_SLOT_BITS = 23      # camera slots; 2**23 - 1 of them, so that slot << 40 | counter stays below 2**63


class Pseudonyms(Protocol):
    def __call__(self, camera_id: str, track: int) -> int: ...


class _Feistel:
    """A keyed permutation of ``[1, 2**(bits-1))``: a balanced Feistel network on ``bits`` bits with a
    keyed BLAKE2b round function, cycle-walked into the range."""

    def __init__(self, key: bytes, bits: int = 64):
        if bits % 2 or not 8 <= bits <= 64:
            raise ValueError(f"bits must be even and in 8..64, got {bits}")
        self._key = hashlib.sha256(key).digest()
        self._half = bits // 2
        self._mask = (1 << self._half) - 1
        self.limit = 1 << (bits - 1)

    def _round(self, r: int, half: int) -> int:
        h = hashlib.blake2b(half.to_bytes(8, "big"), key=self._key, digest_size=8, person=b"pseudonym%d" % r)
        return int.from_bytes(h.digest(), "big") & self._mask

    def _encrypt(self, x: int) -> int:
        left, right = x >> self._half, x & self._mask
        for r in range(_ROUNDS):
            left, right = right, left ^ self._round(r, right)
        return (left << self._half) | right

    def __call__(self, x: int) -> int:
        if not 0 < x < self.limit:
            raise ValueError(f"input {x} outside 1 .. {self.limit - 1}")
        y = self._encrypt(x)
        while not 0 < y < self.limit:  # a permutation of the wider block, walked until it lands in range
            y = self._encrypt(y)
        return y


class _PermutedCounters:
    def __init__(self, permutation_key: bytes, slot_key: bytes) -> None:
        self._permute = _Feistel(permutation_key)
        self._slot_key = slot_key
        self._given: dict[tuple[str, int], int] = {}
        self._cameras: dict[str, list[int]] = {}  # camera -> [slot, tracks registered]
        self._slots: set[int] = set()

    def _camera(self, camera_id: str) -> list[int]:
        cam = self._cameras.get(camera_id)
        if cam is None:
            digest = hmac.new(self._slot_key, camera_id.encode("utf-8"), hashlib.sha256).digest()
            slot = int.from_bytes(digest[:8], "big") % ((1 << _SLOT_BITS) - 1)
            while slot in self._slots:  # two camera names on one slot: only then does arrival order matter
                slot = (slot + 1) % ((1 << _SLOT_BITS) - 1)
            self._slots.add(slot)
            cam = self._cameras[camera_id] = [slot, 0]
        return cam

    def __call__(self, camera_id: str, track: int) -> int:
        key = (camera_id, int(track))
        got = self._given.get(key)
        if got is not None:
            return got
        cam = self._camera(camera_id)
        if cam[1] >= (1 << _COUNTER_BITS) - 1:
            raise RuntimeError(f"camera {camera_id!r} registered 2**40 tracks in one session; start a new one")
        cam[1] += 1
        value = self._given[key] = self._permute((cam[0] << _COUNTER_BITS) | cam[1])
        return value

    def forget(self, camera_id: str, track: int) -> None:
        """Drop the mapping of a finished track; the same (camera, track) later gets a new id."""
        self._given.pop((camera_id, int(track)), None)


class RandomPseudonyms(_PermutedCounters):
    """A fresh random id for every track of the session."""

    def __init__(self) -> None:
        super().__init__(secrets.token_bytes(32), secrets.token_bytes(32))


class KeyedPseudonyms(_PermutedCounters):
    """Ids under keys derived from HMAC-SHA256(device key, session): the same key, session and
    per-camera track sequence give the same ids."""

    def __init__(self, key: bytes, session: bytes | None = None) -> None:
        if len(key) < 16:
            raise ValueError(f"pseudonym key must be at least 16 bytes, got {len(key)}")
        self.session = secrets.token_bytes(16) if session is None else bytes(session)
        derive = lambda label: hmac.new(bytes(key), label + b"|" + self.session, hashlib.sha256).digest()  # noqa: E731
        super().__init__(derive(b"permutation"), derive(b"camera-slot"))


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
