"""systemd integration without dependencies: sd_notify over $NOTIFY_SOCKET and a progress-gated watchdog.

Outside systemd (no NOTIFY_SOCKET) every call is a no-op, so the same code runs in a terminal.
"""

from __future__ import annotations

import os
import socket
import time


class SystemdNotifier:
    def __init__(self, environ: dict[str, str] | None = None):
        env = os.environ if environ is None else environ
        self._address = env.get("NOTIFY_SOCKET") or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID, when set, names the process the watchdog is meant for (not forked children).
        mine = not pid or pid == str(os.getpid())
        self.watchdog_interval_s = int(usec) / 1e6 if usec.isdigit() and mine else None
        self._sock = None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def _send(self, text: str) -> bool:
        if not self._address:
            return False
        addr = self._address
        if addr.startswith("@"):  # abstract namespace socket
            addr = "\0" + addr[1:]
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(text.encode(), addr)
            return True
        except OSError:
            return False

    def ready(self, status: str = "") -> bool:
        return self._send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> bool:
        return self._send(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self._send("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more start/stop time (engine builds take minutes on a Jetson)."""
        return self._send(f"EXTEND_TIMEOUT_USEC={int(seconds * 1e6)}")

    def stopping(self, status: str = "") -> bool:
        return self._send("STOPPING=1" + (f"\nSTATUS={status}" if status else ""))


class WatchdogGate:
    """Feed the systemd watchdog only while the pipeline makes progress.

    A camera that is down shows up in its status topic and does not restart the service; a hung
    inference call (no frame processed at all for ``stall_s``) stops the pings, and systemd restarts us.
    """

    def __init__(self, notifier: SystemdNotifier, stall_s: float, clock=time.monotonic):
        self._notifier = notifier
        self._stall_s = stall_s
        self._clock = clock
        self._last_progress = clock()
        self._last_ping = float("-inf")

    def progress(self) -> None:
        self._last_progress = self._clock()

    def tick(self) -> bool:
        """Call often from the main loop; returns True when a ping was sent."""
        interval = self._notifier.watchdog_interval_s
        if interval is None:
            return False
        now = self._clock()
        if now - self._last_progress > self._stall_s:
            return False
        if now - self._last_ping < interval / 2:
            return False
        self._last_ping = now
        return self._notifier.watchdog()
