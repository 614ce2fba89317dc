"""The device side of MQTT: the one publish path, the outbox in front of it, and the link to the broker.

Every message goes ``fields -> model (validated) -> JSON (size-capped) -> outbox (fsync) -> broker``.
A ``publish_*`` call returns once the message is on disk, so an alert the pipeline handed over
survives a crash; the row is deleted only when its PUBACK arrives (paho ``mid`` -> row id). The one
message that is not in the outbox is the last will, which the broker sends for us; it is still
built from :class:`StatusMessage`.

Status: the will is ``offline`` (QoS 1, retained), re-armed before every connection attempt with a
fresh ``msg_id`` and the connection number; ``online`` is published after every (re)connect; ``stop``
publishes ``stopped`` and drains the outbox before a clean disconnect. A broker that is down at
start is not an error: paho retries with exponential backoff, and messages wait in the outbox.

Threads: the caller's (publish_*), paho's network thread (callbacks only queue events), and one
worker that owns the mid map, hands rows to paho, deletes acknowledged rows and answers commands.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import paho.mqtt.client as mqtt

from edge import __version__
from edge.config import DeviceConfig, TransportConfig
from edge.records import AlertEvent, Poses
from edge.transport.commands import AckArgs, Commands, NoArgs
from edge.transport.messages import MessageError, build, encode, new_msg_id, utc_now
from edge.transport.mqtt_client import make_client
from edge.transport.outbox import Outbox, OutboxFull, Row
from edge.transport.poses import PoseBatcher, Pseudonyms
from edge.transport.topics import QOS, RETAINED, Topics

log = logging.getLogger(__name__)

__all__ = ["Transport", "OutboxFull", "MessageError"]


class Transport:
    """One per device process. ``start()``, ``publish_*()``, ``stop()``."""

    def __init__(self, cfg: TransportConfig, device: DeviceConfig, *, sw_version: str = __version__,
                 models: dict[str, str] | None = None, cameras: Iterable[str] = (), outbox: Outbox | None = None,
                 pseudonyms: Pseudonyms | None = None, session_id: str | None = None, environ=None):
        self.cfg = cfg
        self.device_id = device.device_id
        self.topics = Topics(cfg.topic_prefix, device.store_id, device.device_id)
        path = cfg.outbox_path or Path(device.state_dir) / "outbox.sqlite3"
        self.outbox = outbox or Outbox(path, cfg.outbox_max_messages, cfg.outbox_max_bytes)
        self.session_id = session_id or new_msg_id()
        self.session_started = utc_now()
        self.sw_version = sw_version
        self.models = dict(models or {})
        self.cameras = list(cameras)
        self.pseudonyms = pseudonyms or Pseudonyms()
        self.batcher = PoseBatcher(cfg.poses_max_hz, cfg.poses_sample_fps, self.pseudonyms)
        self.commands = Commands(self.device_id)
        self.commands.register("ack", AckArgs, self._on_ack_command)
        self.commands.register("ping", NoArgs, lambda a: {"pong": True})
        self.commands.register("health", NoArgs, lambda a: {"queued": self.publish_health() is not None})
        self.commands.register("status", NoArgs, lambda a: {"queued": self._publish_status("online") is not None})
        self.health_source: Callable[[], dict] | None = None
        self.on_ack: Callable[[list[str]], None] | None = None
        self._environ = environ
        self._seq = 0
        self._lock = threading.Lock()
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._mid_rows: dict[int, int] = {}
        self._client: mqtt.Client | None = None
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connected = False
        self._connection = 0
        self._t0 = time.monotonic()
        self._next_health = self._t0 + cfg.health_interval_s
        self.reconnects = 0
        self.published = 0
        self.alerts_acked = 0
        self.connect_failures = 0

    # ------------------------------------------------------------------ the publish path
    def _envelope(self, seq: int, msg_id: str) -> dict:
        return {"schema": None, "msg_id": msg_id, "device_id": self.device_id, "session_id": self.session_id,
                "seq": seq, "ts": utc_now(), "sw_version": self.sw_version, "models": self.models}

    def _row(self, kind: str, fields: dict, seq: int, msg_id: str, camera_id=None, verb=None) -> Row:
        env = self._envelope(seq, msg_id)
        env.pop("schema")
        msg = build(kind, {**env, **fields})
        return Row(msg_id, kind, self.topics.for_kind(kind, camera_id, verb), encode(msg), kind in RETAINED)

    def _emit(self, kind: str, fields: dict, *, camera_id=None, verb=None, msg_id=None) -> str | None:
        """Validate, serialize and store one message. Returns its msg_id, or None if the cap policy
        dropped it. Raises :class:`MessageError` (invalid) or :class:`OutboxFull` (an alert)."""
        with self._lock:
            mid = msg_id or new_msg_id()
            if msg_id is not None and self.outbox.contains(mid):
                return mid
            row = self._row(kind, fields, self._seq + 1, mid, camera_id, verb)
            if not self.outbox.put(row):
                return None
            self._seq += 1
        self._wake.set()
        return mid

    # ------------------------------------------------------------------ public publishers
    def alert_fields(self, ev: AlertEvent, alert_id: str | None = None) -> dict:
        return {"alert_id": alert_id or ev.alert_id, "event": getattr(ev.event, "value", ev.event),
                "camera_id": ev.camera_id, "track": self.pseudonyms(ev.camera_id, ev.track_id),
                "started_t": float(ev.started_t), "t": float(ev.t), "frame_index": int(ev.frame_index),
                "score": float(ev.score), "peak_score": float(ev.peak_score), "threshold": float(ev.threshold),
                "zone": ev.zone, "reason": ev.reason or ""}

    def publish_alerts(self, events: list[AlertEvent], *, alert_ids: list[str] | None = None,
                       msg_ids: list[str] | None = None) -> list[str]:
        """Store alert events in one transaction; returns their msg_ids once they are on disk.
        :class:`OutboxFull` means none of them was stored (the caller keeps them and retries)."""
        if not events:
            return []
        with self._lock:
            rows, ids, seq = [], [], self._seq
            for i, ev in enumerate(events):
                mid = msg_ids[i] if msg_ids else new_msg_id()
                ids.append(mid)
                if msg_ids and self.outbox.contains(mid):
                    continue
                seq += 1
                fields = self.alert_fields(ev, alert_ids[i] if alert_ids else None)
                rows.append(self._row("alert", fields, seq, mid, camera_id=ev.camera_id))
            self.outbox.put_many(rows)
            self._seq = seq
        self._wake.set()
        return ids

    def publish_alert(self, ev: AlertEvent, *, alert_id: str | None = None, msg_id: str | None = None) -> str:
        return self.publish_alerts([ev], alert_ids=[alert_id] if alert_id else None,
                                   msg_ids=[msg_id] if msg_id else None)[0]

    def publish_poses(self, poses: Poses, msg_id_for: Callable[[dict], str] | None = None) -> int:
        """Feed one frame to the pose stream; returns how many batches were stored."""
        if not self.cfg.poses_enabled:
            return 0
        return self._emit_batches(self.batcher.add(poses), msg_id_for)

    def flush_poses(self, msg_id_for: Callable[[dict], str] | None = None) -> int:
        return self._emit_batches(self.batcher.flush(), msg_id_for)

    def _emit_batches(self, batches: list[dict], msg_id_for) -> int:
        n = 0
        for b in batches:
            n += self._emit_pose_batch(b, msg_id_for)
        return n

    def _emit_pose_batch(self, b: dict, msg_id_for) -> int:
        try:
            return int(self._emit("poses", b, camera_id=b["camera_id"],
                                  msg_id=msg_id_for(b) if msg_id_for else None) is not None)
        except MessageError:
            if len(b["frames"]) < 2:
                raise
            half = len(b["frames"]) // 2  # too large: split; a single frame always fits the cap
            return (self._emit_pose_batch({**b, "frames": b["frames"][:half]}, msg_id_for)
                    + self._emit_pose_batch({**b, "frames": b["frames"][half:]}, msg_id_for))

    def publish_camera_status(self, camera_id: str, state: str, fps: float | None = None,
                              reason: str | None = None) -> str | None:
        return self._emit("camera_status", {"camera_id": camera_id, "state": state, "fps": fps, "reason": reason},
                          camera_id=camera_id)

    def publish_ota_state(self, state: str, bundle_version: str | None = None, progress: float | None = None,
                          reason: str | None = None) -> str | None:
        return self._emit("ota_state", {"state": state, "bundle_version": bundle_version, "progress": progress,
                                        "reason": reason})

    def health_fields(self) -> dict:
        ob = self.outbox
        fields = {"uptime_s": round(time.monotonic() - self._t0, 3), "connected": self._connected,
                  "reconnects": self.reconnects, "alerts_acked": self.alerts_acked,
                  "outbox": {"depth": ob.depth, "bytes": ob.bytes, "depth_by_kind": ob.depth_by_kind(),
                             "dropped_poses": ob.dropped["poses"], "dropped_health": ob.dropped["health"],
                             "dropped_other": sum(v for k, v in ob.dropped.items() if k not in ("poses", "health")),
                             "refused_alerts": ob.refused_alerts, "dead_letters": ob.dead,
                             "published": self.published}}
        if self.health_source is not None:
            try:
                extra = dict(self.health_source() or {})
            except Exception:
                log.exception("health source failed")
                extra = {}
            for k in ("cameras", "infer_ms", "temperatures_c", "counters"):
                if k in extra:
                    fields[k] = extra[k]
        return fields

    def publish_health(self) -> str | None:
        try:
            return self._emit("health", self.health_fields())
        except MessageError as exc:
            log.error("health message not sent: %s", exc)
            return None

    def _publish_status(self, state: str, reason: str | None = None) -> str | None:
        return self._emit("status", self._status_fields(state, self._connection, reason))

    def _status_fields(self, state: str, connection: int, reason: str | None = None) -> dict:
        return {"state": state, "session_started": self.session_started, "connection": connection,
                "cameras": self.cameras, "reason": reason}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Connect in the background; never fails because the broker is down."""
        if self._worker is not None:
            return
        if self.cfg.enabled:
            c = make_client(self.cfg, self.cfg.client_id or self.device_id, self._environ)
            c.on_pre_connect = self._cb_pre_connect
            c.on_connect = self._cb_connect
            c.on_connect_fail = self._cb_connect_fail
            c.on_disconnect = self._cb_disconnect
            c.on_publish = self._cb_publish
            c.on_message = self._cb_message
            self._arm_will(c, 1)
            c.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s, clean_start=True)
            c.loop_start()
            self._client = c
        self._worker = threading.Thread(target=self._run, name="poselift-transport", daemon=True)
        self._worker.start()

    def wait_drained(self, timeout: float | None = None) -> bool:
        """True once every stored message has been acknowledged by the broker."""
        end = None if timeout is None else time.monotonic() + timeout
        while self.outbox.depth > 0 or self.outbox.inflight > 0:
            if end is not None and time.monotonic() >= end:
                return False
            time.sleep(0.05)
        return True

    def stop(self, timeout: float = 10.0) -> bool:
        """Flush pose batches, publish a last health and ``stopped``, wait up to ``timeout`` s for the outbox to drain,
        disconnect cleanly (no will). Whatever is left stays in the outbox for the next start."""
        try:
            self.flush_poses()
        except (MessageError, OutboxFull) as exc:
            log.warning("pose batches not flushed at stop: %s", exc)
        self.publish_health()  # the final counters (drops, refusals) reach HQ before the device goes
        self._publish_status("stopped")
        drained = self.wait_drained(timeout) if self._client is not None else False
        self._stopping.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout=5)
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
        if not drained:
            log.warning("stopped with %d message(s) still in the outbox", self.outbox.depth)
        self.outbox.close()
        return drained

    @property
    def connected(self) -> bool:
        return self._connected

    def _on_ack_command(self, args: AckArgs) -> dict:
        self.alerts_acked += len(args.msg_ids)
        if self.on_ack is not None:
            self.on_ack(list(args.msg_ids))
        return {"acked": len(args.msg_ids)}

    # ------------------------------------------------------------------ paho callbacks (network thread)
    def _arm_will(self, client: mqtt.Client, connection: int) -> None:
        fields = self._status_fields("offline", connection, "connection lost")
        env = self._envelope(self._seq, new_msg_id())  # the will takes no seq of its own
        env.pop("schema")
        client.will_set(self.topics.status, encode(build("status", {**env, **fields})), qos=QOS, retain=True)

    def _cb_pre_connect(self, client, userdata):
        self._connection += 1
        self._arm_will(client, self._connection)

    def _cb_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.connect_failures += 1
            log.error("broker %s:%d refused the connection: %s", self.cfg.host, self.cfg.port, reason_code)
            return
        self._events.put(("connected", self._connection))
        self._wake.set()

    def _cb_connect_fail(self, client, userdata):
        self.connect_failures += 1
        if self.connect_failures in (1, 10) or self.connect_failures % 100 == 0:
            log.warning("broker %s:%d unreachable (%d attempts); retrying with backoff, messages wait in "
                        "the outbox", self.cfg.host, self.cfg.port, self.connect_failures)

    def _cb_disconnect(self, client, userdata, flags, reason_code, properties):
        self._events.put(("disconnected", str(reason_code)))
        self._wake.set()

    def _cb_publish(self, client, userdata, mid, reason_code, properties):
        self._events.put(("ack", mid, reason_code.is_failure, str(reason_code)))
        self._wake.set()

    def _cb_message(self, client, userdata, msg):
        self._events.put(("message", msg.topic, bytes(msg.payload), bool(msg.retain)))
        self._wake.set()

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(0.2)
            self._wake.clear()
            try:
                self._step()
            except Exception:
                log.exception("transport worker step failed; continuing")
                time.sleep(0.2)

    def _step(self) -> None:
        acks: list[int] = []
        while True:
            try:
                ev = self._events.get_nowait()
            except queue.Empty:
                break
            kind = ev[0]
            if kind == "ack":
                rid = self._mid_rows.pop(ev[1], None)
                if rid is None:
                    continue
                if ev[2]:
                    self.outbox.dead_letter(rid, ev[3])
                else:
                    acks.append(rid)
            elif kind == "connected":
                self._on_connected(ev[1])
            elif kind == "disconnected":
                if self._connected:
                    self.reconnects += 1
                    log.warning("disconnected from broker (%s); reconnecting with backoff", ev[1])
                self._connected = False
            elif kind == "message":
                self._on_command(ev[1], ev[2], ev[3])
        if acks:
            self.published += self.outbox.ack(acks)
        if self._connected:
            self._send()
        now = time.monotonic()
        if now >= self._next_health:
            self._next_health = now + self.cfg.health_interval_s
            self.publish_health()

    def _on_connected(self, connection: int) -> None:
        self._connected = True
        log.info("connected to broker %s:%d (connection %d)", self.cfg.host, self.cfg.port, connection)
        self._client.subscribe(self.topics.commands, qos=QOS)
        self._emit("status", self._status_fields("online", connection))

    def _send(self) -> None:
        room = self.cfg.max_inflight - len(self._mid_rows)
        if room <= 0:
            return
        rows = self.outbox.next_batch(room)
        for i, r in enumerate(rows):
            info = self._client.publish(r.topic, r.payload, qos=QOS, retain=r.retain)
            # NO_CONN: paho keeps QoS 1 messages and sends them after the reconnect
            if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                self._mid_rows[info.mid] = r.id
            else:
                self.outbox.release([x.id for x in rows[i:]])
                break

    def _on_command(self, topic: str, payload: bytes, retained: bool) -> None:
        verb = topic.rsplit("/", 1)[-1]
        result = self.commands.handle(verb, payload, retained)
        try:
            self._emit("command_result", result, verb=result["verb"])
        except MessageError as exc:
            log.error("command result not sent: %s", exc)
