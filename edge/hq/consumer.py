"""HQ consumer: subscribes to every store's devices, stores what they publish, acknowledges alerts.

It connects with a persistent session (MQTT v5, clean start off, a long session expiry) and a fixed
client id, so the broker keeps HQ's subscription and queues messages while HQ is away; it subscribes
again on every connect in case the broker lost the session. Each alert message, new or duplicate,
is acknowledged back to its device on ``cmd/ack`` (acks are batched per device).
"""

from __future__ import annotations

import logging
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.hq.store import HqStore
from edge.transport.messages import build, encode, new_msg_id, utc_now
from edge.transport.topics import QOS, subscriptions

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
ACK_BATCH = 100


class Consumer:
    def __init__(self, store: HqStore, host: str, port: int, *, prefix: str = "poselift/v1",
                 client_id: str = "poselift-hq", username: str | None = None, password: str | None = None,
                 tls_context=None, ack: bool = True):
        self.store = store
        self.host, self.port = host, port
        self.prefix = prefix.strip("/")
        self.client_id = client_id
        self.ack_enabled = ack
        self.counts = {"stored": 0, "duplicate": 0, "rejected": 0, "ignored": 0, "acks_sent": 0}
        self._acks: dict[tuple[str, str], list[str]] = {}
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self._stopping = False
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if username:
            c.username_pw_set(username, password)
        if tls_context is not None:
            c.tls_set_context(tls_context)
        c.reconnect_delay_set(min_delay=0.5, max_delay=30)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        self._client = c

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        self._client.connect_async(self.host, self.port, keepalive=30, clean_start=False, properties=props)
        self._client.loop_start()

    def stop(self) -> None:
        self.flush_acks()
        time.sleep(0.1)
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("broker refused HQ connection: %s", reason_code)
            return
        client.subscribe([(t, QOS) for t in subscriptions(self.prefix)])
        log.info("HQ connected to %s:%d (session present: %s)", self.host, self.port, flags.session_present)
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        if not self._stopping:
            log.warning("HQ disconnected (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, msg):
        try:
            res = self.store.ingest(msg.topic, bytes(msg.payload), bool(msg.retain))
        except Exception:
            log.exception("could not store message on %s", msg.topic)
            return
        self.counts[res.outcome] = self.counts.get(res.outcome, 0) + 1
        if res.outcome == "rejected":
            log.warning("rejected message on %s: %s", msg.topic, res.reason)
        if res.kind == "alert" and res.outcome in ("stored", "duplicate") and self.ack_enabled:
            with self._lock:
                pending = self._acks.setdefault((res.store, res.device), [])
                pending.append(res.msg_id)
                full = len(pending) >= ACK_BATCH
            if full:
                self.flush_acks()

    def flush_acks(self) -> int:
        with self._lock:
            batches, self._acks = self._acks, {}
        n = 0
        for (store, device), ids in batches.items():
            for i in range(0, len(ids), ACK_BATCH):
                cmd = build("command", {"schema": "poselift.command/1", "msg_id": new_msg_id(), "ts": utc_now(),
                                        "sender": self.client_id.replace(".", "-")[:64] or "hq",
                                        "device_id": device, "args": {"msg_ids": ids[i:i + ACK_BATCH]}})
                self._client.publish(f"{self.prefix}/{store}/{device}/cmd/ack", encode(cmd), qos=QOS, retain=False)
                n += 1
        self.counts["acks_sent"] += n
        return n

    def run(self, stop: threading.Event, ack_interval_s: float = 0.2, report_interval_s: float = 60.0) -> None:
        """Serve until ``stop`` is set: flush acks, log new sequence gaps now and then."""
        last_report, last_gaps = time.monotonic(), None
        while not stop.wait(ack_interval_s):
            self.flush_acks()
            if time.monotonic() - last_report >= report_interval_s:
                last_report = time.monotonic()
                gaps = [(g["store"], g["device"], g["session_id"], g["missing_count"]) for g in self.store.gaps()
                        if g["missing_count"]]
                if gaps != last_gaps:
                    for s, d, sess, n in gaps:
                        log.warning("seq gaps: %s/%s session %s is missing %d message(s)", s, d, sess[:8], n)
                    last_gaps = gaps
