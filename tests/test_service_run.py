"""The device service end to end: a real video file camera, the real detector and pose models on ONNX
Runtime, the scorer, a real mosquitto. Start it as systemd would (NOTIFY_SOCKET), see READY, health,
camera status and poses on the broker, then SIGTERM: it drains and leaves status ``stopped``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from mqtt_broker import Broker, Recorder

cv2 = pytest.importorskip("cv2")


def _write_video(path: Path, image_path: Path, n_frames: int = 45) -> tuple[int, int]:
    img = cv2.imread(str(image_path))
    h, w = img.shape[:2]
    scale = 640 / w
    img = cv2.resize(img, (640, int(h * scale) // 2 * 2))
    h, w = img.shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (w, h))
    for i in range(n_frames):
        shift = np.float32([[1, 0, (i % 10) - 5], [0, 1, 0]])  # people drift a little, like a real camera
        out.write(cv2.warpAffine(img, shift, (w, h), borderMode=cv2.BORDER_REPLICATE))
    out.release()
    return w, h


@pytest.fixture
def model_dir(tmp_path):
    weights = shared_path("reference", "stgnf", "weights.npz")
    from edge.scoring.importer import import_stgnf

    out = tmp_path / "model"
    import_stgnf(weights, out)
    return out


def test_run_service_publishes_and_drains_on_sigterm(tmp_path, model_dir):
    models = shared_path("models")
    video = tmp_path / "cam.avi"
    w, h = _write_video(video, shared_path("images", "peds_0.jpg"))
    broker = Broker(tmp_path / "broker").start()
    notify_path = str(tmp_path / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(0.5)
    config = tmp_path / "edge.toml"
    config.write_text(f"""
[device]
store_id = "store-7"
device_id = "edge-7"
state_dir = "{tmp_path / 'state'}"
cache_dir = "{tmp_path / 'cache'}"

[[cameras]]
id = "aisle-3"
uri = "file://{video}"
width = {w}
height = {h}
fps = 15

[perception]
backend = "onnxruntime"
detector_model = "{models / 'yolox_nano.onnx'}"
pose_model = "{models / 'mediapipe_pose_landmark_lite.onnx'}"
precision = "fp32"

[scoring]
model = "{model_dir}"

[alerting]
threshold = 5.0

[transport]
port = {broker.port}
health_interval_s = 1.0
poses_max_hz = 5.0
""")
    rec = Recorder(broker.port)
    env = dict(os.environ, NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="4000000", WATCHDOG_PID="")
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        prefix = "poselift/v1/store-7/edge-7"
        notes: list[bytes] = []
        end = time.monotonic() + 120
        while time.monotonic() < end and not any(n.startswith(b"READY=1") for n in notes):
            try:
                notes.append(notify.recv(4096))
            except socket.timeout:
                assert proc.poll() is None, proc.stdout.read()
        assert any(n.startswith(b"READY=1") for n in notes), notes
        poses = rec.wait_for(lambda t, p, r: t == f"{prefix}/cam/aisle-3/poses", timeout=60)
        health = rec.wait_for(lambda t, p, r: t == f"{prefix}/health", timeout=30)
        assert poses and health, proc.poll()
        batch = json.loads(poses[0][1])
        people = [p for f in batch["frames"] for p in f["tracks"]]
        assert people, batch
        # coordinates are normalized to the frame, never pixels
        kp = np.array([p["kp"] for p in people], dtype=float).reshape(len(people), 17, 3)
        assert kp[..., :2].max() <= 1.0 and kp[..., 2].max() > 0.5
        h_msg = json.loads(health[-1][1])
        assert h_msg["cameras"]["aisle-3"]["state"] == "online"
        # windows are cut and scored even though this CPU drops camera frames
        scored = rec.wait_for(lambda t, p, r: t == f"{prefix}/health"
                              and json.loads(p)["counters"].get("windows_scored", 0) > 0, timeout=60)
        assert scored, json.loads(rec.take(lambda t, p, r: t == f"{prefix}/health")[-1][1])["counters"]
        t_end = time.monotonic() + 30
        watchdog_seen = False
        while time.monotonic() < t_end and not watchdog_seen:
            try:
                watchdog_seen = notify.recv(4096) == b"WATCHDOG=1"
            except socket.timeout:
                pass
        assert watchdog_seen, "the watchdog was not fed while frames flowed"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        statuses = [json.loads(p) for t, p, r in rec.take(lambda t, p, r: t == f"{prefix}/status")]
        assert statuses[0]["state"] == "online" and statuses[-1]["state"] == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        rec.close()
        broker.stop()
        notify.close()
    # the retained status a newcomer sees is "stopped"
    broker.start()
    try:
        late = Recorder(broker.port, topics=(f"{prefix}/status",))
        got = late.wait_for(lambda t, p, r: r, timeout=10)
        late.close()
        assert got and json.loads(got[-1][1])["state"] == "stopped"
    finally:
        broker.stop()


def test_alerts_the_full_outbox_refuses_are_held_and_sent_later(tmp_path):
    """A long broker outage fills the outbox with alerts; the service keeps the ones it refuses, in
    order, and hands them over once the broker is back. None is lost."""
    from edge.config import EdgeConfig
    from edge.records import AlertEvent, AlertPhase
    from edge.service.runner import DeviceService
    from edge.transport.publisher import Transport

    broker = Broker(tmp_path / "broker")  # not started yet: the broker is down
    cfg = EdgeConfig.model_validate({
        "device": {"state_dir": str(tmp_path / "state"), "cache_dir": str(tmp_path / "cache")},
        "cameras": [{"id": "cam1", "uri": "file:///dev/null"}],
        "perception": {"detector_model": "d.onnx", "pose_model": "p.onnx"},
        "scoring": {"model": str(tmp_path / "model")},
        "transport": {"port": broker.port, "outbox_max_messages": 10, "poses_enabled": False,
                      "health_interval_s": 3600, "reconnect_max_s": 1.0}})
    service = DeviceService(cfg)
    service.transport = Transport(cfg.transport, cfg.device, cameras=["cam1"])
    service.transport.start()

    def event(i, phase):
        return AlertEvent(f"a{i}", phase, "cam1", 7, 0.0, float(i), i, 9.0, 9.0, 5.0)

    sent = [event(i, AlertPhase.NEW if i % 2 == 0 else AlertPhase.END) for i in range(16)]
    results = [service._publish_alerts([ev]) for ev in sent]
    assert results[0] and not results[-1]
    held = len(service._pending_alerts)
    assert held > 0 and service.alerts_published + held == len(sent)
    assert [e.alert_id for e in service._pending_alerts] == [e.alert_id for e in sent[-held:]]
    rec = None
    try:
        broker.start()
        rec = Recorder(broker.port, topics=("poselift/v1/+/+/cam/+/alerts",))
        deadline = time.monotonic() + 30
        while service._pending_alerts and time.monotonic() < deadline:
            service._publish_alerts([])
            time.sleep(0.2)
        assert not service._pending_alerts
        got = rec.wait_for(lambda t, p, r: True, count=len(sent), timeout=30)
        ids = [json.loads(p)["alert_id"] for t, p, r in got]
        assert sorted(ids) == sorted(e.alert_id for e in sent) and len(ids) == len(set(ids))
        print(f"\n[service-outbox-full] {held} of {len(sent)} alert events held while the outbox was full, "
              f"all {len(ids)} delivered once the broker came back")
    finally:
        if rec is not None:
            rec.close()
        service.transport.stop(timeout=5)
        broker.stop()
