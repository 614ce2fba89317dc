"""Camera sources: jetson-utils ``videoSource`` on a Jetson, OpenCV (FFmpeg) elsewhere.

``open_source(uri, width, height, fps)`` returns a :class:`FrameSource` whose ``read(timeout)``
gives the next :class:`~edge.records.Frame` (BGR uint8, an array the caller owns), ``None`` when no
frame arrived within ``timeout``, and raises :class:`EndOfStream` when the stream ended. Neither
library is imported before a source is opened.

URIs: ``csi://0`` (Jetson only), ``v4l2:///dev/video0``, ``rtsp://host/path``, ``http(s)://...``
(MJPEG cameras, OpenCV), ``file:///path/video.mp4`` or a plain path.
"""

from __future__ import annotations

import os
import threading
import time
from urllib.parse import urlparse

import numpy as np

from edge.records import Frame

_LIVE_SCHEMES = ("csi", "v4l2", "rtsp", "rtsps", "http", "https")
_JETSON_SCHEMES = ("csi", "v4l2", "rtsp", "rtsps", "file")


class SourceError(RuntimeError):
    """A source could not be opened or failed; the message names the URI."""


class EndOfStream(Exception):
    """The stream ended (file finished, server closed the connection)."""


def parse_uri(uri: str) -> tuple[str, str]:
    """(scheme, location) with plain paths as ``file``; raises SourceError on an unknown scheme."""
    if "://" not in uri:
        return "file", uri
    p = urlparse(uri)
    scheme = p.scheme.lower()
    if scheme == "file":
        return "file", (p.netloc + p.path) if p.netloc else p.path
    if scheme == "v4l2":
        return "v4l2", p.path or p.netloc
    if scheme == "csi":
        return "csi", p.netloc or p.path.strip("/") or "0"
    if scheme in ("rtsp", "rtsps", "http", "https"):
        return scheme, uri
    raise SourceError(f"{uri}: unknown source scheme {scheme!r} (csi, v4l2, rtsp, http, file)")


def jetson_available() -> bool:
    try:
        import jetson_utils  # noqa: F401
    except Exception:
        return False
    return True


