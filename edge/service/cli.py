"""``poselift-edge run --config FILE``: the device service (what systemd starts)."""

from __future__ import annotations

import logging
import os
import signal
import sys


class _JournalFormatter(logging.Formatter):
    """``<priority>`` prefixes let journald keep the level; it adds its own timestamps."""

    _PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def format(self, record):
        return f"<{self._PRIORITY.get(record.levelno, 6)}>{record.name}: {super().format(record)}"


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def register(sub) -> None:
    p = sub.add_parser("run", help="run the device service",
                       description="Run the device service: cameras -> detector -> tracker -> pose -> scoring "
                                   "-> alerts -> MQTT. Sends READY/WATCHDOG to systemd when started by it.")
    p.add_argument("--config", required=True, help="TOML configuration file")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from edge.config import ConfigError, load_config
    from edge.config_cli import print_config_errors
    from edge.service.runner import DeviceService, ServiceError

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print_config_errors(exc)
        return 2
    setup_logging(cfg.service.log_level)
    log = logging.getLogger("edge.service")
    try:
        service = DeviceService(cfg)
    except ServiceError as exc:
        log.error("%s", exc)
        return 2

    def _on_signal(signum, _frame):
        log.info("signal %s: stopping", signal.Signals(signum).name)
        service.request_stop()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        service.start()
        service.run()
    except ServiceError as exc:
        log.error("%s", exc)
        service.stop(drain_timeout_s=5)
        return 2
    except Exception:
        log.exception("service failed")
        service.stop(drain_timeout_s=5)
        return 1
    drained = service.stop()
    log.info("stopped (%s)", "outbox drained" if drained else "messages left in the outbox for the next start")
    return 0
