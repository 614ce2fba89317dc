"""HQ store and CLI: dedupe by msg_id, seq gaps, alert lifecycle, status ordering, rejected payloads,
``poselift-hq alerts|devices`` and ``poselift-hq consume`` against a real broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from mqtt_broker import Broker

from edge.config import DeviceConfig, TransportConfig
from edge.hq.cli import main as hq_main
from edge.hq.store import HqStore
from edge.records import AlertEvent, AlertPhase
from edge.transport.messages import build, encode, new_msg_id, utc_now

ROOT = Path(__file__).resolve().parents[1]
SID = new_msg_id()
T = "poselift/v1/s1/d1"


def _env(seq, session=SID, ts=None):
    return {"msg_id": new_msg_id(), "device_id": "d1", "session_id": session, "seq": seq, "ts": ts or utc_now(),
            "sw_version": "0.1.0", "models": {}}


def _alert(seq, alert_id, event, frame, **kw):
    return encode(build("alert", {**_env(seq, **kw), "alert_id": alert_id, "event": event, "camera_id": "cam1",
                                  "track": "0123456789abcdef", "started_t": 1.0, "t": frame / 15,
                                  "frame_index": frame, "score": 3.0, "peak_score": 3.0 + frame / 100,
                                  "threshold": 2.0}))


def _status(state, connection, started, seq=0, session=SID):
    return encode(build("status", {**_env(seq, session), "state": state, "session_started": started,
                                   "connection": connection}))


def test_dedupe_gaps_lifecycle_and_rejects(tmp_path):
    st = HqStore(tmp_path / "hq.sqlite3")
    a1 = _alert(1, "a1", "new", 10)
    assert st.ingest(f"{T}/cam/cam1/alerts", a1).outcome == "stored"
    assert st.ingest(f"{T}/cam/cam1/alerts", a1).outcome == "duplicate"
    st.ingest(f"{T}/cam/cam1/alerts", _alert(2, "a1", "update", 20))
    st.ingest(f"{T}/cam/cam1/alerts", _alert(5, "a1", "end", 40))  # 3 and 4 never arrive
    st.ingest(f"{T}/cam/cam1/alerts", _alert(7, "a2", "new", 50))
    [al1, al2] = st.alerts()
    assert (al1["alert_id"], al1["state"], al1["events"], al1["ended_t"]) == ("a1", "ended", 3, 40 / 15)
    assert al2["state"] == "open" and al1["peak_score"] == 3.4
    [g] = st.gaps()
    assert g["missing"] == [[3, 4], [6, 6]] and g["missing_count"] == 3 and st.duplicates == 1
    # a payload whose device_id differs from its topic, a malformed one, an unknown topic
    assert st.ingest("poselift/v1/s1/other/cam/cam1/alerts", _alert(8, "a3", "new", 60)).outcome == "rejected"
    assert st.ingest(f"{T}/cam/cam1/alerts", b"{not json").outcome == "rejected"
    assert st.ingest(f"{T}/cam/cam1/alerts", b'{"schema":"poselift.alert/1"}').outcome == "rejected"
    assert st.ingest(f"{T}/whatever", b"x").outcome == "ignored"
    assert st.query("SELECT COUNT(*) FROM rejected")[0][0] == 3


def test_status_order_survives_a_late_will(tmp_path):
    st = HqStore(tmp_path / "hq.sqlite3")
    s1 = utc_now()
    st.ingest(f"{T}/status", _status("online", 1, s1, seq=1))
    st.ingest(f"{T}/status", _status("offline", 1, s1))
    assert st.devices()[0]["state"] == "offline"  # the will of connection 1
    st.ingest(f"{T}/status", _status("online", 2, s1, seq=9))
    st.ingest(f"{T}/status", _status("offline", 1, s1))  # a late copy of an old will
    assert st.devices()[0]["state"] == "online"
    s2 = s1 + timedelta(seconds=5)
    st.ingest(f"{T}/status", _status("stopped", 2, s1, seq=10))
    st.ingest(f"{T}/status", _status("online", 1, s2, seq=1, session=new_msg_id()))  # restarted process
    assert st.devices()[0]["state"] == "online"
    assert all(g["missing_count"] == 0 for g in st.gaps() if g["session_id"] != SID)


def test_cli_alerts_and_devices(tmp_path, capsys):
    db = tmp_path / "hq.sqlite3"
    st = HqStore(db)
    st.ingest(f"{T}/cam/cam1/alerts", _alert(1, "a1", "new", 10))
    st.ingest("poselift/v1/s2/d1/cam/cam1/alerts", _alert(1, "b1", "new", 10, session=new_msg_id()))
    st.ingest(f"{T}/status", _status("online", 1, utc_now(), seq=2))
    st.close()
    assert hq_main(["alerts", "--db", str(db), "--store", "s1", "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["alert_id"] for r in rows] == ["a1"]
    assert hq_main(["alerts", "--db", str(db), "--since", "1h"]) == 0
    assert "2 alert(s)" in capsys.readouterr().out
    assert hq_main(["alerts", "--db", str(db), "--since", "2999-01-01T00:00Z"]) == 0
    assert "0 alert(s)" in capsys.readouterr().out
    assert hq_main(["devices", "--db", str(db)]) == 0
    assert "s1/d1: online" in capsys.readouterr().out
    assert hq_main(["alerts", "--db", str(tmp_path / "none.sqlite3")]) == 2


def test_consume_command_stores_and_acks(tmp_path):
    from edge.transport.publisher import Transport

    with Broker(tmp_path / "b") as b:
        db = tmp_path / "hq.sqlite3"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        hq = subprocess.Popen([sys.executable, "-c", "import sys; from edge.hq.cli import main; sys.exit(main())",
                               "consume", "--broker", f"127.0.0.1:{b.port}", "--db", str(db)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        try:
            cfg = TransportConfig(host="127.0.0.1", port=b.port, reconnect_min_s=0.2, reconnect_max_s=1,
                                  health_interval_s=3600)
            t = Transport(cfg, DeviceConfig(store_id="s1", device_id="d1", state_dir=tmp_path / "dev"))
            t.start()
            time.sleep(1.0)  # let HQ subscribe first
            t.publish_alerts([AlertEvent("x1", ph, "cam1", 4, 1.0, 1.0 + k, 15 + k, 3.0, 3.0, 2.0)
                              for k, ph in enumerate(AlertPhase)])
            end = time.monotonic() + 15
            while t.alerts_acked < 3 and time.monotonic() < end:
                time.sleep(0.1)
            assert t.alerts_acked == 3, "HQ acknowledges every alert message on cmd/ack"
            t.stop(5)
        finally:
            hq.send_signal(signal.SIGTERM)
            out, err = hq.communicate(timeout=15)
        assert hq.returncode == 0, err[-2000:]
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["alerts"] == 1 and summary["counts"]["stored"] >= 5
        st = HqStore(db)
        assert [(r["event"], r["frame_index"]) for r in st.alert_events()] == [("new", 15), ("update", 16),
                                                                                ("end", 17)]
        assert st.devices()[0]["state"] == "stopped"
