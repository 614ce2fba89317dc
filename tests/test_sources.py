"""Camera sources and the per-camera supervisor on real streams made here.

Streams: video files written with cv2.VideoWriter (whole and truncated) and a local HTTP MJPEG
camera (the multipart stream IP cameras serve) that can stall with its connection open, go down
and come back on the same port, or send frames of the wrong size.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from edge.sources.camera import EndOfStream, SourceError, open_source, parse_uri  # noqa: E402
from edge.sources.supervisor import CameraState, CameraSupervisor  # noqa: E402


def _write_video(path, n=12, size=(160, 120), fps=30):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert w.isOpened()
    for k in range(n):
        w.write(np.full((size[1], size[0], 3), 20 * k % 250, np.uint8))
    w.release()
    return path


def _wait(pred, timeout=8.0, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


class MjpegCamera:
    """A local HTTP MJPEG camera. Per connection: ``frames`` frames at ``fps``, then ``after``
    ('stall': keep the connection open and send nothing; 'close'). ``size_of(k)`` gives frame sizes."""

    def __init__(self, frames=10, fps=50.0, after="stall", size_of=lambda k: (160, 120)):
        self.frames, self.fps, self.after, self.size_of = frames, fps, after, size_of
        self.release = threading.Event()
        self.connections = 0
        self.port = None
        self._server = None
        self.up()

    def up(self):
        cam = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                cam.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    for k in range(cam.frames):
                        w, h = cam.size_of(k)
                        img = np.full((h, w, 3), (7 * k) % 250, np.uint8)
                        img[: h // 4, : w // 4] = 255
                        jpg = cv2.imencode(".jpg", img)[1].tobytes()
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpg) + jpg + b"\r\n")
                        self.wfile.flush()
                        if cam.release.wait(1.0 / cam.fps):
                            return
                    if cam.after == "stall":
                        cam.release.wait(30)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port or 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self):
        self._server.shutdown()
        self._server.server_close()

    @property
    def uri(self):
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def close(self):
        self.release.set()
        try:
            self.down()
        except Exception:
            pass


@pytest.fixture
def camera_factory():
    made = []

    def make(**kw):
        cam = MjpegCamera(**kw)
        made.append(cam)
        return cam
    yield make
    for cam in made:
        cam.close()


# --------------------------------------------------------------------------- sources

def test_uri_parsing_and_open_errors(tmp_path):
    assert parse_uri("file:///data/a.mp4") == ("file", "/data/a.mp4")
    assert parse_uri("/data/a.mp4") == ("file", "/data/a.mp4")
    assert parse_uri("v4l2:///dev/video1") == ("v4l2", "/dev/video1")
    assert parse_uri("csi://1") == ("csi", "1")
    assert parse_uri("rtsp://cam/live")[0] == "rtsp"
    with pytest.raises(SourceError, match="unknown source scheme 'ftp'"):
        parse_uri("ftp://x/y")
    with pytest.raises(SourceError, match="file not found"):
        open_source(f"file://{tmp_path}/missing.mp4", backend="opencv")
    with pytest.raises(SourceError, match="jetson-utils"):
        open_source("csi://0", 1280, 720, 15, backend="opencv")
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 300)
    with pytest.raises(SourceError, match="could not be opened"):
        open_source(str(tmp_path / "junk.mp4"))


def test_file_source_hands_over_every_frame_in_order(tmp_path):
    path = _write_video(tmp_path / "v.avi", n=12)
    src = open_source(f"file://{path}", 160, 120, None, camera_id="c1")
    got = []
    with pytest.raises(EndOfStream):
        while True:
            f = src.read(2.0)
            assert f is not None, "file source timed out"
            got.append(f)
    src.close()
    assert [f.frame_index for f in got] == list(range(12))
    assert all(f.camera_id == "c1" and f.image.shape == (120, 160, 3) and f.image.dtype == np.uint8 for f in got)
    np.testing.assert_allclose([f.image.mean() for f in got], [20 * k for k in range(12)], atol=3)


# --------------------------------------------------------------------------- supervisor on files

def test_supervisor_restarts_a_file_that_ends(tmp_path):
    path = _write_video(tmp_path / "v.avi", n=8)
    sup = CameraSupervisor("c1", str(path), fps=None, stall_timeout_s=1.0, backoff_initial_s=0.05,
                           realtime=False).start()
    try:
        frames = []
        assert _wait(lambda: (f := sup.latest(0.05)) is None or frames.append(f) or len(frames) >= 12)
        st = sup.status()
        assert st.restarts >= 1 and st.frames >= 12 and "end of stream" in st.last_error
        idx = [f.frame_index for f in frames]
        assert idx == sorted(idx) and len(set(idx)) == len(idx)
    finally:
        sup.stop()
    assert sup.status().state == CameraState.STOPPED


def test_truncated_files_never_pass_garbage(tmp_path):
    path = _write_video(tmp_path / "v.avi", n=40)
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    sup = CameraSupervisor("c1", str(cut), stall_timeout_s=1.0, backoff_initial_s=0.05, realtime=False).start()
    try:
        got = []
        assert _wait(lambda: (f := sup.latest(0.05)) is None or got.append(f) or sup.status().restarts >= 2)
        assert got and all(f.image.shape == (120, 160, 3) for f in got)
        assert sup.status().state != CameraState.FAILED
    finally:
        sup.stop()
    stub = tmp_path / "stub.avi"
    stub.write_bytes(data[:200])
    sup = CameraSupervisor("c2", str(stub), stall_timeout_s=0.5, backoff_initial_s=0.02, max_restarts=2).start()
    try:
        assert _wait(lambda: sup.status().state == CameraState.FAILED)
        st = sup.status()
        assert st.frames == 0 and st.restarts == 3 and "gave up after 2 restarts" in st.last_error
        assert "could not be opened" in st.last_error or "end of stream" in st.last_error
        # backoff doubled between attempts: 0.02, 0.04 -> reconnecting entries recorded
        assert [s for _, s, _ in sup.history].count(CameraState.RECONNECTING) >= 1
    finally:
        sup.stop()


# --------------------------------------------------------------------------- supervisor on a network camera

def test_stalled_camera_is_detected_by_frame_age_and_reconnected(camera_factory):
    cam = camera_factory(frames=8, fps=40, after="stall")
    sup = CameraSupervisor("door", cam.uri, stall_timeout_s=0.6, backoff_initial_s=0.05).start()
    try:
        assert _wait(lambda: sup.status().state == CameraState.ONLINE)
        assert _wait(lambda: sup.status().restarts >= 1 and cam.connections >= 2)
        states = [s for _, s, _ in sup.history]
        assert CameraState.STALLED in states and CameraState.RECONNECTING in states
        reasons = [r for _, s, r in sup.history if s == CameraState.STALLED]
        assert any("no good frame for" in r for r in reasons)
        assert _wait(lambda: sup.status().state == CameraState.ONLINE and sup.status().frames > 8)
        st = sup.status()
        assert st.last_frame_age is not None and st.last_frame_age >= 0
    finally:
        sup.stop()


def test_camera_that_goes_down_comes_back_after_backoff(camera_factory):
    cam = camera_factory(frames=6, fps=40, after="close")
    sup = CameraSupervisor("door", cam.uri, stall_timeout_s=1.0, backoff_initial_s=0.05, backoff_max_s=0.4,
                           open_timeout_s=1.0).start()
    try:
        assert _wait(lambda: sup.status().frames >= 6)
        cam.down()
        assert _wait(lambda: "open failed" in sup.status().last_error)
        frames_down = sup.status().frames
        assert sup.status().state == CameraState.RECONNECTING
        cam.up()  # same port
        assert _wait(lambda: sup.status().frames > frames_down and sup.status().state == CameraState.ONLINE)
        assert sup.status().restarts >= 2
    finally:
        sup.stop()


def test_garbage_frame_sizes_are_rejected_and_counted(tmp_path):
    # OpenCV's FFmpeg reader rescales a stream whose size changes, so a camera that switches sizes
    # is made from two real files of different sizes read in turn
    a = _write_video(tmp_path / "a.avi", n=40)
    b = _write_video(tmp_path / "b.avi", n=40, size=(96, 64))

    class Switching:
        def __init__(self, uri, *args, **kw):
            self.srcs = [open_source(str(a), realtime=False, **kw), open_source(str(b), realtime=False, **kw)]
            self.n = 0

        def read(self, timeout):
            self.n += 1
            return self.srcs[1 if self.n % 3 == 0 else 0].read(timeout)

        def close(self):
            for s in self.srcs:
                s.close()

    sup = CameraSupervisor("door", "switching", stall_timeout_s=2.0, backoff_initial_s=0.05,
                           source_factory=Switching).start()
    got = []
    try:
        assert _wait(lambda: (f := sup.latest(0.05)) is None or got.append(f) or sup.status().rejected >= 8)
    finally:
        sup.stop()
    assert got and all(f.image.shape == (120, 160, 3) for f in got)
    st = sup.status()
    assert st.rejected >= 8 and st.last_rejected == "size 96x64, expected 160x120"
    # a camera that only ever sends the wrong size is not alive: it is restarted
    sup = CameraSupervisor("door", str(a), 320, 240, 30, stall_timeout_s=0.3, backoff_initial_s=0.05,
                           strict_size=True, realtime=True).start()
    try:
        assert _wait(lambda: sup.status().restarts >= 1)
        st = sup.status()
        assert st.frames == 0 and st.rejected > 0 and "expected 320x240" in st.last_rejected
        assert any("no good frame" in r for _, s, r in sup.history if s == CameraState.STALLED)
    finally:
        sup.stop()


def test_wrong_shape_and_type_from_a_source_are_rejected(tmp_path):
    path = _write_video(tmp_path / "v.avi", n=12)

    class Corrupting:
        """The real file source with some frames mangled the way broken drivers do."""

        def __init__(self, *a, **kw):
            self.src = open_source(*a, realtime=False, **kw)
            self.n = 0

        def read(self, timeout):
            f = self.src.read(timeout)
            self.n += 1
            if f is None:
                return None
            bad = {1: f.image[..., 0], 2: f.image.astype(np.float32), 3: np.dstack([f.image, f.image[..., :1]])}
            return bad.get(self.n % 4, f.image)

        def close(self):
            self.src.close()

    sup = CameraSupervisor("c", str(path), stall_timeout_s=1.0, backoff_initial_s=0.05,
                           source_factory=Corrupting).start()
    got = []
    try:
        assert _wait(lambda: (f := sup.latest(0.05)) is None or got.append(f) or sup.status().rejected >= 9)
    finally:
        sup.stop()
    assert got and all(f.image.shape == (120, 160, 3) and f.image.dtype == np.uint8 for f in got)


def test_newest_frame_wins_and_drops_are_counted(camera_factory):
    cam = camera_factory(frames=200, fps=60, after="stall")
    sup = CameraSupervisor("door", cam.uri, stall_timeout_s=5.0).start()
    try:
        assert _wait(lambda: sup.status().frames >= 1)
        first = sup.latest(1.0)
        assert _wait(lambda: sup.status().frames >= first.frame_index + 12)
        newest = sup.latest(0.0)
        st = sup.status()
        assert newest.frame_index > first.frame_index + 5
        assert st.drops >= 5 and sup.latest(0.0) is None
        newest.image[:] = 0  # the caller owns its copy
        assert st.fps > 0
    finally:
        sup.stop()


# --------------------------------------------------------------------------- jetson-utils path
# jetson-utils exists only on a Jetson. This stand-in follows its documented Python API
# (videoSource(uri, argv=[...]), Capture(format=, timeout=ms) -> image or None on timeout,
# IsStreaming(), cudaToNumpy() giving a view of the capture ring buffer, cudaDeviceSynchronize())
# to check our side of the contract: frames are copied out before the ring buffer is reused,
# RGB becomes BGR, timeouts and end of stream are told apart. It says nothing about a real device.

class _RingSource:
    def __init__(self, uri, argv=()):
        self.uri, self.argv = uri, list(argv)
        self.ring = [np.zeros((4, 6, 3), np.uint8) for _ in range(2)]
        self.n = 0
        self.script = ["frame", "timeout", "frame", "frame", "eos"]

    def Capture(self, format="rgb8", timeout=1000):
        assert format == "rgb8" and timeout >= 1
        step = self.script.pop(0) if self.script else "eos"
        if step == "timeout":
            return None
        if step == "eos":
            self.streaming = False
            return None
        buf = self.ring[self.n % 2]
        buf[:] = (self.n + 1, 100, 200)  # R, G, B
        self.n += 1
        return buf

    def IsStreaming(self):
        return getattr(self, "streaming", True)

    def Close(self):
        self.closed = True


def test_jetson_source_copies_out_of_the_ring_buffer(monkeypatch):
    import types

    fake = types.ModuleType("jetson_utils")
    made = []
    fake.videoSource = lambda uri, argv=(): made.append(_RingSource(uri, argv)) or made[-1]
    fake.cudaToNumpy = lambda img: img
    fake.cudaDeviceSynchronize = lambda: None
    monkeypatch.setitem(__import__("sys").modules, "jetson_utils", fake)

    src = open_source("csi://0", 1280, 720, 15, camera_id="door")
    assert type(src).__name__ == "JetsonSource"
    assert made[0].argv == ["--input-width=1280", "--input-height=720", "--input-rate=15"]
    first = src.read(0.5)
    assert src.read(0.5) is None  # a timeout is not the end
    second, third = src.read(0.5), src.read(0.5)  # third reuses first's ring slot
    assert first.image[0, 0].tolist() == [200, 100, 1]  # BGR, and untouched by the reuse
    assert third.image[0, 0].tolist() == [200, 100, 3] and second.image[0, 0, 2] == 2
    assert [first.frame_index, second.frame_index, third.frame_index] == [0, 1, 2]
    with pytest.raises(EndOfStream):
        src.read(0.5)
    src.close()
    assert made[0].closed
    with pytest.raises(SourceError, match="could not be opened"):  # http goes to OpenCV, not jetson-utils
        open_source("http://127.0.0.1:9/x.mjpg", open_timeout_s=1.0)


# --------------------------------------------------------------------------- a local RTSP camera

_RTSP_HELPER = __import__("pathlib").Path(__file__).with_name("_rtsp_camera.py")


def _rtsp_python():
    import shutil
    import subprocess

    py = shutil.which("python3", path="/usr/bin:/bin") or shutil.which("python3")
    probe = ("import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import Gst; Gst.init(None); "
             "assert all(Gst.ElementFactory.find(e) for e in ('videotestsrc', 'jpegenc', 'rtpjpegpay'))")
    if py is None or subprocess.run([py, "-c", probe], capture_output=True).returncode != 0:
        pytest.skip("no GStreamer RTSP server: apt-get install gir1.2-gst-rtsp-server-1.0 python3-gi "
                    "gstreamer1.0-plugins-base gstreamer1.0-plugins-good")
    return py


class RtspCamera:
    def __init__(self, py):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.py = py
        self.proc = None
        self.start()

    def start(self):
        import subprocess

        self.proc = subprocess.Popen([self.py, str(_RTSP_HELPER), str(self.port)], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            import signal
            import os

            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(5)

    @property
    def uri(self):
        return f"rtsp://127.0.0.1:{self.port}/cam"


@pytest.fixture
def rtsp_camera():
    cam = RtspCamera(_rtsp_python())
    yield cam
    cam.kill()


@pytest.mark.slow
def test_rtsp_camera_frozen_then_killed_then_back(rtsp_camera):
    import os
    import signal

    sup = CameraSupervisor("aisle", rtsp_camera.uri, stall_timeout_s=1.0, backoff_initial_s=0.1,
                           backoff_max_s=0.5, open_timeout_s=2.0).start()
    try:
        assert _wait(lambda: sup.status().state == CameraState.ONLINE and sup.status().frames >= 5, timeout=15)
        f = sup.latest(1.0)
        assert f.image.shape == (120, 160, 3)
        # frozen server: the TCP connection stays open and nothing arrives (no end of stream)
        os.kill(rtsp_camera.proc.pid, signal.SIGSTOP)
        assert _wait(lambda: any(s == CameraState.STALLED and "no good frame" in r for _, s, r in sup.history),
                     timeout=10)
        os.kill(rtsp_camera.proc.pid, signal.SIGCONT)
        assert _wait(lambda: sup.status().state == CameraState.ONLINE and sup.status().restarts >= 1, timeout=20)
        # server gone: reconnects fail with backoff, then it comes back on the same port
        rtsp_camera.kill()
        assert _wait(lambda: "open failed" in sup.status().last_error, timeout=15)
        before = sup.status().frames
        rtsp_camera.start()
        assert _wait(lambda: sup.status().frames > before + 3, timeout=20)
        assert sup.status().state == CameraState.ONLINE
    finally:
        sup.stop()
