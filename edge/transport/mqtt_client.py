"""A configured paho-mqtt 2.x client: MQTT v5, credentials, TLS, backoff.

Secrets come from the configuration or from systemd credentials: paths may use
``$CREDENTIALS_DIRECTORY``, and with a user name but no password configured the password is read
from ``$CREDENTIALS_DIRECTORY/mqtt-password`` when that file exists (``LoadCredential=mqtt-password:...``
in the unit keeps it out of the environment and off the disk image).
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import TransportConfig

CREDENTIAL_PASSWORD = "mqtt-password"


class TransportSetupError(ValueError):
    """Credentials or TLS files that cannot be used; the message names the setting and the file."""


def _expand(p: Path | str, environ) -> Path:
    text = str(p)
    if "$CREDENTIALS_DIRECTORY" in text or "${CREDENTIALS_DIRECTORY}" in text:
        cred = environ.get("CREDENTIALS_DIRECTORY")
        if not cred:
            raise TransportSetupError(f"{text}: CREDENTIALS_DIRECTORY is not set (start under systemd with "
                                      "LoadCredential=, or give a plain path)")
        text = text.replace("${CREDENTIALS_DIRECTORY}", cred).replace("$CREDENTIALS_DIRECTORY", cred)
    return Path(os.path.expanduser(text))


def _read_secret(path: Path, setting: str) -> str:
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise TransportSetupError(f"transport.{setting}: cannot read {path}: {exc.strerror or exc}") from None


def resolve_password(cfg: TransportConfig, environ=None) -> str | None:
    environ = os.environ if environ is None else environ
    if cfg.password is not None:
        return cfg.password
    if cfg.password_file is not None:
        return _read_secret(_expand(cfg.password_file, environ), "password_file")
    cred = environ.get("CREDENTIALS_DIRECTORY")
    if cfg.username and cred and (Path(cred) / CREDENTIAL_PASSWORD).is_file():
        return _read_secret(Path(cred) / CREDENTIAL_PASSWORD, "password (systemd credential)")
    return None


def _tls_context(cfg: TransportConfig, environ) -> ssl.SSLContext:
    tls = cfg.tls
    files = {}
    for name in ("ca_file", "cert_file", "key_file"):
        v = getattr(tls, name)
        if v is not None:
            p = _expand(v, environ)
            if not p.is_file():
                raise TransportSetupError(f"transport.tls.{name}: {p} does not exist")
            files[name] = p
    if ("cert_file" in files) != ("key_file" in files):
        raise TransportSetupError("transport.tls: cert_file and key_file go together")
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(files["ca_file"]) if "ca_file" in files
                                     else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if "cert_file" in files:
        try:
            ctx.load_cert_chain(str(files["cert_file"]), str(files["key_file"]))
        except (ssl.SSLError, OSError) as exc:
            raise TransportSetupError(f"transport.tls: cannot load {files['cert_file']} / {files['key_file']}: "
                                      f"{exc}") from None
    if tls.insecure:
        ctx.check_hostname = False
    return ctx


def make_client(cfg: TransportConfig, client_id: str, environ=None) -> mqtt.Client:
    """A v5 client with clean start (the outbox, not the broker session, is what makes delivery durable)."""
    environ = os.environ if environ is None else environ
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if cfg.username:
        c.username_pw_set(cfg.username, resolve_password(cfg, environ))
    if cfg.tls is not None:
        c.tls_set_context(_tls_context(cfg, environ))
        if cfg.tls.insecure:
            c.tls_insecure_set(True)
    # paho types these as int but computes with floats; sub-second delays matter in tests
    c.reconnect_delay_set(min_delay=cfg.reconnect_min_s, max_delay=max(cfg.reconnect_min_s, cfg.reconnect_max_s))
    c.max_inflight_messages_set(cfg.max_inflight)
    c.max_queued_messages_set(cfg.max_inflight * 2)
    return c
