"""``poselift-edge validate-config FILE``: exit 0 when valid, 2 with every error and its key path."""

from __future__ import annotations

import sys

from edge.config import ConfigError, load_config


def register(sub) -> None:
    p = sub.add_parser("validate-config", help="check a configuration file")
    p.add_argument("file", help="TOML configuration file")
    p.add_argument("--print", action="store_true", help="print the effective configuration as JSON")
    p.set_defaults(func=_run)


def _run(args) -> int:
    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.errors)} error(s)", file=sys.stderr)
        for issue in exc.errors:
            print(f"  {issue}", file=sys.stderr)
        return 2
    if args.print:
        print(cfg.model_dump_json(indent=2))
    else:
        print(f"{args.file}: OK ({len(cfg.cameras)} camera(s))")
    return 0
