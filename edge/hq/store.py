"""HQ's SQLite database: alerts with their lifecycle, health, device status, command results.

``ingest(topic, payload)`` validates every message again against the device models (HQ trusts the
schema, not the sender), checks that the payload's ``device_id`` matches its topic, and stores it
once: a ``msg_id`` seen before is a duplicate (counted, not stored again). Every envelope's
``(session_id, seq)`` is recorded, duplicates included, so :meth:`gaps` lists what never arrived.

Device availability follows the status messages in ``(session_started, connection, state rank)``
order, so a last will that arrives after the next connection's birth does not mark a live device
offline.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge.transport.messages import MessageError, decode
from edge.transport.topics import parse

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    msg_id TEXT PRIMARY KEY, kind TEXT NOT NULL, store TEXT NOT NULL, device TEXT NOT NULL,
    session_id TEXT NOT NULL, seq INTEGER NOT NULL, ts TEXT NOT NULL, received REAL NOT NULL);
CREATE TABLE IF NOT EXISTS seen (
    store TEXT NOT NULL, device TEXT NOT NULL, session_id TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (store, device, session_id, seq));
CREATE TABLE IF NOT EXISTS alert_events (
    msg_id TEXT PRIMARY KEY, alert_id TEXT NOT NULL, event TEXT NOT NULL, store TEXT NOT NULL,
    device TEXT NOT NULL, camera TEXT NOT NULL, track TEXT NOT NULL, session_id TEXT NOT NULL,
    seq INTEGER NOT NULL, ts TEXT NOT NULL, t REAL NOT NULL, started_t REAL NOT NULL,
    frame_index INTEGER NOT NULL, score REAL NOT NULL, peak_score REAL NOT NULL, threshold REAL NOT NULL,
    zone TEXT, reason TEXT, received REAL NOT NULL);
CREATE INDEX IF NOT EXISTS alert_events_alert ON alert_events (store, device, alert_id);
CREATE TABLE IF NOT EXISTS alerts (
    store TEXT NOT NULL, device TEXT NOT NULL, alert_id TEXT NOT NULL, camera TEXT NOT NULL,
    track TEXT NOT NULL, state TEXT NOT NULL, first_ts TEXT NOT NULL, last_ts TEXT NOT NULL,
    started_t REAL NOT NULL, ended_t REAL, peak_score REAL NOT NULL, threshold REAL NOT NULL,
    zone TEXT, events INTEGER NOT NULL, PRIMARY KEY (store, device, alert_id));
CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (first_ts);
CREATE TABLE IF NOT EXISTS health (
    msg_id TEXT PRIMARY KEY, store TEXT NOT NULL, device TEXT NOT NULL, ts TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    store TEXT NOT NULL, device TEXT NOT NULL, state TEXT NOT NULL, session_id TEXT NOT NULL,
    status_key TEXT NOT NULL, status_ts TEXT NOT NULL, sw_version TEXT NOT NULL, last_seen REAL NOT NULL,
    PRIMARY KEY (store, device));
CREATE TABLE IF NOT EXISTS cameras (
    store TEXT NOT NULL, device TEXT NOT NULL, camera TEXT NOT NULL, state TEXT NOT NULL, ts TEXT NOT NULL,
    PRIMARY KEY (store, device, camera));
CREATE TABLE IF NOT EXISTS pose_counts (
    store TEXT NOT NULL, device TEXT NOT NULL, camera TEXT NOT NULL, batches INTEGER NOT NULL,
    frames INTEGER NOT NULL, last_ts TEXT NOT NULL, PRIMARY KEY (store, device, camera));
CREATE TABLE IF NOT EXISTS command_results (
    msg_id TEXT PRIMARY KEY, store TEXT NOT NULL, device TEXT NOT NULL, verb TEXT NOT NULL, ok INTEGER NOT NULL,
    error TEXT, command_msg_id TEXT, ts TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ota_states (
    msg_id TEXT PRIMARY KEY, store TEXT NOT NULL, device TEXT NOT NULL, state TEXT NOT NULL, ts TEXT NOT NULL,
    body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY, topic TEXT NOT NULL, reason TEXT NOT NULL, size INTEGER NOT NULL, received REAL NOT NULL);
"""

_RANK = {"online": 0, "offline": 1, "stopped": 1}


