"""A real mosquitto for tests: free loopback port, generated config, start / stop / restart.

``Broker(tmp_path).start()`` waits until the port accepts connections. Persistence is on and a stop
is a SIGTERM, so the broker saves its sessions (HQ's persistent subscription survives a restart, as
in the documented production setup). ``require_mosquitto()`` skips plainly when it is not installed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def require_mosquitto() -> str:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto mosquitto-clients)")
    return MOSQUITTO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_password_file(path: Path, users: dict[str, str]) -> Path:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd is not installed (apt-get install mosquitto)")
    path.unlink(missing_ok=True)
    for i, (user, pw) in enumerate(users.items()):
        args = [tool, "-b"] + (["-c"] if i == 0 else []) + [str(path), user, pw]
        subprocess.run(args, check=True, capture_output=True)
    return path


class Broker:
    def __init__(self, workdir: Path, *, port: int | None = None, extra: str = "", allow_anonymous: bool = True):
        self.exe = require_mosquitto()
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.dir / "mosquitto.conf"
        self.log = self.dir / "mosquitto.log"
        (self.dir / "data").mkdir(exist_ok=True)
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"allow_anonymous {'true' if allow_anonymous else 'false'}\n"
            f"persistence true\npersistence_location {self.dir / 'data'}/\n"
            "max_queued_messages 100000\nmax_inflight_messages 100\n"
            # as root, mosquitto would switch to the 'mosquitto' user, which cannot write the test folder
            + ("user root\n" if os.geteuid() == 0 else "") +
            "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            + extra)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> "Broker":
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=logf, stderr=logf)
        logf.close()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout} s")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def broker_env() -> dict:
    env = dict(os.environ)
    env.pop("CREDENTIALS_DIRECTORY", None)
    return env


class Recorder:
    """A raw paho subscriber that keeps every message it sees (topic, payload, retain)."""

    def __init__(self, port: int, topics=("#",), *, username=None, password=None, client_id=None):
        import threading

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.granted = []
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"rec-{os.getpid()}-{id(self)}",
                        protocol=mqtt.MQTTv5)
        if username:
            c.username_pw_set(username, password)

        def on_connect(cl, ud, flags, rc, props):
            cl.subscribe([(t, 1) for t in topics])

        def on_subscribe(cl, ud, mid, rcs, props):
            self.granted = list(rcs)
            self.subscribed.set()

        def on_message(cl, ud, msg):
            with self._lock:
                self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

        c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
        c.connect("127.0.0.1", port, 30)
        c.loop_start()
        self.client = c
        if not self.subscribed.wait(10):
            raise RuntimeError("recorder did not subscribe")

    def take(self, pred=lambda t, p, r: True) -> list[tuple[str, bytes, bool]]:
        with self._lock:
            return [m for m in self.messages if pred(*m)]

    def wait_for(self, pred, count=1, timeout=15.0) -> list[tuple[str, bytes, bool]]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = self.take(pred)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        return self.take(pred)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def report(request, label: str, line: str) -> None:
    """Show a result line in the test output whatever the capture mode, and keep it in the report
    (``record_property``-style user properties, e.g. in JUnit XML)."""
    request.node.user_properties.append((label, line))
    capman = request.config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        with capman.global_and_fixture_disabled():
            print(f"\n[{label}] {line}", flush=True)
    else:
        print(f"\n[{label}] {line}", flush=True)


def fuzz_commands(rng: random.Random, device: str, n: int):
    """(verb, payload, retain) triples: valid, broken and hostile commands (seeded, reproducible)."""
    from edge.transport.messages import new_msg_id, utc_now

    def valid(verb="ping", args=None):
        return {"schema": "poselift.command/1", "msg_id": new_msg_id(), "ts": utc_now().isoformat(),
                "sender": "hq", "device_id": device, "args": args or {}}

    verbs = ["ack", "ping", "health", "status", "reboot", "x" * 40, "ÄÖ", "Ping", "a b", "-x", "ack2", "ota"]
    for i in range(n):
        k = i % 12
        verb = rng.choice(verbs)
        if k == 0:
            payload = rng.randbytes(rng.randint(0, 300))
        elif k == 1:
            payload = json.dumps(valid(verb)).encode()[: rng.randint(0, 120)]
        elif k == 2:
            payload = json.dumps(valid(verb)).encode()
        elif k == 3:
            payload = b"{" * rng.randint(1, 5000)
        elif k == 4:
            payload = b"[" * 100000 + b"]" * 100000
        elif k == 5:
            d = valid(verb)
            d[rng.choice(list(d))] = rng.choice([None, 1, -1.5, [], {}, "x" * 500, True])
            payload = json.dumps(d).encode()
        elif k == 6:
            payload = json.dumps(valid("ack", {"msg_ids": rng.choice([[], ["zz"], [new_msg_id()] * 300, 7,
                                                                         [new_msg_id()]])})).encode()
            verb = "ack"
        elif k == 7:
            payload = json.dumps(rng.choice([1, "s", None, [1, 2], 3.5, True])).encode()
        elif k == 8:
            d = valid(verb)
            d["device_id"] = "someone-else"
            payload = json.dumps(d).encode()
        elif k == 9:
            d = valid(verb)
            d["extra"] = {"image": "iVBORw0KGgo" * 50}
            payload = json.dumps(d).encode()
        elif k == 10:
            payload = bytearray(json.dumps(valid(verb)).encode())
            for _ in range(rng.randint(1, 6)):
                payload[rng.randrange(len(payload))] = rng.randrange(256)
            payload = bytes(payload)
        else:
            payload = json.dumps(valid(verb)).encode() + b" " * rng.randint(8000, 70000)
        yield verb, payload, False
