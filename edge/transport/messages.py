"""The messages a device publishes and receives, as strict, versioned pydantic models.

Privacy lives here: no model has a ``bytes`` field, every string is short and patterned, every list
is bounded, coordinates are floats in [0, 1], and :func:`encode` refuses anything over
:data:`MAX_PAYLOAD_BYTES`. Models are strict (numpy scalars, stray keys and wrong types are errors),
so whatever is published is exactly what these classes document.

Every device message carries the envelope: ``schema`` (``poselift.<kind>/<version>``), ``msg_id``
(32 hex digits, the idempotency key), ``device_id``, ``session_id`` (one per process start),
``seq`` (1, 2, ... in the order messages enter the outbox), ``ts`` (UTC), ``sw_version`` and
``models`` (role -> short model id).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

MAX_PAYLOAD_BYTES = 64 * 1024
"""Hard cap on one serialized message; also the broker's ``max_packet_size`` minus headroom."""

KEYPOINT_LAYOUT = "coco17"
KEYPOINT_FORMAT = "x,y,c"
MAX_TRACKS_PER_FRAME = 64
MAX_FRAMES_PER_BATCH = 64

Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
MsgId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
Pseudonym = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
Verb = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
ShortText = Annotated[str, StringConstraints(max_length=300)]
Version = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._+-]{1,40}$")]
Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
NonNeg = Annotated[int, Field(ge=0)]


class MessageError(ValueError):
    """A message that does not fit its model or the size cap; ``str()`` says which field and why."""


def new_msg_id() -> str:
    return uuid.uuid4().hex


def stable_msg_id(namespace: str, key: str) -> str:
    """A msg_id that is the same every time for the same (namespace, key): replays re-raise the
    same alerts with the same ids, so the outbox and HQ recognise them."""
    return uuid.uuid5(uuid.UUID(namespace), key).hex


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Envelope(_Model):
    schema_: str = Field(alias="schema", serialization_alias="schema")
    msg_id: MsgId
    device_id: Ident
    session_id: MsgId
    seq: NonNeg
    ts: datetime
    sw_version: Version
    models: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")], Version] = Field(
        default_factory=dict, max_length=8)

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    @field_validator("ts")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        if v.tzinfo is None or v.utcoffset().total_seconds() != 0:
            raise ValueError("ts must be a UTC timestamp")
        return v


def _schema(name: str) -> str:
    return f"poselift.{name}/1"


class StatusMessage(Envelope):
    """Retained device availability. ``connection`` counts connections within the session: the last
    will of connection k is older than the birth of connection k + 1, whatever order they arrive in."""

    schema_: Literal["poselift.status/1"] = Field(_schema("status"), alias="schema", serialization_alias="schema")
    state: Literal["online", "offline", "stopped"]
    session_started: datetime
    connection: NonNeg
    cameras: list[Ident] = Field(default_factory=list, max_length=64)
    reason: ShortText | None = None


class OutboxHealth(_Model):
    depth: NonNeg
    bytes: NonNeg
    depth_by_kind: dict[Ident, NonNeg] = Field(default_factory=dict, max_length=16)
    dropped_poses: NonNeg = 0
    dropped_health: NonNeg = 0
    dropped_other: NonNeg = 0
    refused_alerts: NonNeg = 0
    dead_letters: NonNeg = 0
    published: NonNeg = 0


class CameraHealth(_Model):
    state: Literal["starting", "online", "stalled", "reconnecting", "failed", "offline", "stopped",
                   "disabled"] | None = None
    fps: Finite | None = None
    frames: NonNeg | None = None
    dropped_frames: NonNeg | None = None
    rejected_frames: NonNeg | None = None
    restarts: NonNeg | None = None
    last_frame_age_s: Finite | None = None


class HealthMessage(Envelope):
    schema_: Literal["poselift.health/1"] = Field(_schema("health"), alias="schema", serialization_alias="schema")
    uptime_s: Finite
    connected: bool
    reconnects: NonNeg
    alerts_acked: NonNeg = 0
    outbox: OutboxHealth
    cameras: dict[Ident, CameraHealth] = Field(default_factory=dict, max_length=64)
    infer_ms: dict[Ident, Finite] = Field(default_factory=dict, max_length=16)
    temperatures_c: dict[Ident, Finite] = Field(default_factory=dict, max_length=16)
    counters: dict[Ident, NonNeg] = Field(default_factory=dict, max_length=32)


class CameraStatusMessage(Envelope):
    schema_: Literal["poselift.camera_status/1"] = Field(_schema("camera_status"), alias="schema",
                                                         serialization_alias="schema")
    camera_id: Ident
    state: Literal["starting", "online", "stalled", "reconnecting", "failed", "offline", "stopped", "disabled"]
    fps: Finite | None = None
    reason: ShortText | None = None