class FrameSource:
    """One open stream. ``read`` is called from one thread; ``close`` may be called from another."""

    uri: str = ""
    live: bool = True
    drops: int = 0  # frames the source itself discarded (latest-wins inside the reader)

    def read(self, timeout: float) -> Frame | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class OpenCVSource(FrameSource):
    """``cv2.VideoCapture`` (FFmpeg, or V4L2 for devices) read by a thread of its own.

    ``VideoCapture.read`` can block forever on a stalled network stream; the reader thread takes
    that wait so ``read(timeout)`` always returns. Live streams keep only the newest frame (older
    ones are counted in ``drops``); files hand over every frame, paced to ``fps`` when ``realtime``.
    """

    def __init__(self, uri: str, width: int | None = None, height: int | None = None, fps: float | None = None,
                 camera_id: str = "camera", realtime: bool | None = None, open_timeout_s: float = 10.0,
                 rtsp_transport: str | None = "tcp"):
        import cv2

        self.uri = uri
        self.camera_id = camera_id
        scheme, location = parse_uri(uri)
        if scheme == "csi":
            raise SourceError(f"{uri}: CSI cameras need jetson-utils (videoSource), which is not installed")
        self.live = scheme in _LIVE_SCHEMES
        self.realtime = (not self.live) if realtime is None else realtime
        self._interval = 1.0 / fps if fps and self.realtime else 0.0
        if scheme == "file" and not os.path.exists(location):
            raise SourceError(f"{uri}: file not found")
        params = []
        for name, ms in (("CAP_PROP_OPEN_TIMEOUT_MSEC", open_timeout_s * 1000),
                         ("CAP_PROP_READ_TIMEOUT_MSEC", open_timeout_s * 1000)):
            if self.live and hasattr(cv2, name):
                params += [getattr(cv2, name), int(ms)]
        if scheme in ("rtsp", "rtsps") and rtsp_transport and "OPENCV_FFMPEG_CAPTURE_OPTIONS" not in os.environ:
            # RTP over the RTSP TCP connection: UDP loses packets on busy store networks and
            # shows up as torn frames; read once by OpenCV when the capture opens
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = f"rtsp_transport;{rtsp_transport}"
        api = cv2.CAP_V4L2 if scheme == "v4l2" else cv2.CAP_FFMPEG
        cap = cv2.VideoCapture(location, api, params) if params else cv2.VideoCapture(location, api)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{uri}: could not be opened (OpenCV {api_name(cv2, api)})")
        if scheme == "v4l2":
            if width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            if height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if fps:
                cap.set(cv2.CAP_PROP_FPS, fps)
        self._cap = cap
        self._cond = threading.Condition()
        self._slot: np.ndarray | None = None
        self._ended = False
        self._error: str | None = None
        self._closed = False
        self._index = 0
        self.drops = 0
        self._thread = threading.Thread(target=self._reader, name=f"capture-{camera_id}", daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        next_t = time.monotonic()
        try:
            while not self._closed:
                ok, img = self._cap.read()
                if not ok or img is None:
                    break
                if self._interval:
                    next_t += self._interval
                    delay = next_t - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    else:
                        next_t = time.monotonic()
                with self._cond:
                    if self.live:
                        if self._slot is not None:
                            self.drops += 1
                    else:
                        while self._slot is not None and not self._closed:
                            self._cond.wait(0.1)
                    self._slot = img
                    self._cond.notify_all()
        except Exception as e:  # a decoder failure ends the stream with its reason
            self._error = f"{type(e).__name__}: {e}"
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()
            self._cap.release()

    def read(self, timeout: float) -> Frame | None:
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._cond:
            while self._slot is None:
                if self._ended:
                    raise EndOfStream(f"{self.uri}: {self._error or 'end of stream'}")
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            img, self._slot = self._slot, None
            self._cond.notify_all()
        idx = self._index
        self._index += 1
        return Frame(self.camera_id, idx, time.monotonic(), img)

    def close(self) -> None:
        # never joins: a reader stuck in a stalled network read is abandoned (daemon thread) and
        # releases the capture itself when the read returns
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def api_name(cv2, api) -> str:
    return "V4L2" if api == cv2.CAP_V4L2 else "FFmpeg"


class JetsonSource(FrameSource):
    """jetson-utils ``videoSource``: hardware decode, CSI through Argus, V4L2, RTSP, files."""

    def __init__(self, uri: str, width: int | None = None, height: int | None = None, fps: float | None = None,
                 camera_id: str = "camera"):
        import jetson_utils

        self._ju = jetson_utils
        self.uri = uri
        self.camera_id = camera_id
        scheme, _ = parse_uri(uri)
        self.live = scheme != "file"
        argv = []
        if width:
            argv.append(f"--input-width={int(width)}")
        if height:
            argv.append(f"--input-height={int(height)}")
        if fps:
            argv.append(f"--input-rate={float(fps):g}")
        try:
            self._src = jetson_utils.videoSource(uri if "://" in uri else f"file://{uri}", argv=argv)
        except Exception as e:
            raise SourceError(f"{uri}: videoSource failed: {e}") from None
        self._index = 0
        self.drops = 0

    def read(self, timeout: float) -> Frame | None:
        try:
            img = self._src.Capture(format="rgb8", timeout=max(int(timeout * 1000), 1))
        except Exception as e:
            # older releases raise on timeout; a stream that stopped streaming has ended
            if not self._src.IsStreaming():
                raise EndOfStream(f"{self.uri}: {e}") from None
            return None
        if img is None:
            if not self._src.IsStreaming():
                raise EndOfStream(f"{self.uri}: end of stream")
            return None
        arr = self._ju.cudaToNumpy(img)
        self._ju.cudaDeviceSynchronize()
        # the capture ring buffer is reused by later frames: copy out (and RGB -> BGR) before returning
        bgr = np.ascontiguousarray(np.asarray(arr)[..., 2::-1])
        idx = self._index
        self._index += 1
        return Frame(self.camera_id, idx, time.monotonic(), bgr)

    def close(self) -> None:
        try:
            self._src.Close()
        except Exception:
            pass


def open_source(uri: str, width: int | None = None, height: int | None = None, fps: float | None = None,
                camera_id: str = "camera", backend: str = "auto", **options) -> FrameSource:
    """Open ``uri``: jetson-utils where it imports and handles the scheme, OpenCV otherwise."""
    scheme, _ = parse_uri(uri)
    if backend not in ("auto", "jetson", "opencv"):
        raise SourceError(f"{uri}: unknown source backend {backend!r} (auto, jetson, opencv)")
    use_jetson = backend == "jetson" or (backend == "auto" and scheme in _JETSON_SCHEMES and jetson_available())
    if use_jetson:
        if not jetson_available():
            raise SourceError(f"{uri}: the jetson backend needs jetson-utils, which is not installed")
        return JetsonSource(uri, width, height, fps, camera_id)
    try:
        import cv2  # noqa: F401
    except ImportError:
        raise SourceError(f"{uri}: camera input off-Jetson needs OpenCV (pip install 'poselift-edge[video]')") from None
    return OpenCVSource(uri, width, height, fps, camera_id, **options)
