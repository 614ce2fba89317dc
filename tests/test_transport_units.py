"""Message models, outbox cap policy and durability, pose batching, pseudonyms (no broker needed)."""

from __future__ import annotations

import hashlib
import typing

import numpy as np
import pytest
from pydantic import BaseModel

from mqtt_broker import fuzz_commands

from edge.records import Poses
from edge.transport.commands import Commands, NoArgs
from edge.transport import messages as m
from edge.transport.outbox import Outbox, OutboxFull, Row
from edge.transport.poses import PoseBatcher, Pseudonyms
from edge.transport.topics import Topics, parse


def _env(**kw):
    d = dict(schema=None, msg_id=m.new_msg_id(), device_id="d1", session_id=m.new_msg_id(), seq=1, ts=m.utc_now(),
             sw_version="0.1.0", models={"scorer": "stgnf-abc"})
    d.pop("schema")
    d.update(kw)
    return d


def _alert(**kw):
    return dict(_env(), alert_id="a-1", event="new", camera_id="cam1", track="0123456789abcdef", started_t=1.0,
                t=2.0, frame_index=30, score=3.0, peak_score=3.5, threshold=2.0, **kw)


def _walk(tp, seen):
    if tp in seen:
        return
    seen.add(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for f in tp.model_fields.values():
            _walk(f.annotation, seen)
    for a in typing.get_args(tp):
        _walk(a, seen)


def test_no_model_can_carry_bytes():
    seen: set = set()
    for model in m.MODELS.values():
        _walk(model, seen)
    assert bytes not in seen and bytearray not in seen and memoryview not in seen


def test_models_are_strict_and_capped():
    a = m.build("alert", _alert())
    data = m.encode(a)
    assert m.decode("alert", data) == a
    with pytest.raises(m.MessageError, match="(?i)extra"):
        m.build("alert", _alert(thumbnail="aGVsbG8="))
    with pytest.raises(m.MessageError, match="score"):
        m.build("alert", {**_alert(), "score": "high"})
    with pytest.raises(m.MessageError, match="UTC"):
        from datetime import datetime
        m.build("alert", {**_alert(), "ts": datetime.now()})
    with pytest.raises(m.MessageError, match="cap"):
        m.decode("alert", b" " * (m.MAX_PAYLOAD_BYTES + 1))
    # a pose batch at its list limits is still refused by the byte cap rather than sent
    track = {"track": "0123456789abcdef", "box": [0.1] * 4, "kp": [0.123456] * 51}
    frames = [{"frame_index": i, "t": i / 15, "tracks": [track] * 64} for i in range(8)]
    msg = m.build("poses", dict(_env(), camera_id="cam1", frame_size=[1920, 1080], frames=frames))
    with pytest.raises(m.MessageError, match="cap"):
        m.encode(msg)
    with pytest.raises(m.MessageError):  # coordinates outside the frame are not representable
        m.build("poses", dict(_env(), camera_id="cam1", frame_size=[1920, 1080],
                              frames=[{"frame_index": 0, "t": 0.0, "tracks": [{**track, "kp": [1.5] * 51}]}]))


def test_topics_round_trip():
    tp = Topics("poselift/v1", "s1", "d1")
    assert parse(tp.camera("cam1", "alerts"), "poselift/v1").kind == "alert"
    assert parse(tp.result("ack"), "poselift/v1").verb == "ack"
    assert tp.result("Bad Verb!") == "poselift/v1/s1/d1/cmd/invalid/result"
    assert parse("other/v1/s1/d1/status", "poselift/v1") is None
    with pytest.raises(ValueError):
        Topics("poselift/v1", "s/1", "d1")


def _row(kind, i, size=100):
    return Row(hashlib.md5(f"{kind}{i}".encode()).hexdigest(), kind, f"t/{kind}", b"x" * size, False)


def test_outbox_durable_and_deduped(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite3")
    assert ob._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ob._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert ob.put(_row("alert", 1)) and not ob.put(_row("alert", 1))
    ob.put_many([_row("poses", 2), _row("health", 3)])
    batch = ob.next_batch(10)
    assert [p.kind for p in batch] == ["alert", "health", "poses"]  # send priority
    ob.ack([batch[0].id])
    ob.close()
    ob2 = Outbox(tmp_path / "o.sqlite3")  # reopened: in-flight state is gone, rows are not
    assert ob2.depth == 2 and ob2.inflight == 0 and ob2.depth_by_kind() == {"poses": 1, "health": 1}


def test_outbox_cap_policy(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite3", max_messages=10)
    for i in range(6):
        ob.put(_row("poses", i))
    for i in range(4):
        ob.put(_row("health", i))
    assert ob.depth == 10
    ob.put(_row("poses", 99))  # a pose evicts the oldest pose
    assert ob.dropped["poses"] == 1 and ob.depth == 10
    for i in range(6):  # alerts evict every pose, then health
        assert ob.put(_row("alert", i))
    assert ob.depth_by_kind() == {"alert": 6, "health": 4}
    assert ob.dropped["poses"] == 7
    ob.put(_row("status", 1))
    assert ob.dropped["health"] == 1
    assert not ob.put(_row("poses", 100))  # nothing it may evict: the pose is dropped, counted
    assert ob.dropped["poses"] == 8
    assert len(ob.next_batch(20)) == 10  # in flight: never evicted, so a new alert is refused
    with pytest.raises(OutboxFull):
        ob.put(_row("alert", 6))
    assert ob.refused_alerts == 1
    ob.release_all()
    for i in range(7, 10):  # the three remaining health messages make room
        assert ob.put(_row("alert", i))
    assert ob.depth_by_kind() == {"alert": 9, "status": 1}
    with pytest.raises(OutboxFull):
        ob.put_many([_row("alert", 50), _row("alert", 51)])
    assert ob.refused_alerts == 2
    assert not ob.contains(_row("alert", 50).msg_id)  # all or nothing


def test_pseudonyms_and_batches():
    p1, p2 = Pseudonyms(b"k" * 32), Pseudonyms(b"k" * 32)
    assert p1("cam1", 7) == p2("cam1", 7) != Pseudonyms()("cam1", 7)
    assert p1("cam1", 7) != p1("cam2", 7) and len(p1("cam1", 7)) == 16
    b = PoseBatcher(max_hz=2.0, sample_fps=5.0, pseudonym=p1)
    kp = np.zeros((2, 17, 3), np.float32)
    kp[..., 0], kp[..., 1], kp[..., 2] = 960.0, 1200.0, 0.9  # y beyond the frame is clipped
    boxes = np.array([[0, 0, 100, 200], [10, 10, 50, 50]], np.float32)
    out = []
    for f in range(30):
        out += b.add(Poses("cam1", f, f / 15.0, np.array([7, 8]), boxes, kp, (), (1920, 1080)))
    out += b.flush()
    assert len(out) == 4  # 2 s at 2 batches/s
    frames = [fr for batch in out for fr in batch["frames"]]
    assert len(frames) == 10  # 5 fps of 15
    tr = frames[0]["tracks"][0]
    assert tr["kp"][:3] == [0.5, 1.0, 0.9] and tr["box"] == [0.0, 0.0, round(100 / 1920, 4), round(200 / 1080, 4)]
    assert all(isinstance(v, float) for v in tr["kp"])
    m.build("poses", dict(_env(), **out[0]))


def test_outbox_byte_cap(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite3", max_messages=1000, max_bytes=1000)
    for i in range(4):
        ob.put(_row("poses", i, size=300))
    assert ob.depth == 3 and ob.bytes == 900 and ob.dropped["poses"] == 1
    assert ob.put(_row("alert", 1, size=600))  # evicts two pose batches
    assert ob.depth_by_kind() == {"poses": 1, "alert": 1} and ob.bytes == 900
    with pytest.raises(OutboxFull):
        ob.put(_row("alert", 2, size=800))


def test_command_fuzz_unit():
    """2,000 seeded cases straight into the command parser: always a result dict, never an exception."""
    import random

    cmds = Commands("edge-0001")
    cmds.register("ping", NoArgs, lambda a: {"pong": True})
    seen_ok = seen_err = 0
    for verb, payload, retain in fuzz_commands(random.Random(7), "edge-0001", 2000):
        res = cmds.handle(verb, payload, retain)
        m.build("command_result", dict(_env(), **res))  # always a valid result message
        seen_ok += res["ok"]
        seen_err += not res["ok"]
    assert seen_ok > 0 and seen_err > 1500 and cmds.handled + cmds.rejected == 2000
