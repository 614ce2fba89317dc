"""``poselift-edge track``: ByteTrack over a MOTChallenge detection file, MOT results out.

Every frame from 1 to the last detected one is stepped, empty ones included, so frame numbers are
time as in the original evaluation scripts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _unit(name: str):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not 0.0 <= v <= 1.0:
            raise argparse.ArgumentTypeError(f"{name} must be within 0..1, got {text}")
        return v
    return parse


def _positive(kind):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return v
    return parse


def register(sub) -> None:
    p = sub.add_parser("track", help="run ByteTrack on a MOTChallenge detection file",
                       description="Track a MOTChallenge detection file (frame,-1,x,y,w,h,score,...) with "
                                   "ByteTrack and write frame,id,x,y,w,h,score,-1,-1,-1 rows.")
    p.add_argument("--detections", required=True, type=Path, help="MOTChallenge detection file")
    p.add_argument("--out", required=True, type=Path, help="where to write the MOT results")
    p.add_argument("--track-thresh", type=_unit("--track-thresh"), default=0.5,
                   help="high/low detection split (default 0.5); new tracks need this + 0.1")
    p.add_argument("--match-thresh", type=_unit("--match-thresh"), default=0.8,
                   help="largest cost accepted in the first association (default 0.8)")
    p.add_argument("--track-buffer", type=_positive(int), default=30, help="frames a lost track is kept at 30 fps")
    p.add_argument("--frame-rate", type=_positive(float), default=30.0, help="frame rate of the sequence")
    p.add_argument("--iou", choices=("plain", "legacy"), default="plain",
                   help="IoU convention: plain, or legacy (+1 pixel sides, as the original's cython_bbox)")
    p.add_argument("--mot20", action="store_true", help="do not fuse detection scores into the IoU cost")
    p.set_defaults(func=run)


def run(args) -> int:
    from edge.tracking.bytetrack import ByteTracker
    from edge.tracking.motio import MotFormatError, format_rows, read_detections

    try:
        det = read_detections(args.detections)
    except MotFormatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tracker = ByteTracker(args.track_thresh, args.match_thresh, args.track_buffer, args.frame_rate,
                          fuse_score=not args.mot20, iou=args.iou)
    chunks = []
    n_rows = 0
    ids = set()
    t0 = time.perf_counter()
    for frame, boxes, scores in det.by_frame():
        out = tracker.update(boxes, scores)
        if len(out):
            chunks.append(format_rows(frame, out.ids, out.tlwh, out.scores))
            n_rows += len(out)
            ids.update(out.ids.tolist())
    elapsed = time.perf_counter() - t0
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".part")
        tmp.write_text("".join(chunks), encoding="utf-8")
        tmp.replace(args.out)
    except OSError as e:
        print(f"error: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    if tracker.dropped:
        print(f"warning: {tracker.dropped} detections dropped (side under 0.001 px or a coordinate beyond "
              f"1e6 px)", file=sys.stderr)
    n_frames = det.last_frame
    print(f"{args.detections}: {n_frames} frames, {len(det.frames)} detections -> {n_rows} rows, "
          f"{len(ids)} tracks in {args.out} ({elapsed * 1e3:.1f} ms incl. first-call load)")
    return 0
