"""Device configuration: one TOML file, environment overrides, every field documented.

``load_config(path)`` returns a validated :class:`EdgeConfig` or raises :class:`ConfigError`, whose
``errors`` name the key path (``transport.port``) and, where the key appears in the file, its line.

Environment overrides use ``POSELIFT__SECTION__KEY=value`` (double underscores between levels,
case-insensitive), e.g. ``POSELIFT__TRANSPORT__HOST=broker.local``. Values are parsed as TOML
literals when they parse (numbers, booleans, arrays) and taken as strings otherwise.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on JetPack 6 (Python 3.10)
    import tomli as tomllib

CONFIG_SCHEMA_VERSION = 1
ENV_PREFIX = "POSELIFT__"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DeviceConfig(_Section):
    store_id: str = Field("store-0001", description="Store identifier; the second level of every MQTT topic.",
                          pattern=r"^[A-Za-z0-9_-]{1,64}$")
    device_id: str = Field("edge-0001", description="Device identifier, unique per store; third level of topics.",
                           pattern=r"^[A-Za-z0-9_-]{1,64}$")
    state_dir: Path = Field(Path("/var/lib/poselift-edge"),
                            description="Persistent state: outbox, models, OTA slots, pseudonym key.")
    cache_dir: Path = Field(Path("/var/cache/poselift-edge"),
                            description="Rebuildable cache: TensorRT engines and timing caches.")


class ZoneConfig(_Section):
    name: str = Field(..., description="Zone name reported in alerts.", min_length=1, max_length=64)
    polygon: list[tuple[float, float]] = Field(
        ..., description="Polygon vertices in frame pixels [[x, y], ...]; at least 3.", min_length=3)


class CameraConfig(_Section):
    id: str = Field(..., description="Camera identifier used in topics and alerts.", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    uri: str = Field(..., description="Source URI: csi://0, v4l2:///dev/video0, rtsp://host/path, file:///path.mp4.")
    width: int = Field(1920, description="Frame width in pixels.", gt=0, le=8192)
    height: int = Field(1080, description="Frame height in pixels.", gt=0, le=8192)
    fps: float = Field(15.0, description="Frame rate to process (frames beyond it are dropped).", gt=0, le=120)
    zones: list[ZoneConfig] = Field(default_factory=list,
                                    description="Areas where alerts may fire; empty means the whole frame.")
    stall_timeout_s: float = Field(5.0, description="A camera with no new frame for this long is restarted.", gt=0)


class PerceptionConfig(_Section):
    backend: Literal["auto", "tensorrt", "onnxruntime"] = Field(
        "auto", description="Inference backend; auto picks TensorRT where it imports, else ONNX Runtime.")
    detector_model: Path | None = Field(None, description="Person detector ONNX file (YOLOX or YOLOv8).")
    detector_family: Literal["yolox", "yolov8"] = Field("yolox", description="Output layout of the detector.")
    pose_model: Path | None = Field(None, description="Top-down pose ONNX file (HRNet-style heatmaps or BlazePose).")
    pose_family: Literal["heatmap", "blazepose"] = Field("blazepose", description="Output layout of the pose model.")
    precision: Literal["int8", "fp16", "fp32"] = Field("int8", description="TensorRT precision.")
    calibration_dir: Path | None = Field(None, description="Calibration images for INT8 builds.")
    detection_threshold: float = Field(0.3, description="Minimum person score kept from the detector.", ge=0, le=1)
    nms_iou: float = Field(0.45, description="IoU above which overlapping detections are suppressed.", gt=0, le=1)
    max_batch: int = Field(16, description="Largest batch of person crops sent to the pose engine at once.", ge=1)
    pose_roi_reuse: bool = Field(False, description="BlazePose: start each tracked person from the region found on "
                                 "the previous frame (one pass instead of two).")


class TrackingConfig(_Section):
    track_thresh: float = Field(0.5, description="Detections above this score start the first association.", ge=0, le=1)
    match_thresh: float = Field(0.8, description="Largest fused IoU cost accepted in the first association.", gt=0, le=1)
    track_buffer: int = Field(30, description="Frames a lost track is kept (at 30 fps; scaled by frame rate).", ge=1)
    fuse_score: bool = Field(True, description="Fuse detection score into the IoU cost (ByteTrack's non-MOT20 mode).")
    iou: Literal["plain", "legacy"] = Field("plain", description="IoU convention; legacy adds 1 pixel to sides.")
    pseudonyms: Literal["random", "keyed"] = Field(
        "random", description="Track ids sent out: random per session, or keyed (HMAC with a device key kept "
        "in device.state_dir, never sent).")


class FilteringConfig(_Section):
    max_gap: int = Field(8, description="Longest run of missing frames bridged by linear interpolation.", ge=0, le=120)
    min_confidence: float = Field(0.2, description="Keypoints below this confidence count as missing.", ge=0, le=1)
    smoother: Literal["none", "centered", "causal", "causal_mean", "one_euro"] = Field(
        "one_euro", description="Smoothing: centered (symmetric window, exact on linear motion; live output is "
        "delayed by window//2 + max_gap frames), causal (trailing-window line fit, zero lag on constant "
        "velocity), causal_mean (trailing-window mean, lag (window-1)/2 frames), one_euro (adaptive low-pass).")
    window: int = Field(8, description="Smoothing window length in frames.", ge=1, le=64)
    one_euro_min_cutoff: float = Field(1.0, description="One-Euro minimum cutoff frequency (Hz).", gt=0)
    one_euro_beta: float = Field(0.05, description="One-Euro speed coefficient.", ge=0)
    one_euro_d_cutoff: float = Field(1.0, description="One-Euro cutoff frequency (Hz) of the speed estimate.", gt=0)


class ScoringConfig(_Section):
    model: Path | None = Field(None, description="STG-NF model directory (model card + ONNX).")
    backend: Literal["numpy", "onnxruntime"] = Field("numpy", description="Scorer implementation.")
    max_batch: int = Field(256, description="Largest batch of windows scored at once.", ge=1)
    window_stride: int = Field(1, description="Score every n-th window of a track.", ge=1)
    window_fill_gaps: int = Field(3, description="Cut live windows in frame time and bridge gaps of up to this "
                                  "many frames by interpolation (frames dropped when inference falls behind); "
                                  "0 cuts them as the reference benchmark does.", ge=0, le=12)
    gate_in_view: bool = Field(False, description="Pose-quality gate: a window in which a keypoint lies within "
                               "gate_border_px of the frame border (or beyond), after the pose filter, is not "
                               "scored and cannot alert, since the person is not fully in view (entering, "
                               "leaving, cut off by the frame). Threshold calibration applies the same gate.")
    gate_border_px: float = Field(1.0, description="Margin in pixels for gate_in_view (pose estimators put "
                                  "joints they cannot see on the border).", ge=0)
    gate_min_confident: float = Field(0.0, description="Pose-quality gate: a window in which fewer than this "
                                      "fraction of a detection's keypoints reach filtering.min_confidence is "
                                      "not scored and cannot alert; 0 scores every window.", ge=0, le=1)


class AlertingConfig(_Section):
    threshold: float | None = Field(None, description="NLL (bits/dim) above which a track is anomalous; "
                                    "None takes the model card's calibrated threshold.")
    release_ratio: float = Field(0.9, description="Hysteresis: an alert ends when the score falls below "
                                 "threshold * release_ratio.", gt=0, le=1)
    ema_alpha: float = Field(0.3, description="Exponential smoothing of window scores before thresholding.", gt=0, le=1)
    min_duration_s: float = Field(1.0, description="Score must stay above threshold this long to fire.", ge=0)
    end_after_s: float = Field(1.0, description="Score must stay below release this long to end.", ge=0)
    cooldown_s: float = Field(30.0, description="No new alert for the same track this long after an end.", ge=0)
    update_interval_s: float = Field(2.0, description="Minimum time between update events of one alert.", gt=0)
    warmup_windows: int = Field(12, description="A track's first this many scored windows only start its "
                                "smoothed score and cannot raise an alert: people entering the view are seen "
                                "partially and at unusual angles, which the model scores high.", ge=0)
    lost_after_s: float = Field(30.0, description="A track with no score for this long is forgotten and its open "
                                "alert ends (for sources that never report a track removed).", gt=0)
    false_alarm_budget_per_hour: float = Field(0.5, description="Target alerts per camera-hour on normal data, "
                                               "used by calibrate-threshold.", gt=0)


class TlsConfig(_Section):
    ca_file: Path | None = Field(None, description="CA certificate bundle that signed the broker's certificate.")
    cert_file: Path | None = Field(None, description="Client certificate (mutual TLS).")
    key_file: Path | None = Field(None, description="Client private key (mutual TLS).")
    insecure: bool = Field(False, description="Skip broker host name verification (testing only).")


class TransportConfig(_Section):
    enabled: bool = Field(True, description="Publish to MQTT; false keeps everything on the device.")
    host: str = Field("localhost", description="MQTT broker host name or address.", min_length=1)
    port: int = Field(1883, description="MQTT broker port (8883 for TLS).", gt=0, lt=65536)
    keepalive_s: int = Field(30, description="MQTT keepalive interval.", ge=5, le=3600)
    username: str | None = Field(None, description="Broker user name.")
    password: str | None = Field(None, description="Broker password; prefer password_file or a systemd credential.")
    password_file: Path | None = Field(None, description="File holding the broker password "
                                       "(e.g. $CREDENTIALS_DIRECTORY/mqtt-password).")
    tls: TlsConfig | None = Field(None, description="TLS settings; absent means plain TCP.")
    topic_prefix: str = Field("poselift/v1", description="Topic root; topics are <prefix>/<store>/<device>/...")
    outbox_path: Path | None = Field(None, description="SQLite outbox file; default <state_dir>/outbox.sqlite3.")
    outbox_max_messages: int = Field(100_000, description="Outbox cap; poses are dropped first, alerts never "
                                     "silently.", ge=10)
    poses_enabled: bool = Field(True, description="Publish the anonymized keypoint stream.")
    poses_max_hz: float = Field(2.0, description="Pose batches per second per camera at most.", gt=0, le=30)
    poses_sample_fps: float = Field(5.0, description="Keypoint frames per second per camera kept in the pose "
                                    "stream (frames in between are not sent).", gt=0, le=60)
    outbox_max_bytes: int = Field(256 * 1024 * 1024, description="Outbox cap in payload bytes (same policy as "
                                  "outbox_max_messages).", ge=1024 * 1024)
    max_inflight: int = Field(32, description="Messages handed to the broker and not yet acknowledged, at most.",
                              ge=1, le=1000)
    client_id: str | None = Field(None, description="MQTT client id; default the device id (must be unique on "
                                  "the broker).", pattern=r"^[A-Za-z0-9_./-]{1,128}$")
    health_interval_s: float = Field(30.0, description="Seconds between health messages.", gt=0)
    reconnect_min_s: float = Field(1.0, description="First reconnect delay.", gt=0)
    reconnect_max_s: float = Field(60.0, description="Longest reconnect delay (exponential backoff).", gt=0)

    @model_validator(mode="after")
    def _one_password_source(self):
        if self.password is not None and self.password_file is not None:
            raise ValueError("set password or password_file, not both")
        return self


class ServiceConfig(_Section):
    watchdog_stall_s: float = Field(10.0, description="The watchdog is fed only while some camera delivered a "
                                    "frame within this many seconds.", gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")


class EdgeConfig(_Section):
    """The whole device configuration (one TOML file)."""

    schema_version: int = Field(CONFIG_SCHEMA_VERSION, description="Configuration schema version.")
    device: DeviceConfig = Field(default_factory=DeviceConfig, description="Identity and directories.")
    cameras: list[CameraConfig] = Field(default_factory=list, description="Cameras, one [[cameras]] table each.")
    perception: PerceptionConfig = Field(default_factory=PerceptionConfig, description="Detector and pose engines.")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="ByteTrack parameters.")
    filtering: FilteringConfig = Field(default_factory=FilteringConfig, description="Pose gap filling and smoothing.")
    scoring: ScoringConfig = Field(default_factory=ScoringConfig, description="STG-NF anomaly scorer.")
    alerting: AlertingConfig = Field(default_factory=AlertingConfig, description="When an anomaly becomes an alert.")
    transport: TransportConfig = Field(default_factory=TransportConfig, description="MQTT connection and outbox.")
    service: ServiceConfig = Field(default_factory=ServiceConfig, description="systemd integration.")

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != CONFIG_SCHEMA_VERSION:
            raise ValueError(f"unsupported schema_version {v}; this release reads {CONFIG_SCHEMA_VERSION}")
        return v

    @model_validator(mode="after")
    def _unique_cameras(self):
        ids = [c.id for c in self.cameras]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"camera ids must be unique; repeated: {', '.join(dup)}")
        return self


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.path or '<root>'}{where}: {self.message}"


class ConfigError(Exception):
    def __init__(self, source: str, errors: list[ConfigIssue]):
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: " + "; ".join(map(str, errors)))


def _locate_lines(text: str) -> dict[str, int]:
    """Map dotted key paths to the line that sets them (TOML has no position API in tomllib)."""
    lines: dict[str, int] = {}
    table: list[str] = []
    array_counts: dict[str, int] = {}
    key_re = re.compile(r'^\s*("?[A-Za-z0-9_-]+"?(?:\s*\.\s*"?[A-Za-z0-9_-]+"?)*)\s*=')
    for n, raw in enumerate(text.splitlines(), start=1):
        s = raw.strip()
        if s.startswith("[["):
            name = s.strip("[] ").split("#")[0].strip()
            idx = array_counts.get(name, -1) + 1
            array_counts[name] = idx
            table = name.split(".")[:-1] + [f"{name.split('.')[-1]}", str(idx)]
            # nested arrays of tables (cameras.zones) are indexed under their parent's current element
            if "." in name:
                parent = name.rsplit(".", 1)[0]
                pidx = array_counts.get(parent)
                if pidx is not None:
                    table = [*parent.split("."), str(pidx), name.rsplit(".", 1)[1], str(idx)]
            lines.setdefault(".".join(table), n)
        elif s.startswith("["):
            name = s.strip("[] ").split("#")[0].strip()
            table = name.split(".")
            lines.setdefault(".".join(table), n)
        else:
            m = key_re.match(raw)
            if m:
                key = [k.strip().strip('"') for k in m.group(1).split(".")]
                lines.setdefault(".".join([*table, *key]), n)
    return lines


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _apply_env(data: dict, environ: dict[str, str]) -> list[str]:
    applied = []
    for name, raw in sorted(environ.items()):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__") if p]
        if not parts:
            continue
        node = data
        for p in parts[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                nxt = {}
                node[p] = nxt
            node = nxt
        node[parts[-1]] = _parse_env_value(raw)
        applied.append(".".join(parts))
    return applied


def parse_config(text: str, source: str = "<string>", environ: dict[str, str] | None = None) -> EdgeConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(source, [ConfigIssue("", f"not valid TOML: {exc}", int(m.group(1)) if m else None)]) from None
    env_keys = _apply_env(data, dict(os.environ if environ is None else environ))
    try:
        return EdgeConfig.model_validate(data)
    except ValidationError as exc:
        lines = _locate_lines(text)
        issues = []
        for err in exc.errors():
            path = ".".join(str(p) for p in err["loc"])
            line = None
            probe = path
            while probe and line is None:
                line = lines.get(probe)
                probe = probe.rpartition(".")[0]
            msg = err["msg"]
            if path in env_keys:
                msg += f" (set by environment {ENV_PREFIX}{path.upper().replace('.', '__')})"
                line = None
            issues.append(ConfigIssue(path, msg, line))
        raise ConfigError(source, issues) from None


def load_config(path: str | os.PathLike | None, environ: dict[str, str] | None = None) -> EdgeConfig:
    """Read and validate a config file; ``None`` gives the defaults (plus environment overrides)."""
    if path is None:
        return parse_config("", "<defaults>", environ)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), [ConfigIssue("", f"cannot read: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError:
        raise ConfigError(str(p), [ConfigIssue("", "not UTF-8 text")]) from None
    return parse_config(text, str(p), environ)
