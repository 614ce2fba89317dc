"""Commands from HQ on ``cmd/<verb>``: every payload gets a result, never an exception.

The checks run cheapest first (verb, retain flag, size, UTF-8, JSON, envelope, target device, verb
arguments), and the first failure becomes ``{"ok": false, "error": ...}`` on ``cmd/<verb>/result``
(``cmd/invalid/result`` when the verb is not a clean topic level). Retained commands are refused: a
retained command would run again on every reconnect.

Built-in verbs: ``ack`` (HQ has stored these alert messages), ``ping``, ``health`` (publish health
now), ``status`` (publish status now). Others can be registered with :meth:`Commands.register`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.transport.messages import CommandMessage, MsgId

log = logging.getLogger(__name__)

MAX_COMMAND_BYTES = 8 * 1024
_VERB = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_MSG_ID = re.compile(r"^[0-9a-f]{32}$")


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AckArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    msg_ids: Annotated[list[MsgId], Field(min_length=1, max_length=256)]


Handler = Callable[[BaseModel], dict]


def _short(text: str, n: int = 280) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _validation_text(exc: ValidationError) -> str:
    e = exc.errors()[0]
    loc = ".".join(str(p) for p in e["loc"]) or "<payload>"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{loc}: {e['msg']}{more}"


class Commands:
    """Parses and dispatches commands for one device."""

    def __init__(self, device_id: str):
        self.device_id = device_id
        self._verbs: dict[str, tuple[type[BaseModel], Handler]] = {}
        self.handled = 0
        self.rejected = 0

    def register(self, verb: str, args_model: type[BaseModel], handler: Handler) -> None:
        if not _VERB.match(verb):
            raise ValueError(f"bad verb {verb!r}")
        self._verbs[verb] = (args_model, handler)

    @property
    def verbs(self) -> list[str]:
        return sorted(self._verbs)

    def handle(self, verb: str, payload: bytes, retained: bool = False) -> dict:
        """The fields of a ``command_result`` message (``verb``, ``ok``, ``error``, ...)."""
        try:
            res = self._handle(verb, payload, retained)
        except Exception as exc:  # a handler bug must not take the transport down
            log.exception("command %r failed", verb)
            res = self._err(verb, None, f"internal error: {type(exc).__name__}")
        if res["ok"]:
            self.handled += 1
        else:
            self.rejected += 1
            log.warning("command %r rejected: %s", res["verb"], res["error"])
        return res

    def _err(self, verb: str, cmd_id: str | None, error: str) -> dict:
        out = {"verb": verb if _VERB.match(verb) else "invalid", "ok": False, "error": _short(error)}
        if cmd_id:
            out["command_msg_id"] = cmd_id
        return out

    def _handle(self, verb: str, payload: bytes, retained: bool) -> dict:
        if not isinstance(verb, str) or not _VERB.match(verb):
            return self._err("invalid", None, f"invalid verb {_short(repr(verb), 60)}")
        if retained:
            return self._err(verb, None, "retained commands are ignored; publish commands with retain=false")
        if len(payload) > MAX_COMMAND_BYTES:
            return self._err(verb, None, f"payload is {len(payload)} bytes; commands are at most {MAX_COMMAND_BYTES}")
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            return self._err(verb, None, f"payload is not UTF-8 (byte {exc.start})")
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError) as exc:
            return self._err(verb, None, f"malformed JSON: {exc}")
        cmd_id = raw.get("msg_id") if isinstance(raw, dict) else None
        cmd_id = cmd_id if isinstance(cmd_id, str) and _MSG_ID.match(cmd_id) else None
        if not isinstance(raw, dict):
            return self._err(verb, None, f"a command is a JSON object, not {type(raw).__name__}")
        try:
            cmd = CommandMessage.model_validate_json(text)
        except ValidationError as exc:
            return self._err(verb, cmd_id, f"not a poselift.command/1 message: {_validation_text(exc)}")
        except (ValueError, RecursionError) as exc:
            return self._err(verb, cmd_id, f"not a poselift.command/1 message: {exc}")
        if cmd.device_id != self.device_id:
            return self._err(verb, cmd.msg_id, f"addressed to device {cmd.device_id!r}, this is {self.device_id!r}")
        entry = self._verbs.get(verb)
        if entry is None:
            return self._err(verb, cmd.msg_id, f"unknown verb {verb!r}; known: {', '.join(self.verbs)}")
        model, handler = entry
        try:
            args = model.model_validate(cmd.args)
        except ValidationError as exc:
            return self._err(verb, cmd.msg_id, f"bad args for {verb}: {_validation_text(exc)}")
        detail = handler(args) or {}
        return {"verb": verb, "ok": True, "command_msg_id": cmd.msg_id, "detail": detail}
