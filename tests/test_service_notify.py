import os
import socket

from edge.service.notify import SystemdNotifier, WatchdogGate


def _listener(tmp_path):
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(1)
    return s, path


def test_notify_messages_reach_socket(tmp_path):
    s, path = _listener(tmp_path)
    n = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert n.ready("engines loaded")
    assert s.recv(1024) == b"READY=1\nSTATUS=engines loaded"
    n.extend_timeout(90)
    assert s.recv(1024) == b"EXTEND_TIMEOUT_USEC=90000000"
    n.stopping()
    assert s.recv(1024) == b"STOPPING=1"


def test_no_socket_is_a_noop():
    n = SystemdNotifier({})
    assert not n.enabled and not n.ready() and n.watchdog_interval_s is None


def test_watchdog_fed_only_while_frames_flow(tmp_path):
    s, path = _listener(tmp_path)
    now = [100.0]
    n = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())})
    gate = WatchdogGate(n, stall_s=5, clock=lambda: now[0])
    assert gate.tick()  # first ping
    assert s.recv(64) == b"WATCHDOG=1"
    now[0] += 0.5
    assert not gate.tick()  # less than half the interval since the last ping
    now[0] += 1.0
    assert gate.tick()
    s.recv(64)
    now[0] += 10  # no progress for 10 s > stall_s: stop feeding, systemd will restart us
    assert not gate.tick()
    gate.progress()
    assert gate.tick()


def test_watchdog_for_another_pid_is_ignored():
    n = SystemdNotifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert n.watchdog_interval_s is None