@dataclass(frozen=True)
class Ingested:
    outcome: str  # "stored" | "duplicate" | "rejected" | "ignored"
    kind: str | None = None
    store: str | None = None
    device: str | None = None
    msg_id: str | None = None
    reason: str | None = None


def _ts(dt) -> str:
    return dt.isoformat().replace("+00:00", "Z")


class HqStore:
    def __init__(self, path: str | Path, prefix: str = "poselift/v1"):
        self.path = Path(path)
        self.prefix = prefix
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.duplicates = 0

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _tx(self):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ------------------------------------------------------------------ ingest
    def ingest(self, topic: str, payload: bytes, retained: bool = False) -> Ingested:
        info = parse(topic, self.prefix)
        if info is None or info.kind == "command":
            return Ingested("ignored", reason="not a device topic")
        try:
            msg = decode(info.kind, payload)
        except MessageError as exc:
            return self._reject(topic, str(exc), len(payload))
        if msg.device_id != info.device:
            return self._reject(topic, f"payload device_id {msg.device_id!r} does not match the topic", len(payload))
        if info.kind == "status" and msg.state == "offline":
            # written by the broker (last will): its seq is not the device's, keep it out of gap counting
            with self._tx():
                new = self._db.execute("INSERT OR IGNORE INTO messages VALUES (?,?,?,?,?,?,?,?)",
                                       (msg.msg_id, info.kind, info.store, info.device, msg.session_id, -1,
                                        _ts(msg.ts), time.time())).rowcount
                if new:
                    self._status(info, msg)
            return self._done(new, info, msg)
        with self._tx():
            self._db.execute("INSERT OR IGNORE INTO seen VALUES (?,?,?,?)",
                             (info.store, info.device, msg.session_id, msg.seq))
            new = self._db.execute("INSERT OR IGNORE INTO messages VALUES (?,?,?,?,?,?,?,?)",
                                   (msg.msg_id, info.kind, info.store, info.device, msg.session_id, msg.seq,
                                    _ts(msg.ts), time.time())).rowcount
            if new:
                getattr(self, f"_{info.kind}")(info, msg)
        return self._done(new, info, msg)

    def _done(self, new: int, info, msg) -> Ingested:
        if not new:
            self.duplicates += 1
        return Ingested("stored" if new else "duplicate", info.kind, info.store, info.device, msg.msg_id)

    def _reject(self, topic: str, reason: str, size: int) -> Ingested:
        with self._tx():
            self._db.execute("INSERT INTO rejected (topic, reason, size, received) VALUES (?,?,?,?)",
                             (topic[:300], reason[:500], size, time.time()))
        return Ingested("rejected", reason=reason)

    def _alert(self, info, m) -> None:
        ts = _ts(m.ts)
        self._db.execute("INSERT INTO alert_events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         (m.msg_id, m.alert_id, m.event, info.store, info.device, m.camera_id, m.track, m.session_id,
                          m.seq, ts, m.t, m.started_t, m.frame_index, m.score, m.peak_score, m.threshold, m.zone,
                          m.reason, time.time()))
        self._db.execute(
            "INSERT INTO alerts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,1) ON CONFLICT (store, device, alert_id) DO UPDATE SET "
            "state = CASE WHEN excluded.state = 'ended' OR alerts.state = 'ended' THEN 'ended' ELSE 'open' END, "
            "first_ts = MIN(alerts.first_ts, excluded.first_ts), last_ts = MAX(alerts.last_ts, excluded.last_ts), "
            "ended_t = COALESCE(excluded.ended_t, alerts.ended_t), "
            "peak_score = MAX(alerts.peak_score, excluded.peak_score), events = alerts.events + 1",
            (info.store, info.device, m.alert_id, m.camera_id, m.track, "ended" if m.event == "end" else "open",
             ts, ts, m.started_t, m.t if m.event == "end" else None, m.peak_score, m.threshold, m.zone))

    def _status(self, info, m) -> None:
        key = json.dumps([_ts(m.session_started), m.connection, _RANK[m.state]])
        row = self._db.execute("SELECT status_key FROM devices WHERE store=? AND device=?",
                               (info.store, info.device)).fetchone()
        if row is not None and json.loads(row[0]) >= json.loads(key):
            return  # an older status (e.g. a late last will) does not override a newer one
        self._db.execute("INSERT INTO devices VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (store, device) DO UPDATE SET "
                         "state=excluded.state, session_id=excluded.session_id, status_key=excluded.status_key, "
                         "status_ts=excluded.status_ts, sw_version=excluded.sw_version, last_seen=excluded.last_seen",
                         (info.store, info.device, m.state, m.session_id, key, _ts(m.ts), m.sw_version, time.time()))

    def _health(self, info, m) -> None:
        self._db.execute("INSERT INTO health VALUES (?,?,?,?,?)",
                         (m.msg_id, info.store, info.device, _ts(m.ts), m.model_dump_json(by_alias=True)))

    def _camera_status(self, info, m) -> None:
        self._db.execute("INSERT INTO cameras VALUES (?,?,?,?,?) ON CONFLICT (store, device, camera) DO UPDATE SET "
                         "state=excluded.state, ts=excluded.ts WHERE excluded.ts >= cameras.ts",
                         (info.store, info.device, m.camera_id, m.state, _ts(m.ts)))

    def _poses(self, info, m) -> None:
        # counted only: keypoints are pseudonymous personal data and HQ keeps no copy by default
        self._db.execute("INSERT INTO pose_counts VALUES (?,?,?,1,?,?) ON CONFLICT (store, device, camera) DO UPDATE "
                         "SET batches = batches + 1, frames = frames + excluded.frames, last_ts = excluded.last_ts",
                         (info.store, info.device, m.camera_id, len(m.frames), _ts(m.ts)))

    def _command_result(self, info, m) -> None:
        self._db.execute("INSERT INTO command_results VALUES (?,?,?,?,?,?,?,?)",
                         (m.msg_id, info.store, info.device, m.verb, int(m.ok), m.error, m.command_msg_id, _ts(m.ts)))

    def _ota_state(self, info, m) -> None:
        self._db.execute("INSERT INTO ota_states VALUES (?,?,?,?,?,?)",
                         (m.msg_id, info.store, info.device, m.state, _ts(m.ts), m.model_dump_json(by_alias=True)))

    # ------------------------------------------------------------------ queries
    def query(self, sql: str, args=()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def alerts(self, since: str | None = None, store: str | None = None) -> list[dict]:
        sql = ("SELECT store, device, alert_id, camera, track, state, first_ts, last_ts, started_t, ended_t, "
               "peak_score, threshold, zone, events FROM alerts WHERE 1=1")
        args: list = []
        if since:
            sql += " AND last_ts >= ?"
            args.append(since)
        if store:
            sql += " AND store = ?"
            args.append(store)
        cols = ["store", "device", "alert_id", "camera", "track", "state", "first_ts", "last_ts", "started_t",
                "ended_t", "peak_score", "threshold", "zone", "events"]
        return [dict(zip(cols, r)) for r in self.query(sql + " ORDER BY first_ts, alert_id", args)]

    def alert_events(self, store: str | None = None) -> list[dict]:
        cols = ["store", "device", "alert_id", "event", "camera", "track", "session_id", "seq", "frame_index",
                "t", "msg_id"]
        sql = f"SELECT {', '.join(cols)} FROM alert_events"
        args: tuple = ()
        if store:
            sql += " WHERE store = ?"
            args = (store,)
        return [dict(zip(cols, r)) for r in self.query(sql + " ORDER BY store, device, t, frame_index, seq", args)]

    def devices(self) -> list[dict]:
        cols = ["store", "device", "state", "session_id", "status_ts", "sw_version"]
        return [dict(zip(cols, r)) for r in self.query(f"SELECT {', '.join(cols)} FROM devices ORDER BY store, device")]

    def gaps(self) -> list[dict]:
        """Per device session, the seq ranges that never arrived (``[first, last]`` inclusive)."""
        out = []
        rows = self.query("SELECT store, device, session_id, seq FROM seen ORDER BY store, device, session_id, seq")
        cur, expect, missing, n = None, 1, [], 0
        for store, device, session, seq in rows + [(None, None, None, None)]:
            if (store, device, session) != cur:
                if cur is not None:
                    out.append({"store": cur[0], "device": cur[1], "session_id": cur[2], "received": n,
                                "last_seq": expect - 1, "missing": missing,
                                "missing_count": sum(b - a + 1 for a, b in missing)})
                cur, expect, missing, n = (store, device, session), 1, [], 0
            if seq is None:
                break
            if seq > expect:
                missing.append([expect, seq - 1])
            expect = max(expect, seq + 1)
            n += 1
        return out
