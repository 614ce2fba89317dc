"""Broker security with a real mosquitto: the documented per-device ACL (pattern rules, password file
made with mosquitto_passwd -b) and TLS with client certificates and a systemd credential password."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from mqtt_broker import Broker, Recorder, free_port, make_password_file, require_mosquitto

from edge.config import DeviceConfig, TlsConfig, TransportConfig
from edge.records import AlertEvent, AlertPhase
from edge.transport.messages import build, encode, new_msg_id, utc_now
from edge.transport.publisher import Transport

DOCS = Path(__file__).resolve().parents[1] / "docs" / "mqtt"
USERS = {"dev-a": "pw-a", "dev-b": "pw-b", "poselift-hq": "pw-hq"}


def _secured_broker(tmp_path: Path, extra: str = "", port=None) -> Broker:
    require_mosquitto()
    pw = make_password_file(tmp_path / "passwd", USERS)
    return Broker(tmp_path / "b", port=port, allow_anonymous=False,
                  extra=f"password_file {pw}\nacl_file {DOCS / 'poselift.acl'}\nuse_username_as_clientid true\n"
                  + extra)


def _device(tmp_path, port, user, **kw) -> Transport:
    (tmp_path / f"{user}.pw").write_text(USERS[user] + "\n")
    cfg = TransportConfig(host="127.0.0.1", port=port, username=user, password_file=tmp_path / f"{user}.pw",
                          reconnect_min_s=0.2, reconnect_max_s=1.0, health_interval_s=3600, **kw)
    t = Transport(cfg, DeviceConfig(store_id="store-1", device_id=user, state_dir=tmp_path / user))
    t.start()
    end = time.monotonic() + 10
    while not t.connected and time.monotonic() < end:
        time.sleep(0.05)
    assert t.connected, f"{user} could not connect"
    return t


def _raw(port, user):
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, USERS[user])
    got = {"suback": None, "msgs": [], "puback": {}}
    c.on_publish = lambda cl, ud, mid, rc, props: got["puback"].__setitem__(mid, rc)
    c.on_subscribe = lambda cl, ud, mid, rcs, props: got.__setitem__("suback", rcs)
    c.on_message = lambda cl, ud, m: got["msgs"].append(m.topic)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c, got


def _ev():
    return AlertEvent("a1", AlertPhase.NEW, "cam1", 1, 0.0, 1.0, 15, 3.0, 3.0, 2.0)


def test_device_cannot_write_or_read_another_devices_topics(tmp_path):
    with _secured_broker(tmp_path) as b:
        hq = Recorder(b.port, ["poselift/v1/#"], username="poselift-hq", password=USERS["poselift-hq"],
                      client_id="poselift-hq")
        a = _device(tmp_path, b.port, "dev-a")
        dev_b = _device(tmp_path, b.port, "dev-b")
        a.publish_alert(_ev())
        assert hq.wait_for(lambda t, p, r: t == "poselift/v1/store-1/dev-a/cam/cam1/alerts")
        assert a.wait_drained(5)
        a.stop(5)  # the raw client below takes the dev-a identity

        c, got = _raw(b.port, "dev-a")
        forged = c.publish("poselift/v1/store-1/dev-b/cam/cam1/alerts", b'{"forged": true}', qos=1)
        forged.wait_for_publish(5)
        other_store = c.publish("poselift/v1/store-2/dev-b/status", b"offline", qos=1, retain=True)
        other_store.wait_for_publish(5)
        # mosquitto 2.0 grants these subscriptions and checks read access on every delivered message
        c.subscribe("poselift/v1/store-1/dev-b/cmd/+", qos=1)
        c.subscribe("poselift/v1/+/+/cmd/#", qos=1)
        time.sleep(0.3)
        cmd = build("command", {"schema": "poselift.command/1", "msg_id": new_msg_id(), "ts": utc_now(),
                                "sender": "hq", "device_id": "dev-b", "args": {}})
        hq.client.publish("poselift/v1/store-1/dev-b/cmd/ping", encode(cmd), qos=1).wait_for_publish(5)
        res = hq.wait_for(lambda t, p, r: t == "poselift/v1/store-1/dev-b/cmd/ping/result")
        assert res and json.loads(res[0][1])["ok"], "dev-b answers its own command"
        time.sleep(0.5)
        leaked = [t for t in got["msgs"] if "/dev-b/" in t]
        c.disconnect()
        c.loop_stop()
        assert not leaked, f"dev-a read dev-b's topics: {leaked}"
        assert not hq.take(lambda t, p, r: b"forged" in p or t.startswith("poselift/v1/store-2/")), \
            "the broker let dev-a write into dev-b's topics"
        # MQTT v5 tells the publisher: PUBACK reason 135, not authorized
        assert got["puback"][forged.mid].value == 135 and got["puback"][other_store.mid].value == 135
        dev_b.stop(5)
        hq.close()


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_pki(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=poselift-test-ca",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    for name, cn in (("broker", "localhost"), ("client", "dev-a")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", cwd=d)
        ext = d / f"{name}.ext"
        ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n" if name == "broker" else
                       "extendedKeyUsage=clientAuth\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-extfile", ext.name, "-out", f"{name}.crt", cwd=d)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed (needed to make test certificates)")
def test_tls_client_certificate_and_systemd_credential(tmp_path, monkeypatch):
    pki = tmp_path / "pki"
    _make_pki(pki)
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "mqtt-password").write_text(USERS["dev-a"] + "\n")
    port = free_port()
    # the documented broker configuration, with this test's paths and port
    conf = (DOCS / "mosquitto.conf").read_text().split("listener 1883 127.0.0.1")[0]
    conf = conf.replace("/etc/mosquitto/certs", str(pki)).replace("listener 8883", f"listener {port} 127.0.0.1")
    conf = conf.replace("# require_certificate true", "require_certificate true")
    b = _secured_broker(tmp_path, port=port)
    pw = make_password_file(tmp_path / "passwd", USERS)
    conf = (conf.replace("/etc/mosquitto/poselift.passwd", str(pw))
            .replace("/etc/mosquitto/poselift.acl", str(DOCS / "poselift.acl"))
            .replace("/var/lib/mosquitto/", f"{b.dir / 'data'}/"))
    b.conf.write_text(conf + ("user root\n" if __import__("os").geteuid() == 0 else "")
                      + "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
    with b:
        assert "port 1883" not in b.log.read_text(), "the documented config must not open a default listener"
        hq = None
        env = {"CREDENTIALS_DIRECTORY": str(creds)}
        tls = TlsConfig(ca_file=Path("$CREDENTIALS_DIRECTORY/../pki/ca.crt"), cert_file=pki / "client.crt",
                        key_file=pki / "client.key")
        cfg = TransportConfig(host="localhost", port=port, username="dev-a", tls=tls, reconnect_min_s=0.2,
                              reconnect_max_s=1.0, health_interval_s=3600)
        t = Transport(cfg, DeviceConfig(store_id="store-1", device_id="dev-a", state_dir=tmp_path / "s"),
                      environ=env)
        t.start()
        end = time.monotonic() + 10
        while not t.connected and time.monotonic() < end:
            time.sleep(0.05)
        assert t.connected, b.log.read_text()[-2000:]
        t.publish_alert(_ev())
        assert t.wait_drained(10)
        t.stop(5)
        # without a client certificate the broker refuses the TLS handshake; the device keeps retrying
        bad = Transport(cfg.model_copy(update={"tls": TlsConfig(ca_file=pki / "ca.crt")}),
                        DeviceConfig(store_id="store-1", device_id="dev-a", state_dir=tmp_path / "s2"), environ=env)
        bad.start()
        time.sleep(1.5)
        assert not bad.connected and bad._worker.is_alive()
        bad.stop(0.5)
        assert hq is None
