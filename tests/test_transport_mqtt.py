"""The device transport against a real mosquitto: birth / will / stopped, reconnects, a broker that is
down at start, redelivery after SIGKILL with the original msg_ids, command fuzzing over the broker."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path


from mqtt_broker import Broker, Recorder, free_port, fuzz_commands, report, require_mosquitto

from edge.config import DeviceConfig, TransportConfig
from edge.records import AlertEvent, AlertPhase
from edge.transport.publisher import Transport

ROOT = Path(__file__).resolve().parents[1]

DEVICE = r'''
import json, os, sys, time
from pathlib import Path
from edge.config import DeviceConfig, TransportConfig
from edge.records import AlertEvent, AlertPhase
from edge.transport.publisher import Transport
cfg = TransportConfig(host="127.0.0.1", port=int(os.environ["PORT"]), reconnect_min_s=0.2, reconnect_max_s=1.0,
                      keepalive_s=5, health_interval_s=3600)
t = Transport(cfg, DeviceConfig(state_dir=Path(os.environ["STATE"])), cameras=["cam1"])
t.start()
n = int(os.environ.get("ALERTS", "0"))
ids = t.publish_alerts([AlertEvent(f"a{i}", AlertPhase.NEW, "cam1", i, 1.0, 1.0, i, 3.0, 3.0, 2.0) for i in range(n)])
print(json.dumps({"session": t.session_id, "ids": ids}), flush=True)
if os.environ.get("WAIT_DRAIN"):
    while not t.connected:
        time.sleep(0.02)
    time.sleep(0.2)
    t.wait_drained(10)
    print("drained", flush=True)
time.sleep(3600)
'''


def _cfg(port, **kw):
    base = dict(host="127.0.0.1", port=port, reconnect_min_s=0.2, reconnect_max_s=1.0, keepalive_s=5,
                health_interval_s=3600)
    base.update(kw)
    return TransportConfig(**base)


def _spawn(tmp_path, port, **env):
    tmp_path.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "device.py"
    script.write_text(DEVICE)
    e = dict(os.environ, PORT=str(port), STATE=str(tmp_path / "state"), PYTHONPATH=str(ROOT), **env)
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=e, cwd=ROOT)


def _payloads(rec, suffix):
    return [json.loads(p) for t, p, r in rec.take(lambda t, p, r: t.endswith(suffix))]


def _ev(i, phase=AlertPhase.NEW):
    return AlertEvent(f"a{i}", phase, "cam1", i, 1.0, 1.0, i, 3.0, 3.0, 2.0)


def test_status_birth_will_reconnect_stopped(tmp_path):
    with Broker(tmp_path / "b") as b:
        rec = Recorder(b.port, ["poselift/#"])
        dev = _spawn(tmp_path / "p", b.port, WAIT_DRAIN="1")
        try:
            first = json.loads(dev.stdout.readline())
            assert dev.stdout.readline().strip() == "drained"
            dev.send_signal(signal.SIGKILL)
            dev.wait(10)
        finally:
            if dev.poll() is None:
                dev.kill()
        st = rec.wait_for(lambda t, p, r: t.endswith("/status") and b'"offline"' in p, timeout=10)
        assert st, "the broker did not publish the last will"
        states = [s["state"] for s in _payloads(rec, "/status")]
        assert states[0] == "online" and states[-1] == "offline"
        assert {s["session_id"] for s in _payloads(rec, "/status")} == {first["session"]}

        # in-process device: online, broker restart -> online again on connection 2, clean stop -> stopped
        t = Transport(_cfg(b.port), DeviceConfig(state_dir=tmp_path / "s2"), cameras=["cam1"])
        t.start()
        assert rec.wait_for(lambda tp, p, r: tp.endswith("/status") and t.session_id.encode() in p
                            and b'"online"' in p)
        rec.close()
        b.restart()
        rec = Recorder(b.port, ["poselift/#"])
        t.publish_alert(_ev(1))
        got = rec.wait_for(lambda tp, p, r: tp.endswith("/status") and b'"connection":2' in p
                           and b'"online"' in p, timeout=15)
        assert got, "no birth after the reconnect"
        assert rec.wait_for(lambda tp, p, r: tp.endswith("/alerts"))
        assert t.stop(timeout=10)
        rec.close()
        retained = Recorder(b.port, ["poselift/v1/+/+/status"])
        got = retained.wait_for(lambda tp, p, r: r, timeout=5)
        retained.close()
        assert json.loads(got[-1][1])["state"] == "stopped"


def test_broker_down_at_start_then_crash_redelivers_same_ids(tmp_path, request):
    require_mosquitto()
    port = free_port()
    dev = _spawn(tmp_path, port, ALERTS="25")
    try:
        first = json.loads(dev.stdout.readline())  # returned once the alerts are on disk; broker still down
        time.sleep(0.5)
        assert dev.poll() is None, "a missing broker must not be fatal"
        dev.send_signal(signal.SIGKILL)
        dev.wait(10)
    finally:
        if dev.poll() is None:
            dev.kill()
    t = Transport(_cfg(port), DeviceConfig(state_dir=tmp_path / "state"))
    t.start()  # still no broker
    time.sleep(0.5)
    assert t.outbox.depth >= 25 and not t.connected
    with Broker(tmp_path / "b", port=port) as b:
        rec = Recorder(b.port, ["poselift/#"])
        assert t.wait_drained(20)
        alerts = rec.wait_for(lambda tp, p, r: tp.endswith("/alerts"), count=25)
        got = [json.loads(p) for _, p, _ in alerts]
        assert sorted(a["msg_id"] for a in got) == sorted(first["ids"])  # none lost, none new
        assert {a["session_id"] for a in got} == {first["session"]}  # sent as written before the crash
        assert sorted(a["seq"] for a in got) == list(range(1, 26))
        report(request, "crash-redelivery", f"{len(got)} of {len(first['ids'])} alerts redelivered after SIGKILL "
               "with their original msg_ids")
        t.stop(5)
        rec.close()


def test_command_fuzz_over_broker(tmp_path, request):
    """1,200 commands, most of them broken: each gets exactly one result, the device keeps running."""
    n = 1200
    with Broker(tmp_path / "b") as b:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        hq = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fuzzer", protocol=mqtt.MQTTv5)
        hq.connect("127.0.0.1", b.port)
        hq.loop_start()
        rec = Recorder(b.port, ["poselift/v1/+/+/cmd/+/result"])
        t = Transport(_cfg(b.port, max_inflight=100), DeviceConfig(state_dir=tmp_path / "s"))
        base = t.topics.base
        # a retained command waiting on the broker reaches the device with the retain flag: refused
        stale = next(fuzz_commands(random.Random(1), t.device_id, 3))[1]
        hq.publish(f"{base}/cmd/ping", stale, qos=1, retain=True).wait_for_publish(10)
        t.start()
        end = time.monotonic() + 10
        while not t.connected and time.monotonic() < end:
            time.sleep(0.05)
        assert rec.wait_for(lambda tp, p, r: b"retained commands are ignored" in p, timeout=10)
        hq.publish(f"{base}/cmd/ping", b"", qos=1, retain=True).wait_for_publish(10)
        rng = random.Random(20261204)
        sent = 0
        for verb, payload, retain in fuzz_commands(rng, t.device_id, n):
            hq.publish(f"{base}/cmd/{verb}", payload, qos=1).wait_for_publish(10)
            sent += 1
        results = rec.wait_for(lambda tp, p, r: True, count=sent, timeout=60)
        hq.disconnect()
        hq.loop_stop()
        parsed = [json.loads(p) for _, p, _ in results]
        ok = sum(r["ok"] for r in parsed)
        report(request, "command-fuzz", f"{sent} sent, {len(parsed)} results ({ok} ok, {len(parsed) - ok} errors), "
              f"device alive: {t._worker.is_alive()}")
        assert t._worker.is_alive() and t.connected
        # every command is answered once (plus the stale retained one and its empty clean-up)
        assert sent <= len(parsed) <= sent + 2
        assert all(r["schema"] == "poselift.command_result/1" for r in parsed)
        assert all(r["ok"] or r["error"] for r in parsed)
        assert any(r["ok"] and r["verb"] == "ping" for r in parsed)
        assert any("unknown verb" in (r.get("error") or "") for r in parsed)
        assert any("retained" in (r.get("error") or "") for r in parsed)
        assert any("malformed JSON" in (r.get("error") or "") for r in parsed)
        assert any("bytes; commands are at most" in (r.get("error") or "") for r in parsed)
        assert any(r["verb"] == "invalid" for r in parsed)
        assert t.stop(10)
        rec.close()
