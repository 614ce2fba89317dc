"""Tracker speed: Numba ByteTrack vs supervision 0.30.9's ByteTrack vs the numpy reference, one run.

    .venv/bin/python bench/bench_tracking.py [--quick] [--compile]

Measures the tracker update only (detections prepared beforehand), single thread, on
- the MOT15 sequences of ../shared/tracking/detections (about 6 detections a frame),
- a crowded synthetic scene at 50 and 200 detections a frame,
and the start-up cost: a fresh process with the Numba cache present (cold) and, with ``--compile``,
one with an empty cache. Prints frames/s, ms a frame and the ratios.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("POSELIFT_SHARED", ROOT.parent / "shared"))

from edge.tracking.bytetrack import ByteTracker  # noqa: E402
from edge.tracking.motio import read_detections  # noqa: E402
from edge.tracking.reference import NumpyByteTracker  # noqa: E402
from edge.tracking.synthetic import crowded_scene  # noqa: E402

COLD_SNIPPET = """
import time, numpy as np
t0 = time.perf_counter()
from edge.tracking.bytetrack import ByteTracker
t1 = time.perf_counter()
trk = ByteTracker()
trk.update(np.array([[10., 10., 50., 120.]]), np.array([0.9]))
t2 = time.perf_counter()
trk.update(np.array([[12., 10., 52., 120.]]), np.array([0.9]))
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def load_sequences() -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    seqs = {}
    for p in sorted((SHARED / "tracking" / "detections").glob("*.txt")):
        det = read_detections(p)
        seqs[p.stem] = [(b.copy(), s.copy()) for _, b, s in det.by_frame()]
    return seqs


def run_ours(frames, repeats=1, **kw) -> float:
    best = float("inf")
    for _ in range(repeats):
        trk = ByteTracker(**kw)
        t0 = time.perf_counter()
        for b, s in frames:
            trk.update(b, s)
        best = min(best, time.perf_counter() - t0)
    return best


def run_numpy(frames, **kw) -> float:
    trk = NumpyByteTracker(**kw)
    t0 = time.perf_counter()
    for b, s in frames:
        trk.update(b, s)
    return time.perf_counter() - t0


def run_supervision(frames, api: str, track_thresh=0.5, match_thresh=0.8):
    import supervision as sv

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trk = sv.ByteTrack(track_activation_threshold=track_thresh, lost_track_buffer=30,
                           minimum_matching_threshold=match_thresh, frame_rate=30)
    if api == "detections":
        inputs = [sv.Detections(xyxy=b.astype(np.float32), confidence=s.astype(np.float32),
                                class_id=np.zeros(len(s), int)) for b, s in frames]
        step = trk.update_with_detections
    else:
        inputs = [np.hstack([b, s[:, None]]).astype(np.float32) for b, s in frames]
        step = trk.update_with_tensors
    t0 = time.perf_counter()
    for x in inputs:
        step(x)
    return time.perf_counter() - t0


