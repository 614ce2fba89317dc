"""End to end: a simulated store replayed through the scoring core and the transport to a real
mosquitto, with the HQ consumer attached; then the same under faults (broker down 30 s, device
SIGKILLed and restarted, outbox filled to its cap). HQ must hold every alert event the pipeline
raised, exactly once, in lifecycle order per alert."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import typing
from collections import Counter
from pathlib import Path

import pytest

from conftest import shared_path
from mqtt_broker import Broker, Recorder, free_port, report, require_mosquitto

from edge.transport.messages import MAX_PAYLOAD_BYTES, MODELS, decode
from edge.transport.topics import parse

ROOT = Path(__file__).resolve().parents[1]
THRESHOLD = 2.0
ALERTING = "[alerting]\nmin_duration_s = 0.3\ncooldown_s = 1.0\nupdate_interval_s = 0.5\nend_after_s = 0.5\n"


@pytest.fixture(scope="module")
def store_data(tmp_path_factory):
    """A small simulated store, the reference STG-NF weights, and the events the pipeline raises."""
    require_mosquitto()
    weights = shared_path("reference", "stgnf", "weights.npz")
    d = tmp_path_factory.mktemp("store")
    from edge.cli import main as edge_main

    assert edge_main(["simulate", "--out", str(d / "sim"), "--scale", "small", "--quiet"]) == 0
    from edge.scoring.importer import import_stgnf

    import_stgnf(weights, d / "model")
    from edge.config import parse_config
    from edge.datasets.poselift import read_poselift_dataset
    from edge.scoring import load_scorer
    from edge.service.pipeline import ScoringPipeline
    from edge.sources.replay import iter_replay

    pipe = ScoringPipeline(parse_config(ALERTING), load_scorer(d / "model"), threshold=THRESHOLD,
                           alert_id_key="reference")
    events = []
    for _, poses in iter_replay(read_poselift_dataset(d / "sim").test):
        events += pipe.process(poses)
    events += pipe.finish()
    assert len({e.alert_id for e in events}) >= 5, "the simulated store should raise several alerts"
    return d, events


def _config(path: Path, state: Path, **transport) -> Path:
    t = {"health_interval_s": 1.0, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0, "keepalive_s": 5, **transport}
    path.write_text('[device]\nstore_id = "store-7"\ndevice_id = "edge-7a"\n'
                    f'state_dir = "{state}"\n' + ALERTING + "[transport]\n"
                    + "".join(f"{k} = {json.dumps(v)}\n" for k, v in t.items()))
    return path


def _replay(d: Path, cfg: Path, port: int, speed: float, log: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "edge.cli", "replay", "--data", str(d / "sim"), "--model",
                             str(d / "model"), "--config", str(cfg), "--broker", f"127.0.0.1:{port}",
                             "--speed", str(speed), "--threshold", str(THRESHOLD), "--log-level", "info"],
                            stdout=subprocess.PIPE, stderr=open(log, "ab"), text=True, env=env, cwd=ROOT)


class Hq:
    """The HQ consumer in this process, on its own thread."""

    def __init__(self, port: int, db: Path):
        from edge.hq.consumer import Consumer
        from edge.hq.store import HqStore

        self.store = HqStore(db)
        self.consumer = Consumer(self.store, "127.0.0.1", port, client_id="hq-test")
        self.consumer.start()
        assert self.consumer.connected.wait(10)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self.consumer.run, args=(self._stop,), daemon=True)
        self._t.start()

    def alert_events(self):
        return self.store.alert_events()

    def close(self):
        self._stop.set()
        self._t.join(5)
        self.consumer.stop()


def _wait(pred, timeout, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def _check_against(reference, hq_rows, label, request) -> dict:
    """Every reference event in HQ exactly once; lifecycle order per alert."""
    ref = Counter((e.camera_id, e.event.value, int(e.frame_index)) for e in reference)
    got = Counter((r["camera"], r["event"], int(r["frame_index"])) for r in hq_rows)
    per_alert: dict[str, list] = {}
    for r in sorted(hq_rows, key=lambda r: (r["t"], r["frame_index"])):
        per_alert.setdefault(r["alert_id"], []).append(r["event"])
    counts = {"raised": sum(ref.values()), "in_hq": len(hq_rows), "missing": sum((ref - got).values()),
              "duplicated_or_extra": sum((got - ref).values()), "alerts": len(per_alert)}
    report(request, label, ", ".join(f"{k}={v}" for k, v in counts.items()))
    assert counts["missing"] == 0, f"{label}: lost {ref - got}"
    assert counts["duplicated_or_extra"] == 0, f"{label}: duplicates {got - ref}"
    for aid, phases in per_alert.items():
        assert phases[0] == "new" and phases[-1] == "end" and set(phases[1:-1]) <= {"update"}, (aid, phases)
        assert len({(aid, p) for p in phases}) >= 1
    return counts


_B64 = re.compile(rb"[A-Za-z0-9+/]{80,}={0,2}")
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"\x00\x00\x00\x01", b"/9j/", b"iVBORw0KGgo")


def _fields(model) -> set[str]:
    out = set()
    for name, f in model.model_fields.items():
        out.add(f.serialization_alias or f.alias or name)
    return out


def _check_privacy(messages) -> dict:
    from pydantic import BaseModel
    sizes: dict[str, list[int]] = {}
    for topic, payload, _ in messages:
        info = parse(topic, "poselift/v1")
        assert info is not None, f"undocumented topic {topic}"
        assert len(payload) <= MAX_PAYLOAD_BYTES, (topic, len(payload))
        assert not _B64.search(payload), f"base64-like blob on {topic}"
        assert not any(m in payload for m in _MAGIC), f"image/video signature on {topic}"
        decode(info.kind, payload)  # strict model: documented fields only, right types
        raw = json.loads(payload)

        def nested(ann):
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                return ann
            for arg in typing.get_args(ann):
                found = nested(arg)
                if found:
                    return found
            return None

        def walk(obj, model):  # documented fields only, at every level
            if isinstance(obj, list):
                for v in obj:
                    walk(v, model)
            elif isinstance(obj, dict) and model is not None:
                names = {(f.serialization_alias or f.alias or n): n for n, f in model.model_fields.items()}
                assert set(obj) <= set(names), (topic, set(obj) - set(names))
                for k, v in obj.items():
                    walk(v, nested(model.model_fields[names[k]].annotation))
            elif isinstance(obj, dict):
                for v in obj.values():
                    walk(v, None)
            elif isinstance(obj, str):
                assert len(obj) <= 300, (topic, obj[:50])
        walk(raw, MODELS[info.kind])
        sizes.setdefault(info.kind, []).append(len(payload))
    return {k: (len(v), round(sum(v) / len(v)), max(v)) for k, v in sizes.items()}


def test_end_to_end_replay_and_privacy(store_data, tmp_path, request):
    d, reference = store_data
    with Broker(tmp_path / "b") as b:
        raw = Recorder(b.port, ["#"])
        hq = Hq(b.port, tmp_path / "hq.sqlite3")
        p = _replay(d, _config(tmp_path / "dev.toml", tmp_path / "state"), b.port, 0, tmp_path / "dev.log")
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, (tmp_path / "dev.log").read_text()[-3000:]
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["drained"] and summary["alert_events"] == len(reference)
        assert _wait(lambda: len(hq.alert_events()) >= len(reference), 15)
        time.sleep(0.5)
        _check_against(reference, hq.alert_events(), "e2e", request)
        assert _wait(lambda: hq.store.devices() and hq.store.devices()[0]["state"] == "stopped", 10)
        gaps = hq.store.gaps()
        assert all(g["missing_count"] == 0 for g in gaps), gaps
        # every alert message was acknowledged back to the device
        assert _wait(lambda: hq.store.query("SELECT COUNT(*) FROM command_results WHERE verb='ack' AND ok=1")[0][0] > 0, 10)
        hq.close()
        time.sleep(0.3)
        msgs = raw.take()
        raw.close()
    sizes = _check_privacy(msgs)
    report(request, "privacy", f"{len(msgs)} payloads checked; (count, mean bytes, max bytes) per kind: {sizes}")
    assert {"alert", "poses", "status", "health", "camera_status", "command", "command_result"} <= set(sizes)


@pytest.mark.slow
def test_broker_down_30s_mid_replay(store_data, tmp_path, request):
    d, reference = store_data
    with Broker(tmp_path / "b") as b:
        hq = Hq(b.port, tmp_path / "hq.sqlite3")
        p = _replay(d, _config(tmp_path / "dev.toml", tmp_path / "state"), b.port, 1.5, tmp_path / "dev.log")
        try:
            assert _wait(lambda: len(hq.alert_events()) >= 3, 30), "no alerts reached HQ before the outage"
            before = len(hq.alert_events())
            b.stop()
            t_down = time.monotonic()
            time.sleep(30)
            assert p.poll() is None, "the replay must wait for the broker to drain its outbox"
            b.start()
            out, _ = p.communicate(timeout=120)
            outage = time.monotonic() - t_down
        finally:
            if p.poll() is None:
                p.kill()
        assert p.returncode == 0, (tmp_path / "dev.log").read_text()[-3000:]
        assert _wait(lambda: len(hq.alert_events()) >= len(reference), 20)
        time.sleep(0.5)
        counts = _check_against(reference, hq.alert_events(), "broker-outage", request)
        report(request, "broker-outage", f"{before} alert events in HQ before the stop, broker down "
                          f"{outage:.0f} s, {counts['in_hq']} after")
        hq.close()


def test_sigkill_mid_replay_and_resume(store_data, tmp_path, request):
    d, reference = store_data
    with Broker(tmp_path / "b") as b:
        hq = Hq(b.port, tmp_path / "hq.sqlite3")
        cfg = _config(tmp_path / "dev.toml", tmp_path / "state")
        p = _replay(d, cfg, b.port, 3.0, tmp_path / "dev.log")
        try:
            assert _wait(lambda: len(hq.alert_events()) >= len(reference) // 3, 60)
            p.send_signal(signal.SIGKILL)
            p.wait(10)
        finally:
            if p.poll() is None:
                p.kill()
        before = len(hq.alert_events())
        assert 0 < before < len(reference), "the kill should land mid-replay"
        # the broker publishes the last will; HQ marks the device offline
        assert _wait(lambda: [d["state"] for d in hq.store.devices()] == ["offline"], 15), hq.store.devices()
        p2 = _replay(d, cfg, b.port, 0, tmp_path / "dev.log")
        out, _ = p2.communicate(timeout=120)
        assert p2.returncode == 0, (tmp_path / "dev.log").read_text()[-3000:]
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["skipped"] > 0, "the restarted replay should resume from its checkpoint"
        assert _wait(lambda: len(hq.alert_events()) >= len(reference), 20)
        time.sleep(0.5)
        counts = _check_against(reference, hq.alert_events(), "sigkill", request)
        report(request, "sigkill", f"{before} alert events in HQ at the kill; resumed at record "
                          f"{summary['skipped']}, {counts['in_hq']} after; HQ duplicates dropped by msg_id: "
                          f"{hq.store.duplicates}")
        hq.close()


def test_outbox_cap_with_broker_down(store_data, tmp_path, request):
    d, reference = store_data
    port = free_port()
    b = Broker(tmp_path / "b", port=port).start()
    hq = Hq(port, tmp_path / "hq.sqlite3")  # HQ's persistent session is on the broker...
    hq.close()
    b.stop()  # ...and survives the restart (persistence on)
    cfg = _config(tmp_path / "dev.toml", tmp_path / "state", outbox_max_messages=10)
    p = _replay(d, cfg, port, 0, tmp_path / "dev.log")
    try:
        # full of what may not be evicted (alerts, camera status): the next alert is refused, loudly
        assert _wait(lambda: "OUTBOX FULL" in (tmp_path / "dev.log").read_text(), 60)
        db = sqlite3.connect(f"file:{tmp_path / 'state' / 'outbox.sqlite3'}?mode=ro", uri=True)
        kinds = dict(db.execute("SELECT kind, COUNT(*) FROM outbox GROUP BY kind").fetchall())
        db.close()
        assert sum(kinds.values()) == 10 and kinds.get("alert", 0) > 0 and "poses" not in kinds, kinds
        assert p.poll() is None
        b.start()
        hq = Hq(port, tmp_path / "hq.sqlite3")
        out, _ = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, (tmp_path / "dev.log").read_text()[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["outbox"]["refused_alerts"] > 0 and summary["outbox"]["dropped_poses"] > 0
    assert _wait(lambda: len(hq.alert_events()) >= len(reference), 20)
    time.sleep(0.5)
    counts = _check_against(reference, hq.alert_events(), "outbox-cap", request)
    health = [json.loads(r[0]) for r in hq.store.query("SELECT body FROM health ORDER BY ts")]
    assert health and health[-1]["outbox"]["refused_alerts"] > 0 and health[-1]["outbox"]["dropped_poses"] > 0
    report(request, "outbox-cap", f"cap 10 messages: {summary['outbox']['dropped_poses']} pose batches and "
                      f"{summary['outbox']['dropped_health']} health messages dropped, alerts refused "
                      f"{summary['outbox']['refused_alerts']} time(s) and held; {counts['in_hq']} of "
                      f"{counts['raised']} alert events in HQ")
    hq.close()
    b.stop()
