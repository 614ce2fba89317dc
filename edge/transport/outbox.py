"""Durable outbox: every message is committed here (SQLite, WAL, ``synchronous=FULL``) before it is
handed to MQTT, and deleted only when the broker acknowledges it.

Cap policy (``max_messages`` rows and ``max_bytes`` payload bytes), applied when a message arrives
and the outbox is full:

1. the oldest waiting ``poses`` batches are evicted to make room (for any kind of message);
2. then, for anything but poses, the oldest waiting ``health`` messages;
3. if that is not enough, a new poses/health/status/result message is dropped and counted; a new
   **alert is refused**: :class:`OutboxFull` is raised, counted as ``refused_alerts`` and logged as
   an error, so the caller still holds it and can retry. Alerts and state messages are never evicted.

Messages in flight (handed to the MQTT client, no PUBACK yet) are never evicted. Nothing about
"in flight" is stored: after a crash every row is simply sent again, with its original ``msg_id``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from edge.transport.topics import EVICT_RANK, SEND_PRIORITY

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    prio INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_send ON outbox (prio, id);
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox (kind, id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY, msg_id TEXT NOT NULL, kind TEXT NOT NULL, topic TEXT NOT NULL,
    payload BLOB NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class OutboxFull(RuntimeError):
    """An alert could not be stored because the outbox is full of messages that may not be evicted."""


@dataclass(frozen=True)
class Row:
    msg_id: str
    kind: str
    topic: str
    payload: bytes
    retain: bool = False


@dataclass(frozen=True)
class Pending:
    id: int
    msg_id: str
    kind: str
    topic: str
    payload: bytes
    retain: bool


class Outbox:
    """Thread-safe; one connection guarded by a lock (writes are short and each is one fsync)."""

    def __init__(self, path: str | Path, max_messages: int = 100_000, max_bytes: int = 256 * 1024 * 1024,
                 durable: bool = True):
        self.path = Path(path)
        self.max_messages = int(max_messages)
        self.max_bytes = int(max_bytes)
        self._lock = threading.RLock()
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(path) != ":memory:" and mode.lower() != "wal":
                raise sqlite3.OperationalError(f"journal_mode is {mode}, WAL is required")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise RuntimeError(f"outbox {path}: cannot open ({exc})") from None
        self._inflight: set[int] = set()
        self.dropped: Counter[str] = Counter()
        self.refused_alerts = 0
        self.dead = self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
        self._count: Counter[str] = Counter()
        self._bytes = 0
        for kind, n, b in self._db.execute("SELECT kind, COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) "
                                           "FROM outbox GROUP BY kind"):
            self._count[kind] = n
            self._bytes += b

    # ---- state
    @property
    def depth(self) -> int:
        return sum(self._count.values())

    @property
    def bytes(self) -> int:
        return self._bytes

    def depth_by_kind(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in self._count.items() if v}

    def contains(self, msg_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM outbox WHERE msg_id=?", (msg_id,)).fetchone() is not None

    # ---- writing
    def put(self, row: Row) -> bool:
        """Store one message durably. False if it was dropped by the cap policy or is already here."""
        return self.put_many([row])[0]

    def put_many(self, rows: list[Row]) -> list[bool]:
        """Store messages in one transaction (one fsync). Raises :class:`OutboxFull` (storing none of
        them) when an alert among them does not fit."""
        with self._lock:
            out: list[bool] = []
            count, size = Counter(self._count), self._bytes
            evicted: list[tuple[int, str, int]] = []
            dropped: Counter[str] = Counter()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    ok, count, size = self._insert(row, count, size, evicted, dropped)
                    out.append(ok)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._count, self._bytes = count, size
            self.dropped.update(dropped)
            for kind, n in dropped.items():
                log.warning("outbox full: dropped %d %s message(s) (depth %d)", n, kind, self.depth)
            return out

    def _insert(self, row, count, size, evicted, dropped):
        if self._db.execute("SELECT 1 FROM outbox WHERE msg_id=?", (row.msg_id,)).fetchone():
            return False, count, size
        need = len(row.payload)
        rank = EVICT_RANK[row.kind]
        victims = (0,) if rank == 0 else (0, 1)
        for victim_kind_rank in victims:
            kinds = [k for k, r in EVICT_RANK.items() if r == victim_kind_rank]
            while sum(count.values()) + 1 > self.max_messages or size + need > self.max_bytes:
                v = self._oldest_evictable(kinds)
                if v is None:
                    break
                vid, vkind, vlen = v
                self._db.execute("DELETE FROM outbox WHERE id=?", (vid,))
                count[vkind] -= 1
                size -= vlen
                dropped[vkind] += 1
                evicted.append(v)
        if sum(count.values()) + 1 > self.max_messages or size + need > self.max_bytes:
            if row.kind == "alert":
                self.refused_alerts += 1
                log.error("OUTBOX FULL: alert %s refused (%d messages, %d bytes, none evictable); the "
                          "caller keeps it and must retry", row.msg_id, sum(count.values()), size)
                raise OutboxFull(f"outbox {self.path} is full ({sum(count.values())} messages, {size} bytes) "
                                 "of messages that may not be evicted")
            dropped[row.kind] += 1
            return False, count, size
        self._db.execute("INSERT INTO outbox (msg_id, kind, prio, topic, payload, retain, created) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (row.msg_id, row.kind, SEND_PRIORITY[row.kind], row.topic, bytes(row.payload),
                          int(row.retain), time.time()))
        count[row.kind] += 1
        return True, count, size + need

    def _oldest_evictable(self, kinds: list[str]):
        marks = ",".join("?" * len(kinds))
        skip = len(self._inflight)
        for vid, vkind, vlen in self._db.execute(
                f"SELECT id, kind, LENGTH(payload) FROM outbox WHERE kind IN ({marks}) ORDER BY id LIMIT ?",
                (*kinds, skip + 1)):
            if vid not in self._inflight:
                return vid, vkind, vlen
        return None

    # ---- sending
    def next_batch(self, limit: int) -> list[Pending]:
        """Up to ``limit`` waiting messages not yet in flight, in send order; marks them in flight."""
        with self._lock:
            got: list[Pending] = []
            for r in self._db.execute("SELECT id, msg_id, kind, topic, payload, retain FROM outbox "
                                      "ORDER BY prio, id LIMIT ?", (limit + len(self._inflight),)):
                if r[0] in self._inflight:
                    continue
                got.append(Pending(r[0], r[1], r[2], r[3], bytes(r[4]), bool(r[5])))
                self._inflight.add(r[0])
                if len(got) >= limit:
                    break
            return got

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def release(self, ids) -> None:
        """Messages that were not handed over after all (or whose connection died): send again."""
        with self._lock:
            self._inflight.difference_update(ids)

    def release_all(self) -> None:
        with self._lock:
            self._inflight.clear()

    def ack(self, ids: list[int]) -> int:
        """The broker acknowledged these rows: delete them (one transaction)."""
        if not ids:
            return 0
        with self._lock:
            n = 0
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for rid in ids:
                    # no RETURNING: JetPack 5 ships SQLite 3.31
                    r = self._db.execute("SELECT kind, LENGTH(payload) FROM outbox WHERE id=?", (rid,)).fetchone()
                    if r:
                        self._db.execute("DELETE FROM outbox WHERE id=?", (rid,))
                        self._count[r[0]] -= 1
                        self._bytes -= r[1]
                        n += 1
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._inflight.difference_update(ids)
            return n

    def dead_letter(self, rid: int, reason: str) -> None:
        """The broker refused this message (e.g. not authorized): keep it aside, never retry it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            r = self._db.execute("SELECT msg_id, kind, topic, payload FROM outbox WHERE id=?", (rid,)).fetchone()
            if r:
                self._db.execute("DELETE FROM outbox WHERE id=?", (rid,))
                self._db.execute("INSERT INTO dead_letters (msg_id, kind, topic, payload, reason, at) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", (*r, reason, time.time()))
                self._count[r[1]] -= 1
                self._bytes -= len(r[3])
                self.dead += 1
            self._db.execute("COMMIT")
            self._inflight.discard(rid)
            if r:
                log.error("broker refused %s message %s on %s: %s (kept in dead_letters)", r[1], r[0], r[2], reason)

    # ---- small persistent key/value state (replay checkpoints, pseudonym keys)
    def get_meta(self, key: str) -> str | None:
        with self._lock:
            r = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            return r[0] if r else None

    def set_meta(self, items: dict[str, str | None]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            for k, v in items.items():
                if v is None:
                    self._db.execute("DELETE FROM meta WHERE key=?", (k,))
                else:
                    self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                                     "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (k, v))
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
