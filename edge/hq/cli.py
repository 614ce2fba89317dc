"""``poselift-hq``: the HQ side of the MQTT link.

    poselift-hq consume --broker HOST:PORT --db PATH     store everything devices publish, ack alerts
    poselift-hq alerts  --db PATH [--since T] [--store S] [--json] [--events]
    poselift-hq devices --db PATH                         availability and seq gaps per device session
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import ssl
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path


def _broker(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _since(text: str) -> str:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if m:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        dt = datetime.now(timezone.utc) - timedelta(**{unit: float(m.group(1))})
    else:
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--since takes an ISO time (2026-01-31T12:00Z) or an age "
                                             f"(30m, 2h, 7d), got {text!r}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _db_arg(p: argparse.ArgumentParser, must_exist: bool) -> None:
    p.add_argument("--db", type=Path, required=True, help="HQ SQLite database" + (" (must exist)" if must_exist else ""))


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="poselift-hq", description="PoseLift HQ: collect alerts, health and status.")
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("consume", help="subscribe to every store and store what devices publish")
    c.add_argument("--broker", type=_broker, required=True, metavar="HOST:PORT")
    _db_arg(c, False)
    c.add_argument("--prefix", default="poselift/v1", help="topic root (default poselift/v1)")
    c.add_argument("--client-id", default="poselift-hq", help="MQTT client id; keep it fixed (persistent session)")
    c.add_argument("--username")
    c.add_argument("--password-file", type=Path, help="file holding the broker password")
    c.add_argument("--tls-ca", type=Path, help="CA bundle; enables TLS")
    c.add_argument("--tls-cert", type=Path)
    c.add_argument("--tls-key", type=Path)
    c.add_argument("--no-ack", action="store_true", help="do not acknowledge alerts back to devices")
    c.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    a = sub.add_parser("alerts", help="list alerts (one line per alert, newest last)")
    _db_arg(a, True)
    a.add_argument("--since", type=_since, help="only alerts active since (ISO time, or an age: 30m, 2h, 7d)")
    a.add_argument("--store", help="only this store")
    a.add_argument("--events", action="store_true", help="list every lifecycle event instead")
    a.add_argument("--json", action="store_true", help="JSON lines")
    d = sub.add_parser("devices", help="device availability and sequence gaps per session")
    _db_arg(d, True)
    d.add_argument("--json", action="store_true")
    return ap


def _open_store(path: Path, must_exist: bool):
    from edge.hq.store import HqStore

    if must_exist and not path.is_file():
        print(f"poselift-hq: {path}: no such database (run 'poselift-hq consume --db {path}' first)", file=sys.stderr)
        return None
    return HqStore(path)


def _consume(args) -> int:
    from edge.hq.consumer import Consumer

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    password = None
    if args.password_file:
        try:
            password = args.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            print(f"poselift-hq: --password-file {args.password_file}: {exc.strerror}", file=sys.stderr)
            return 2
    ctx = None
    if args.tls_ca:
        try:
            ctx = ssl.create_default_context(cafile=str(args.tls_ca))
            if args.tls_cert:
                ctx.load_cert_chain(str(args.tls_cert), str(args.tls_key) if args.tls_key else None)
        except (OSError, ssl.SSLError) as exc:
            print(f"poselift-hq: TLS files: {exc}", file=sys.stderr)
            return 2
    store = _open_store(args.db, False)
    host, port = args.broker
    consumer = Consumer(store, host, port, prefix=args.prefix, client_id=args.client_id, username=args.username,
                        password=password, tls_context=ctx, ack=not args.no_ack)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    consumer.start()
    logging.getLogger("poselift-hq").info("consuming from %s:%d into %s", host, port, args.db)
    try:
        consumer.run(stop)
    finally:
        consumer.stop()
        print(json.dumps({"counts": consumer.counts, "alerts": len(store.alerts())}), flush=True)
        store.close()
    return 0


def _alerts(args) -> int:
    store = _open_store(args.db, True)
    if store is None:
        return 2
    rows = store.alert_events(args.store) if args.events else store.alerts(args.since, args.store)
    if args.json:
        for r in rows:
            print(json.dumps(r))
    elif args.events:
        for r in rows:
            print(f"{r['store']}/{r['device']} {r['camera']} {r['alert_id']} {r['event']:<6} track {r['track']} "
                  f"frame {r['frame_index']} seq {r['seq']}")
    else:
        print(f"{'first seen (UTC)':<28} {'store/device':<26} {'camera':<8} {'state':<6} {'peak':>7} {'events':>6}  alert")
        for r in rows:
            print(f"{r['first_ts']:<28} {r['store'] + '/' + r['device']:<26} {r['camera']:<8} {r['state']:<6} "
                  f"{r['peak_score']:>7.3f} {r['events']:>6}  {r['alert_id']}")
        print(f"{len(rows)} alert(s)")
    store.close()
    return 0


def _devices(args) -> int:
    store = _open_store(args.db, True)
    if store is None:
        return 2
    devices, gaps = store.devices(), store.gaps()
    if args.json:
        print(json.dumps({"devices": devices, "sessions": gaps}))
    else:
        for d in devices:
            print(f"{d['store']}/{d['device']}: {d['state']} since {d['status_ts']} (sw {d['sw_version']}, "
                  f"session {d['session_id'][:8]})")
        for g in gaps:
            miss = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in g["missing"][:10]) or "none"
            print(f"  {g['store']}/{g['device']} session {g['session_id'][:8]}: {g['received']} received, "
                  f"last seq {g['last_seq']}, missing {g['missing_count']} ({miss})")
    store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"consume": _consume, "alerts": _alerts, "devices": _devices}[args.command](args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
