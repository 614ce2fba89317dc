"""Outbox throughput and message sizes.

in:  alerts per second stored durably (SQLite WAL, synchronous=FULL, one transaction per alert and
     per batch of 10), against the same code on an in-memory database (no disk, no fsync).
out: alerts per second from a full outbox to a real mosquitto (PUBACK, then delete), against plain
     paho QoS 1 publishing of the same payloads with no outbox.
sizes: bytes of typical messages (JSON, as published).

Run: .venv/bin/python bench/bench_outbox.py [--alerts N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from edge.config import DeviceConfig, TransportConfig  # noqa: E402
from edge.records import AlertEvent, AlertPhase, Poses  # noqa: E402
from edge.transport.outbox import Outbox  # noqa: E402
from edge.transport.publisher import Transport  # noqa: E402


def _events(n):
    return [AlertEvent(f"alert-{i // 3}", list(AlertPhase)[i % 3], "cam1", i // 3, 10.0, 10.0 + i, 150 + i,
                       3.21, 3.5, 2.0, "aisle-3") for i in range(n)]


def _transport(d: Path, port: int, outbox_path: str | None = None, **kw) -> Transport:
    cfg = TransportConfig(host="127.0.0.1", port=port, health_interval_s=3600, reconnect_min_s=0.2,
                          reconnect_max_s=1.0, **kw)
    ob = Outbox(outbox_path or d / "outbox.sqlite3", cfg.outbox_max_messages, cfg.outbox_max_bytes)
    return Transport(cfg, DeviceConfig(state_dir=d), outbox=ob, cameras=["cam1"])


def bench_in(d: Path, n: int) -> None:
    evs = _events(n)
    rows = []
    for label, path in (("disk, fsync", d / "in.sqlite3"), ("in-memory baseline", ":memory:")):
        for batch in (1, 10):
            t = _transport(d / label.replace(" ", "_").replace(",", "") / str(batch), 1, str(path) if path == ":memory:"
                           else str(d / f"in{batch}.sqlite3"))
            t0 = time.perf_counter()
            for i in range(0, n, batch):
                t.publish_alerts(evs[i:i + batch])
            dt = time.perf_counter() - t0
            rows.append((label, batch, n / dt))
            t.outbox.close()
    base = {b: r for lab, b, r in rows if lab.startswith("in-memory")}
    print(f"\n== into the outbox ({n} alert events) ==")
    print(f"{'storage':<22}{'per txn':>8}{'alerts/s':>12}{'vs in-memory':>14}")
    for lab, b, r in rows:
        print(f"{lab:<22}{b:>8}{r:>12.0f}{r / base[b]:>13.2f}x")


def bench_out(d: Path, n: int) -> None:
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        print("\n== out of the outbox: skipped (mosquitto not installed) ==")
        return
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from mqtt_broker import Broker

    with Broker(d / "broker") as b:
        t = _transport(d / "out", b.port)
        t.publish_alerts(_events(n))  # filled while not connected
        payloads = [r.payload for r in t.outbox.next_batch(n)]
        t.outbox.release_all()
        t0 = time.perf_counter()
        t.start()
        assert t.wait_drained(120)
        dt_outbox = time.perf_counter() - t0
        t.stop(5)

        done = threading.Event()
        acked = [0]

        def on_pub(c, u, mid, rc, props):
            acked[0] += 1
            if acked[0] >= n:
                done.set()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=mqtt.MQTTv5)
        c.on_publish = on_pub
        c.max_inflight_messages_set(32)
        c.connect("127.0.0.1", b.port)
        c.loop_start()
        time.sleep(0.3)
        t0 = time.perf_counter()
        for p in payloads:
            c.publish("bench/raw", p, qos=1)
        done.wait(120)
        dt_raw = time.perf_counter() - t0
        c.disconnect()
        c.loop_stop()
    print(f"\n== out of the outbox to mosquitto ({n} alert events, QoS 1, 32 in flight) ==")
    print(f"{'path':<34}{'alerts/s':>10}{'vs raw paho':>13}")
    print(f"{'outbox -> broker -> delete on PUBACK':<34}{n / dt_outbox:>10.0f}{dt_raw / dt_outbox:>12.2f}x")
    print(f"{'raw paho QoS 1 (no outbox)':<34}{n / dt_raw:>10.0f}{1.0:>12.2f}x")


def bench_sizes(d: Path) -> None:
    t = _transport(d / "sizes", 1)
    t.publish_alert(_events(1)[0])
    t.publish_health()
    t._publish_status("online")
    t.publish_camera_status("cam1", "online", fps=15.0)
    t.publish_ota_state("trial", bundle_version="2026.12.1", progress=0.5)
    t._emit("command_result", {"verb": "ack", "ok": True, "command_msg_id": "0" * 32, "detail": {"acked": 12}},
            verb="ack")
    rng = np.random.default_rng(0)
    for people in (1, 5, 20):
        kp = np.concatenate([rng.uniform(0, 1000, (people, 17, 2)), rng.uniform(0, 1, (people, 17, 1))], -1)
        boxes = np.tile(np.array([[100, 100, 300, 700]], np.float32), (people, 1))
        t.batcher = type(t.batcher)(2.0, 5.0, t.pseudonyms)
        for f in range(8):  # 8 frames at 15 fps = one 0.5 s batch (2 batches/s), 3 frames kept at 5 fps
            t.publish_poses(Poses(f"cam{people}", f, f / 15, np.arange(people), boxes, kp, (), (1920, 1080)))
        t.flush_poses()
    print("\n== typical message sizes (compact JSON, bytes) ==")
    rows = t.outbox._db.execute("SELECT kind, topic, LENGTH(payload) FROM outbox ORDER BY id").fetchall()
    for kind, topic, size in rows:
        what = kind
        if kind == "poses":
            what = f"poses ({topic.split('/')[-2][3:]} people, 3 frames)"
        print(f"  {what:<32}{size:>7}")
    t.outbox.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=1500)
    args = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="bench_outbox_"))
    try:
        bench_sizes(d)
        bench_in(d, args.alerts)
        bench_out(d, args.alerts)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
