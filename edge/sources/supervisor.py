"""One supervisor thread per camera: liveness by frame age, reconnect with backoff, newest frame wins.

A camera can stall without ever reporting end of stream (an RTSP or HTTP camera that stops
sending, a USB camera that hangs), so liveness is judged by the age of the last good frame: past
``stall_timeout_s`` the source is dropped and recreated, waiting ``backoff_initial_s`` doubled at each
failed attempt up to ``backoff_max_s`` (reset by the first good frame). Frames of the wrong shape
or type are rejected and counted, never passed on. The inference loop takes the newest frame with
:meth:`CameraSupervisor.latest`; a frame replaced before it was taken counts as a drop.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np

from edge.records import Frame
from edge.sources.camera import EndOfStream, open_source


class CameraState(str, Enum):
    STARTING = "starting"
    ONLINE = "online"
    STALLED = "stalled"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class CameraStatus:
    camera_id: str
    state: CameraState
    fps: float  # good frames per second over the last few seconds
    last_frame_age: float | None  # seconds since the last good frame; None before the first
    frames: int  # good frames delivered to the slot
    drops: int  # frames replaced before the inference loop took them (plus the source's own drops)
    rejected: int  # frames of the wrong size, shape or type
    restarts: int  # times the source was recreated
    last_error: str = ""
    last_rejected: str = ""  # why the last rejected frame was rejected


class CameraSupervisor:
    """Keep one camera streaming; hand out its newest frame."""

    def __init__(self, camera_id: str, uri: str, width: int | None = None, height: int | None = None,
                 fps: float | None = None, stall_timeout_s: float = 5.0, backoff_initial_s: float = 0.5,
                 backoff_max_s: float = 30.0, max_restarts: int | None = None, strict_size: bool = False,
                 source_factory: Callable[..., object] | None = None, poll_s: float = 0.1,
                 clock: Callable[[], float] = time.monotonic, **source_options):
        self.camera_id = camera_id
        self.uri = uri
        self.width, self.height, self.fps = width, height, fps
        self.stall_timeout_s = float(stall_timeout_s)
        self.backoff_initial_s = float(backoff_initial_s)
        self.backoff_max_s = float(backoff_max_s)
        self.max_restarts = max_restarts
        self.strict_size = strict_size
        self._factory = source_factory or open_source
        self._source_options = source_options
        self._poll = min(float(poll_s), self.stall_timeout_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._new = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._slot: Frame | None = None
        self._state = CameraState.STARTING
        self._error = ""
        self._frames = self._drops = self._rejected = self._restarts = 0
        self._source_drops = 0
        self._rejection = ""
        self._last_t: float | None = None
        self._times: deque[float] = deque(maxlen=256)
        self._index = 0
        self.history: deque[tuple[float, CameraState, str]] = deque(maxlen=64)

    @classmethod
    def from_config(cls, cam, **kw) -> "CameraSupervisor":
        """From an :class:`edge.config.CameraConfig`."""
        return cls(cam.id, cam.uri, cam.width, cam.height, cam.fps, stall_timeout_s=cam.stall_timeout_s, **kw)

    # ------------------------------------------------------------------ public

    def start(self) -> "CameraSupervisor":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"camera-{self.camera_id}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._new:
            self._new.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self._set_state(CameraState.STOPPED, self._error)

    def latest(self, timeout: float = 0.0) -> Frame | None:
        """The newest frame not yet taken, waiting up to ``timeout`` seconds for one; else None."""
        deadline = self._clock() + timeout
        with self._new:
            while self._slot is None and not self._stop.is_set():
                left = deadline - self._clock()
                if left <= 0:
                    return None
                self._new.wait(left)
            frame, self._slot = self._slot, None
            return frame

    def status(self) -> CameraStatus:
        now = self._clock()
        with self._lock:
            recent = [t for t in self._times if now - t <= 3.0]
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0.0
            return CameraStatus(self.camera_id, self._state, round(fps, 2),
                                None if self._last_t is None else now - self._last_t, self._frames,
                                self._drops + self._source_drops, self._rejected, self._restarts, self._error,
                                self._rejection)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------ capture thread

    def _set_state(self, state: CameraState, error: str | None = None) -> None:
        with self._lock:
            if error is not None:
                self._error = error
            if state != self._state:
                self._state = state
                self.history.append((self._clock(), state, self._error))

    def _run(self) -> None:
        backoff = self.backoff_initial_s
        attempt = 0
        while not self._stop.is_set():
            if attempt:
                with self._lock:
                    self._restarts += 1
                    restarts = self._restarts
                if self.max_restarts is not None and restarts > self.max_restarts:
                    self._set_state(CameraState.FAILED, f"gave up after {self.max_restarts} restarts: {self._error}")
                    return
                self._set_state(CameraState.RECONNECTING)
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2, self.backoff_max_s)
            attempt += 1
            try:
                src = self._factory(self.uri, self.width, self.height, self.fps, camera_id=self.camera_id,
                                    **self._source_options)
            except Exception as e:
                self._set_state(self._state, f"open failed: {e}")
                continue
            try:
                if self._stream(src):
                    backoff = self.backoff_initial_s
            finally:
                src.close()
        self._set_state(CameraState.STOPPED)

    def _stream(self, src) -> bool:
        """Pump one open source until it ends, stalls or fails; True when it delivered a good frame."""
        opened = self._clock()
        good = False
        expected = (self.height, self.width) if self.strict_size and self.width and self.height else None
        min_gap = 0.9 / self.fps if self.fps else 0.0
        last_kept = None
        seen_drops = 0
        while not self._stop.is_set():
            try:
                frame = src.read(self._poll)
            except EndOfStream as e:
                self._set_state(self._state, str(e))
                return good
            except Exception as e:
                self._set_state(self._state, f"read failed: {type(e).__name__}: {e}")
                return good
            now = self._clock()
            d = int(getattr(src, "drops", 0))
            if d > seen_drops:
                with self._lock:
                    self._source_drops += d - seen_drops
                seen_drops = d
            img = None if frame is None else (frame.image if isinstance(frame, Frame) else frame)
            problem = "" if img is None else _check(img, expected)
            if img is None or problem:
                if problem:
                    with self._lock:
                        self._rejected += 1
                        self._rejection = problem
                # rejected frames do not prove the camera alive: a camera sending only garbage is restarted
                since = now - (self._last_t if good and self._last_t is not None else opened)
                if since > self.stall_timeout_s:
                    self._set_state(CameraState.STALLED, f"no good frame for {since:.1f} s")
                    return good
                continue
            if expected is None:
                expected = img.shape[:2]
            if min_gap and last_kept is not None and now - last_kept < min_gap:
                continue
            last_kept = now
            if img.base is not None or not img.flags.c_contiguous:
                img = np.ascontiguousarray(img).copy()
            with self._new:
                if self._slot is not None:
                    self._drops += 1
                self._slot = Frame(self.camera_id, self._index, now, img)
                self._index += 1
                self._frames += 1
                self._last_t = now
                self._times.append(now)
                self._new.notify_all()
            if not good:
                good = True
                self._set_state(CameraState.ONLINE, "")
        return good


def _check(img, expected) -> str:
    """Why ``img`` is not a usable BGR frame ('' when it is)."""
    if not isinstance(img, np.ndarray):
        return f"not an array ({type(img).__name__})"
    if img.dtype != np.uint8:
        return f"pixel type {img.dtype}, expected uint8"
    if img.ndim != 3 or img.shape[2] != 3:
        return f"shape {img.shape}, expected H x W x 3"
    if img.shape[0] < 16 or img.shape[1] < 16:
        return f"size {img.shape[1]}x{img.shape[0]} too small"
    if expected is not None and tuple(img.shape[:2]) != tuple(expected):
        return f"size {img.shape[1]}x{img.shape[0]}, expected {expected[1]}x{expected[0]}"
    return ""
