"""``poselift-edge replay``: a recorded (or simulated) PoseLift Test set through scoring and MQTT.

The test videos play in real-time order (each camera's videos back to back, cameras interleaved),
``--speed X`` times faster (``0``: as fast as possible), through :class:`ScoringPipeline`, and every
alert, pose batch, health and status message goes through the device transport and its outbox. The
command exits once the replay is done and the outbox is empty.

Resuming after a crash without duplicates: a replay is a *run* recorded in the outbox database
(run id, pseudonym key, checkpoint = records whose alerts are already in the outbox). Alert ids are
deterministic per run (``alert_id_key`` = run id: camera, track, first frame) and so are the msg_ids
of alert events and pose batches. A restarted replay of the same data and model continues the run:
it re-runs the records before the checkpoint without publishing (to rebuild filter, window and alert
state), then carries on; events raised again after the checkpoint carry the msg_ids they had, so the
outbox ignores those it still holds and HQ those it already stored. SIGTERM pauses a run (no ``end``
events are invented), a finished and drained run is closed, and the next replay is a new run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import secrets
import signal
import sys
import time
from pathlib import Path

log = logging.getLogger("poselift.replay")

_KEYS = ("replay.key", "replay.run_id", "replay.pseudonym_key", "replay.checkpoint")


def register(sub) -> None:
    p = sub.add_parser("replay", help="replay a recorded PoseLift test set through scoring and transport",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="PoseLift-format dataset (its Test videos are played)")
    p.add_argument("--model", type=Path, required=True, help="STG-NF model directory")
    p.add_argument("--config", type=Path, help="device configuration (TOML); transport, alerting, device id")
    p.add_argument("--broker", help="HOST:PORT, overrides transport.host/port")
    p.add_argument("--speed", type=float, default=1.0, help="playback speed; 0 = as fast as possible (default 1)")
    p.add_argument("--threshold", type=float, help="alert threshold (default: config, else the model card)")
    p.add_argument("--drain-timeout", type=float, default=None,
                   help="seconds to wait for the outbox to empty at the end (default: wait until it does)")
    p.add_argument("--new-run", action="store_true", help="start a new run even if an unfinished one matches")
    p.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run)


def _fail(msg: str) -> int:
    print(f"poselift-edge replay: {msg}", file=sys.stderr)
    return 2


def _fingerprint(data: Path, videos, card, threshold) -> str:
    h = hashlib.sha256(str(data.resolve()).encode())
    for v in videos:
        h.update(f"|{v.name}:{v.n_frames}:{len(v.tracks)}".encode())
    h.update(json.dumps(sorted(card.files.items())).encode())
    h.update(repr(threshold).encode())
    return h.hexdigest()


def _open_run(outbox, key: str, new_run: bool) -> tuple[str, bytes, int]:
    """(run id, pseudonym key, checkpoint) of the unfinished run for ``key``, or a fresh run."""
    if not new_run and outbox.get_meta("replay.key") == key:
        rid, pkey = outbox.get_meta("replay.run_id"), outbox.get_meta("replay.pseudonym_key")
        ck = int(outbox.get_meta("replay.checkpoint") or 0)
        log.info("resuming replay run %s at record %d", rid[:8], ck)
        return rid, bytes.fromhex(pkey), ck
    if outbox.get_meta("replay.key") is not None:
        log.warning("an unfinished replay run of other data or another model is abandoned")
    rid, pkey = secrets.token_hex(16), secrets.token_bytes(32)
    outbox.set_meta({"replay.key": key, "replay.run_id": rid, "replay.pseudonym_key": pkey.hex(),
                     "replay.checkpoint": "0"})
    return rid, pkey, 0


def _model_id(card) -> str:
    h = hashlib.sha256(json.dumps(sorted(card.files.items())).encode()).hexdigest()[:12]
    return f"{card.name}-{h}"


def _publish_alerts(transport, events, msg_ids, stop) -> None:
    """Store alert events, waiting (never dropping) while the outbox is full of alerts."""
    from edge.transport.outbox import OutboxFull

    delay = 0.2
    while True:
        try:
            transport.publish_alerts(events, msg_ids=msg_ids)
            return
        except OutboxFull:
            if stop["now"]:
                raise
            log.error("outbox full of alerts: replay waits for the broker (%d alert event(s) held)", len(events))
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def run(args) -> int:
    from edge.config import ConfigError, load_config

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        return _fail("\n  ".join(["invalid configuration:"] + [str(e) for e in exc.errors]) + f"\n  ({exc.source})")
    level = (args.log_level or cfg.service.log_level).upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":  # one line per video file is noise here
        logging.getLogger("edge.datasets").setLevel(logging.WARNING)
    if args.speed < 0:
        return _fail("--speed must be >= 0")
    if args.broker:
        host, sep, port = args.broker.rpartition(":")
        if not sep or not host or not port.isdigit():
            return _fail(f"--broker expects HOST:PORT, got {args.broker!r}")
        cfg = cfg.model_copy(update={"transport": cfg.transport.model_copy(update={"host": host, "port": int(port)})})

    from edge.datasets.poselift import DatasetError, read_poselift_dataset
    from edge.scoring import ModelFormatError, load_scorer

    try:
        ds = read_poselift_dataset(args.data)
    except (DatasetError, OSError) as exc:
        return _fail(f"--data {args.data}: {exc}")
    if not ds.test:
        return _fail(f"--data {args.data}: no Test videos")
    try:
        scorer = load_scorer(args.model, backend=cfg.scoring.backend, max_batch=cfg.scoring.max_batch)
    except (ModelFormatError, OSError, ValueError) as exc:
        return _fail(f"--model {args.model}: {exc}")

    from edge.service.pipeline import PipelineError, ScoringPipeline
    from edge.sources.replay import iter_replay, replay_schedule
    from edge.transport.messages import stable_msg_id
    from edge.transport.outbox import Outbox
    from edge.transport.poses import Pseudonyms
    from edge.transport.publisher import Transport

    t = cfg.transport
    path = t.outbox_path or Path(cfg.device.state_dir) / "outbox.sqlite3"
    try:
        outbox = Outbox(path, t.outbox_max_messages, t.outbox_max_bytes)
    except (RuntimeError, OSError) as exc:
        return _fail(f"{exc} (set device.state_dir or transport.outbox_path in --config)")
    key = _fingerprint(args.data, ds.test, scorer.card, args.threshold)
    run_id, pkey, checkpoint = _open_run(outbox, key, args.new_run)
    ns = str(__import__("uuid").UUID(run_id))
    try:
        pipeline = ScoringPipeline(cfg, scorer, threshold=args.threshold, alert_id_key=run_id)
        pipeline.process_batch([])
    except PipelineError as exc:
        outbox.close()
        return _fail(str(exc))
    cameras = sorted({it.camera_id for it in replay_schedule(ds.test)})
    transport = Transport(t, cfg.device, models={"scorer": _model_id(scorer.card)}, cameras=cameras,
                          outbox=outbox, pseudonyms=Pseudonyms(pkey))
    transport.health_source = lambda: {"counters": {k: int(v) for k, v in pipeline.stats.as_dict().items()
                                                    if isinstance(v, int)},
                                       "infer_ms": {"scorer": round(pipeline.stats.as_dict()["score_ms_per_window"], 4)}}
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    transport.start()
    for cam in cameras:
        transport.publish_camera_status(cam, "online", reason="replay")

    seen: dict[str, int] = {}

    def ids_for(events) -> list[str]:
        out = []
        for ev in events:
            k = seen.get(ev.alert_id, 0)
            seen[ev.alert_id] = k + 1
            out.append(stable_msg_id(ns, f"alert/{ev.alert_id}/{k}"))
            if ev.event.value == "end":
                seen.pop(ev.alert_id, None)
        return out

    def pose_id(b: dict) -> str:
        f0 = b["frames"][0]
        return stable_msg_id(ns, f"poses/{b['camera_id']}/{f0['t']}/{f0['frame_index']}/{len(b['frames'])}")

    counts = {"records": 0, "skipped": 0, "alert_events": 0, "new": 0, "update": 0, "end": 0}
    t_wall, t_src, last_ck = None, None, time.monotonic()
    i = -1
    try:
        for i, (_, poses) in enumerate(iter_replay(ds.test)):
            if stop["now"]:
                break
            events = pipeline.process(poses)
            if i < checkpoint:  # already durable in an earlier attempt of this run
                counts["skipped"] += 1
                ids_for(events)
                continue
            if args.speed > 0:
                if t_wall is None:
                    t_wall, t_src = time.monotonic(), poses.t
                delay = t_wall + (poses.t - t_src) / args.speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            counts["records"] += 1
            if events:
                _publish_alerts(transport, events, ids_for(events), stop)
                for ev in events:
                    counts[ev.event.value] += 1
                counts["alert_events"] += len(events)
            transport.publish_poses(poses, pose_id)
            if time.monotonic() - last_ck >= 0.5:
                outbox.set_meta({"replay.checkpoint": str(i + 1)})
                last_ck = time.monotonic()
        if not stop["now"]:
            events = pipeline.finish()
            if events:
                _publish_alerts(transport, events, ids_for(events), stop)
                for ev in events:
                    counts[ev.event.value] += 1
                counts["alert_events"] += len(events)
            transport.flush_poses(pose_id)
            for cam in cameras:
                transport.publish_camera_status(cam, "offline", reason="replay finished")
            outbox.set_meta({"replay.checkpoint": str(i + 1)})
    except KeyboardInterrupt:
        stop["now"] = True
    if stop["now"]:
        outbox.set_meta({"replay.checkpoint": str(max(i, checkpoint))})
        log.warning("replay paused at record %d; run it again to resume", max(i, checkpoint))
        transport.stop(timeout=5)
        return 143
    drained = transport.wait_drained(args.drain_timeout)
    if drained:
        outbox.set_meta({k: None for k in _KEYS})
    health = transport.health_fields()["outbox"]
    transport.stop(timeout=10 if args.drain_timeout is None else max(1.0, args.drain_timeout))
    print(json.dumps({"run_id": run_id, **counts, "drained": drained, "outbox": health}), flush=True)
    return 0 if drained else 1
