"""``poselift-edge``: one entry point, one module per command.

Each command lives next to the stage it drives and exposes ``register(subparsers)``; this module only
imports the one that is asked for, so ``poselift-edge --help`` and start-up stay cheap (no Numba, no
ONNX Runtime until a command needs them). A registered parser sets ``func(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from edge import __version__

# command -> (module that registers it, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate-config": ("edge.config_cli", "check a configuration file; exit 2 listing every error"),
    "run": ("edge.service.cli", "run the device service (cameras -> alerts -> MQTT)"),
    "demo": ("edge.demo", "simulate a store, train, replay it and print alerts (the embedded default)"),
    "replay": ("edge.service.replay_cli", "replay a recorded PoseLift test set through scoring and transport"),
    "simulate": ("edge.simulate.cli", "generate a PoseLift-format dataset of synthetic store scenes"),
    "convert": ("edge.datasets.cli", "convert between the PoseLift and the STG-NF JSON layouts"),
    "train": ("edge.scoring.train_cli", "train an STG-NF model on normal data"),
    "model": ("edge.scoring.model_cli", "model tools: import-stgnf, info"),
    "score": ("edge.scoring.score_cli", "score normalized windows (NLL in bits/dim)"),
    "eval": ("edge.evaluation.cli", "benchmark protocol: AUC-ROC, AUC-PR, EER, per-frame scores, plots"),
    "calibrate-threshold": ("edge.alerting.calibrate_cli", "pick an alert threshold for a false-alarm budget"),
    "track": ("edge.tracking.cli", "run ByteTrack on a MOTChallenge detection file"),
    "engines": ("engines.cli", "inference engines: build (TensorRT), info"),
    "calibrate": ("calibration.cli", "INT8 calibration of a detector or pose model (QDQ ONNX)"),
    "detect": ("edge.perception.cli", "detect people and keypoints in an image or a video"),
}


def _top_parser() -> argparse.ArgumentParser:
    epilog = "commands:\n" + "\n".join(f"  {name:<20} {summary}" for name, (_, summary) in COMMANDS.items())
    p = argparse.ArgumentParser(
        prog="poselift-edge",
        description="PoseLift Edge: privacy-preserving shoplifting alerts from store cameras.",
        epilog=epilog + "\n\nRun 'poselift-edge COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"poselift-edge {__version__}")
    p.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        _top_parser().parse_args(argv or ["--help"])
        return 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog="poselift-edge")
    sub = parser.add_subparsers(dest="command", required=True)
    module.register(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