def cold_start(cache_dir: str | None) -> tuple[float, float, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    out = subprocess.run([sys.executable, "-c", COLD_SNIPPET], env=env, capture_output=True, text=True,
                         check=True, cwd=str(ROOT))
    a, b, c = (float(v) for v in out.stdout.split())
    return a, b, c


def line(name, frames, seconds):
    n = len(frames)
    return f"  {name:<34} {n / seconds:>10.0f} frames/s {seconds / n * 1e3:>9.4f} ms/frame"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats and shorter stress runs")
    ap.add_argument("--compile", action="store_true",
                    help="also time a fresh process with an empty Numba cache (compiles everything, ~20-30 s)")
    args = ap.parse_args()
    reps = 3 if args.quick else 7

    # Warm every kernel before timing (and make sure the on-disk cache exists for the cold run).
    run_ours(crowded_scene(20, 20, seed=1))
    print("start-up, fresh process (import / first update / second update):")
    runs = [("cold, Numba cache present", None)]
    if args.compile:
        runs.append(("no cache (compile)", tempfile.mkdtemp()))
    for label, cache in runs:
        a, b, c = cold_start(cache)
        print(f"  {label:<34} import {a * 1e3:7.1f} ms, first update {b * 1e3:8.1f} ms, "
              f"second {c * 1e3:.3f} ms")

    seqs = load_sequences()
    if not seqs:
        print(f"no sequences under {SHARED / 'tracking' / 'detections'}; stress only")
    all_frames = [f for frames in seqs.values() for f in frames]
    if all_frames:
        n_det = sum(len(s) for _, s in all_frames)
        print(f"\nMOT15 sequences: {len(seqs)} sequences, {len(all_frames)} frames, "
              f"{n_det / len(all_frames):.1f} detections/frame (track_thresh 0.5, match_thresh 0.8)")
        first = run_ours(all_frames, repeats=1)  # includes the in-process first call
        ours = sum(run_ours(fr, repeats=reps) for fr in seqs.values())
        sv_det = sum(run_supervision(fr, "detections") for fr in seqs.values())
        sv_ten = sum(run_supervision(fr, "tensors") for fr in seqs.values())
        ref = sum(run_numpy(fr) for fr in seqs.values())
        print(line("numba ByteTracker (warm, best of %d)" % reps, all_frames, ours))
        print(line("numba ByteTracker (first pass)", all_frames, first))
        print(line("supervision update_with_detections", all_frames, sv_det))
        print(line("supervision update_with_tensors", all_frames, sv_ten))
        print(line("numpy reference", all_frames, ref))
        print(f"  ratios: {sv_det / ours:.1f}x supervision (detections API), {sv_ten / ours:.1f}x supervision "
              f"(tensors API), {ref / ours:.1f}x numpy reference; "
              f"{1.52e-3 / (ours / len(all_frames)):.1f}x the original's 1.52 ms/frame measured on the same kind "
              f"of VM (not in this run)")

    for n_people in (50, 200):
        n_frames = (100 if args.quick else 300) if n_people == 50 else (40 if args.quick else 120)
        frames = crowded_scene(n_people, n_frames, seed=n_people)
        n_det = sum(len(s) for _, s in frames) / len(frames)
        ours = run_ours(frames, repeats=reps)
        sv_det = run_supervision(frames, "detections")
        ref = run_numpy(frames)
        print(f"\nstress: {n_people} people, {n_det:.0f} detections/frame, {n_frames} frames")
        print(line("numba ByteTracker", frames, ours))
        print(line("supervision update_with_detections", frames, sv_det))
        print(line("numpy reference", frames, ref))
        print(f"  ratios: {sv_det / ours:.1f}x supervision, {ref / ours:.1f}x numpy reference")
    pseudonym_cost(2_000 if args.quick else 20_000)
    return 0


def pseudonym_cost(n: int) -> None:
    """What a new track's outgoing id costs, and the memory a session keeps, against one HMAC per track
    plus a set of every id given (the simple way to guarantee uniqueness) in the same run."""
    import hashlib
    import hmac
    import tracemalloc

    from edge.tracking.pseudonyms import KeyedPseudonyms, RandomPseudonyms

    def hmac_with_set(key=b"k" * 32):
        used: set[int] = set()

        def give(cam, t):
            v = int.from_bytes(hmac.new(key, f"{cam}|{t}".encode(), hashlib.sha256).digest()[:8], "big") >> 1
            used.add(v)
            return v
        return give

    print(f"\npseudonyms: {n} tracks registered and finished (4 cameras)")
    base = None
    for name, make in (("HMAC + set of used ids (baseline)", hmac_with_set), ("RandomPseudonyms", RandomPseudonyms),
                       ("KeyedPseudonyms", lambda: KeyedPseudonyms(b"k" * 32, b"s"))):
        p = make()
        forget = getattr(p, "forget", lambda c, t: None)
        tracemalloc.start()
        t0 = time.perf_counter()
        for t in range(n):
            p(f"cam{t % 4}", t)
            forget(f"cam{t % 4}", t)
        dt = time.perf_counter() - t0
        kept = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        base = base or (dt, kept)
        print(f"  {name:<34} {dt / n * 1e6:6.1f} us per new track ({dt / base[0]:.1f}x), "
              f"{kept / 1024:8.1f} KiB kept ({kept / base[1]:.3f}x)")


if __name__ == "__main__":
    sys.exit(main())