class PoseTrack(_Model):
    track: Pseudonym
    box: list[Unit] = Field(min_length=4, max_length=4)
    kp: list[Unit] = Field(min_length=51, max_length=51)


class PoseFrame(_Model):
    frame_index: NonNeg
    t: Finite
    tracks: list[PoseTrack] = Field(max_length=MAX_TRACKS_PER_FRAME)


class PosesMessage(Envelope):
    """A batch of frames of one camera: boxes and keypoints normalized by ``frame_size``, keypoints
    flattened per track in ``layout`` order as ``kp_format`` triples."""

    schema_: Literal["poselift.poses/1"] = Field(_schema("poses"), alias="schema", serialization_alias="schema")
    camera_id: Ident
    layout: Literal["coco17"] = KEYPOINT_LAYOUT
    kp_format: Literal["x,y,c"] = KEYPOINT_FORMAT
    frame_size: list[Annotated[int, Field(gt=0, le=8192)]] = Field(min_length=2, max_length=2)
    frames: list[PoseFrame] = Field(min_length=1, max_length=MAX_FRAMES_PER_BATCH)


class AlertMessage(Envelope):
    """One step of an alert's lifecycle; ``t``/``started_t`` are camera-clock seconds."""

    schema_: Literal["poselift.alert/1"] = Field(_schema("alert"), alias="schema", serialization_alias="schema")
    alert_id: Ident
    event: Literal["new", "update", "end"]
    camera_id: Ident
    track: Pseudonym
    started_t: Finite
    t: Finite
    frame_index: NonNeg
    score: Finite
    peak_score: Finite
    threshold: Finite
    zone: Annotated[str, StringConstraints(max_length=64)] | None = None
    reason: ShortText = ""


class OtaStateMessage(Envelope):
    schema_: Literal["poselift.ota_state/1"] = Field(_schema("ota_state"), alias="schema",
                                                     serialization_alias="schema")
    state: Literal["idle", "downloading", "verifying", "building", "testing", "trial", "committed",
                   "rolled_back", "refused", "failed"]
    bundle_version: Version | None = None
    progress: Unit | None = None
    reason: ShortText | None = None


class CommandResultMessage(Envelope):
    schema_: Literal["poselift.command_result/1"] = Field(_schema("command_result"), alias="schema",
                                                          serialization_alias="schema")
    verb: Verb
    command_msg_id: MsgId | None = None
    ok: bool
    error: ShortText | None = None
    detail: dict[Ident, int | float | bool | Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=dict, max_length=16)


class CommandMessage(_Model):
    """HQ -> device on ``cmd/<verb>``. ``args`` is checked again by the verb's own model."""

    schema_: Literal["poselift.command/1"] = Field(_schema("command"), alias="schema", serialization_alias="schema")
    msg_id: MsgId
    ts: datetime
    sender: Ident
    device_id: Ident
    args: dict[Ident, object] = Field(default_factory=dict, max_length=16)

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


MODELS: dict[str, type[BaseModel]] = {
    "status": StatusMessage,
    "health": HealthMessage,
    "camera_status": CameraStatusMessage,
    "poses": PosesMessage,
    "alert": AlertMessage,
    "ota_state": OtaStateMessage,
    "command_result": CommandResultMessage,
    "command": CommandMessage,
}


def _describe(exc: ValidationError, kind: str) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "<message>"
        parts.append(f"{loc}: {err['msg']}")
    more = f" (+{exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return f"{kind} message invalid: " + "; ".join(parts) + more


def build(kind: str, fields: dict) -> BaseModel:
    """Validate ``fields`` against the model of ``kind``; :class:`MessageError` names the field."""
    try:
        return MODELS[kind].model_validate(fields)
    except ValidationError as exc:
        raise MessageError(_describe(exc, kind)) from None


def encode(msg: BaseModel) -> bytes:
    """Compact JSON of a validated message, refused over :data:`MAX_PAYLOAD_BYTES`."""
    data = msg.model_dump_json(by_alias=True, exclude_none=True).encode("utf-8")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise MessageError(f"{type(msg).__name__} is {len(data)} bytes; the cap is {MAX_PAYLOAD_BYTES}")
    return data


def decode(kind: str, data: bytes | bytearray | str) -> BaseModel:
    """Parse and validate a received payload; size is checked before any parsing."""
    if len(data) > MAX_PAYLOAD_BYTES:
        raise MessageError(f"payload is {len(data)} bytes; the cap is {MAX_PAYLOAD_BYTES}")
    try:
        return MODELS[kind].model_validate_json(data)
    except ValidationError as exc:
        raise MessageError(_describe(exc, kind)) from None
