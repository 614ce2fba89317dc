"""The device service: cameras -> detector -> tracker -> pose -> scoring pipeline -> transport.

One process per device. Each camera has a supervisor thread that keeps only its newest frame; one
inference loop takes the frames that are due (at most ``camera.fps`` per camera), runs the detector
on all of them in one call, tracks per camera, runs the pose engine on all tracked people of all
cameras, and hands the poses to the scoring pipeline. Alerts go to the outbox before anything else.

Start-up order matters for systemd: ``READY=1`` is sent only after the engines and the scorer are
loaded, and the watchdog is fed only while frames are being processed (:class:`WatchdogGate`).
``stop()`` (SIGTERM) drains: open alerts get their ``end``, the outbox is flushed, status goes to
``stopped``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge.config import EdgeConfig
from edge.records import AlertEvent, Frame
from edge.service.notify import SystemdNotifier, WatchdogGate

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """The service cannot start as configured; the message says what to fix."""


@dataclass
class _CameraLane:
    """Everything the loop keeps per camera."""

    supervisor: object
    tracker: object
    min_interval_s: float
    last_processed_t: float = float("-inf")
    last_state: str = ""


class DeviceService:
    def __init__(self, config: EdgeConfig, *, notifier: SystemdNotifier | None = None,
                 clock=time.monotonic):
        if not config.cameras:
            raise ServiceError("no cameras configured: add at least one [[cameras]] table")
        for key in ("detector_model", "pose_model"):
            if getattr(config.perception, key) is None:
                raise ServiceError(f"perception.{key} is not set")
        if config.scoring.model is None:
            raise ServiceError("scoring.model is not set (a model directory from 'poselift-edge train' or OTA)")
        self.config = config
        self.notifier = notifier or SystemdNotifier()
        self.clock = clock
        self.gate = WatchdogGate(self.notifier, config.service.watchdog_stall_s, clock)
        self._stop = threading.Event()
        self._lanes: dict[str, _CameraLane] = {}
        self.frames_processed = 0
        self.alerts_published = 0
        self._pending_alerts: list[AlertEvent] = []
        self._infer_ms = {"detector": 0.0, "pose": 0.0, "scoring": 0.0}
        self.transport = None
        self.pipeline = None

    # ------------------------------------------------------------------ start-up
    def _open_engine(self, path, role: str, family: str):
        from engines.select import open_engine

        p = self.config.perception
        self.notifier.status(f"loading {role} engine {path}")
        # A first TensorRT build takes minutes on a Jetson: ask systemd for time before it starts.
        self.notifier.extend_timeout(900)
        return open_engine(path, backend=p.backend, precision=p.precision,
                           cache_dir=self.config.device.cache_dir / "engines",
                           calib_dir=p.calibration_dir, family=family,
                           max_batch=p.max_batch if role == "pose" else len(self.config.cameras))

    def start(self) -> None:
        from edge.perception.detector import PersonDetector
        from edge.perception.pose import PoseEstimator
        from edge.scoring import load_scorer
        from edge.service.pipeline import ScoringPipeline
        from edge.sources.supervisor import CameraSupervisor
        from edge.tracking.pseudonyms import pseudonyms_for
        from edge.tracking.stage import TrackingStage
        from edge.transport.publisher import Transport

        cfg = self.config
        p = cfg.perception
        detector_engine = self._open_engine(p.detector_model, "detector", p.detector_family)
        self.detector = PersonDetector(detector_engine, p.detector_family, p.detection_threshold, p.nms_iou)
        pose_engine = self._open_engine(p.pose_model, "pose", p.pose_family)
        self.pose = PoseEstimator(pose_engine, p.pose_family, p.max_batch, reuse_rois=p.pose_roi_reuse)
        self.notifier.status(f"loading scorer {cfg.scoring.model}")
        scorer = load_scorer(cfg.scoring.model, cfg.scoring.backend, max_batch=cfg.scoring.max_batch)
        self.pipeline = ScoringPipeline(cfg, scorer)
        if self.pipeline.threshold is None:
            raise ServiceError(f"no alert threshold: set alerting.threshold or run 'poselift-edge "
                               f"calibrate-threshold' on {cfg.scoring.model}")
        models = {"detector": p.detector_model.name, "pose": p.pose_model.name,
                  "scorer": getattr(scorer.card, "model_id", None) or cfg.scoring.model.name}
        self.transport = Transport(cfg.transport, cfg.device, models={k: str(v) for k, v in models.items()},
                                   cameras=[c.id for c in cfg.cameras])
        self.transport.health_source = self._health
        self.transport.start()
        pseudonyms = pseudonyms_for(cfg.tracking.pseudonyms, cfg.device.state_dir)  # one for all cameras
        for cam in cfg.cameras:
            sup = CameraSupervisor.from_config(cam).start()
            tracker = TrackingStage(cfg.tracking, cam.fps, pseudonyms)
            self._lanes[cam.id] = _CameraLane(sup, tracker, 0.95 / cam.fps)
        self.notifier.ready(f"{len(self._lanes)} camera(s), threshold {self.pipeline.threshold:.3f}")
        log.info("ready: %d camera(s), alert threshold %.3f bits/dim", len(self._lanes), self.pipeline.threshold)

    # ------------------------------------------------------------------ the loop
    def _due_frames(self) -> list[Frame]:
        frames = []
        for lane in self._lanes.values():
            frame = lane.supervisor.latest(timeout=0.0)
            if frame is None or frame.t - lane.last_processed_t < lane.min_interval_s:
                continue
            lane.last_processed_t = frame.t
            frames.append(frame)
        return frames

    def _publish_camera_states(self) -> None:
        for cam_id, lane in self._lanes.items():
            st = lane.supervisor.status()
            state = getattr(st.state, "value", str(st.state))
            if state != lane.last_state:
                lane.last_state = state
                self.transport.publish_camera_status(cam_id, state, st.fps, st.last_error or None)

    def _publish_alerts(self, alerts: list[AlertEvent]) -> bool:
        """Hand alert events to the outbox, oldest first. Events the outbox refuses (full of messages that
        may not be evicted, e.g. during a long broker outage) stay in memory and go first next time, so an
        alert is never dropped and its lifecycle order is kept. True once nothing is pending."""
        from edge.transport.outbox import OutboxFull

        for ev in alerts:
            log.warning("alert %s %s camera=%s score=%.2f zone=%s", ev.event.value, ev.alert_id, ev.camera_id,
                        ev.score, ev.zone)
        self._pending_alerts.extend(alerts)
        if not self._pending_alerts:
            return True
        try:
            self.transport.publish_alerts(self._pending_alerts)
        except OutboxFull as exc:
            log.error("%d alert event(s) held in memory until the outbox has room: %s",
                      len(self._pending_alerts), exc)
            return False
        self.alerts_published += len(self._pending_alerts)
        self._pending_alerts = []
        return True

    def step(self, idle_wait_s: float = 0.01) -> int:
        """One pass of the loop; returns the number of frames processed."""
        self._publish_camera_states()
        if self._pending_alerts:
            self._publish_alerts([])
        frames = self._due_frames()
        if not frames:
            self.gate.tick()
            time.sleep(idle_wait_s)
            return 0
        t0 = time.perf_counter()
        detections = self.detector.detect_many(frames)
        t1 = time.perf_counter()
        tracks = [self._lanes[d.camera_id].tracker.update(d) for d in detections]
        poses = self.pose.estimate_many(list(zip(frames, tracks)))
        t2 = time.perf_counter()
        alerts = self.pipeline.process_batch(poses)
        t3 = time.perf_counter()
        self._publish_alerts(alerts)
        for p in poses:
            self.transport.publish_poses(p)
        n = len(frames)
        for key, dt in (("detector", t1 - t0), ("pose", t2 - t1), ("scoring", t3 - t2)):
            ms, prev = dt * 1e3 / n, self._infer_ms[key]
            self._infer_ms[key] = ms if prev == 0.0 else 0.9 * prev + 0.1 * ms  # per-frame EMA
        self.frames_processed += n
        self.gate.progress()
        self.gate.tick()
        return n

    def run(self) -> None:
        while not self._stop.is_set():
            self.step()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, drain_timeout_s: float = 20.0) -> bool:
        """Drain and shut down; True when the outbox emptied before the timeout."""
        self.notifier.stopping("draining outbox")
        for lane in self._lanes.values():
            lane.supervisor.stop()
        if self.pipeline is not None and self.pipeline.threshold is not None:
            if not self._publish_alerts(self.pipeline.finish(self.clock())):
                log.error("stopping with %d alert event(s) the full outbox could not take",
                          len(self._pending_alerts))
        drained = True
        if self.transport is not None:
            for cam_id in self._lanes:
                self.transport.publish_camera_status(cam_id, "stopped")
            drained = self.transport.stop(timeout=drain_timeout_s)
        return drained

    # ------------------------------------------------------------------ health
    def _health(self) -> dict:
        cams = {}
        for cam_id, lane in self._lanes.items():
            st = lane.supervisor.status()
            cams[cam_id] = {"state": getattr(st.state, "value", str(st.state)), "fps": st.fps,
                            "frames": st.frames, "dropped_frames": st.drops, "rejected_frames": st.rejected,
                            "restarts": st.restarts,
                            "last_frame_age_s": None if st.last_frame_age is None else round(st.last_frame_age, 3)}
        counters = {"frames": self.frames_processed, "alerts": self.alerts_published,
                    "alerts_pending": len(self._pending_alerts)}
        if self.pipeline is not None:
            counters.update({k: v for k, v in self.pipeline.stats.as_dict().items() if isinstance(v, int)})
        return {"cameras": cams, "infer_ms": {k: round(v, 3) for k, v in self._infer_ms.items()},
                "temperatures_c": read_temperatures(), "counters": counters}


def read_temperatures(root: str = "/sys/class/thermal") -> dict[str, float]:
    """Jetson thermal zones (CPU, GPU, SoC) in degrees C; empty where the kernel exposes none."""
    temps = {}
    for zone in sorted(Path(root).glob("thermal_zone*")):
        try:
            name = (zone / "type").read_text().strip()
            temps[name] = int((zone / "temp").read_text().strip()) / 1000.0
        except (OSError, ValueError):
            continue
    return temps
