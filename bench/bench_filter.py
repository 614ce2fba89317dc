"""Pose filter: lag each smoother adds (frames) and its cost (microseconds per track-frame).

Run: ``.venv/bin/python bench/bench_filter.py`` (about a minute on 2 cores).

Lag, on synthetic 15 fps trajectories (17 joints, jitter sigma 2 px):
  ramp   steady-state lag on constant velocity of 1 and 4 px/frame (frames);
  step   delay of the 50 % crossing of a 100 px step, relative to the raw step;
  xcorr  shift that maximises the cross-correlation with a clean band-limited motion (0.1-1 Hz,
         amplitude ~ 1/f, about 100 px peak to peak), with parabolic sub-frame refinement;
  live   frames the live stage holds a record back (PoseFilter.delay);
  jitter output std / input std on a still pose with sigma 2 px jitter (lower is smoother);
  error  RMS distance (px) of the output from that clean motion (what smoothing distorts).
Cost: offline functions on one long track with gaps, and the live PoseFilter on a stream of
several tracks, against a plain numpy baseline (np.interp per coordinate + np.convolve 8-frame
mean) measured in the same run. Cold = first call in a fresh process with the Numba cache present.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.config import FilteringConfig  # noqa: E402
from edge.filtering import PoseFilter, filter_track  # noqa: E402
from edge.records import Poses  # noqa: E402

FPS = 15.0
MODES = ("none", "centered", "causal", "causal_mean", "one_euro")
RNG = np.random.default_rng(0)


def track_from(x: np.ndarray, y: np.ndarray | None = None, noise: float = 0.0):
    n = len(x)
    kp = np.zeros((n, 17, 3), np.float32)
    kp[:, :, 0] = x[:, None] + RNG.normal(0, noise, (n, 17)) if noise else x[:, None]
    kp[:, :, 1] = (y if y is not None else np.zeros(n))[:, None] + (RNG.normal(0, noise, (n, 17)) if noise else 0)
    kp[:, :, 2] = 0.9
    return np.arange(n, dtype=np.int64), kp


def out_x(mode, frames, kp):
    d = filter_track(frames, kp, FilteringConfig(smoother=mode), FPS)
    return d.keypoints[:, :, 0].astype(np.float64)


def crossing(sig: np.ndarray, level: float) -> float:
    i = int(np.flatnonzero(sig >= level)[0])
    return i - 1 + (level - sig[i - 1]) / (sig[i] - sig[i - 1])


def lags(mode: str) -> dict:
    n = 300
    ramp = {}
    for v in (1.0, 4.0):  # px/frame: 15 and 60 px/s, a slow reach and a walk at mid distance
        fr, kp = track_from(100 + v * np.arange(n))
        ramp[v] = float(np.median((100 + v * np.arange(n)[:, None] - out_x(mode, fr, kp))[100:200]) / v)
    step = np.where(np.arange(120) >= 50, 100.0, 0.0)
    fr, kp = track_from(step)
    s_out = out_x(mode, fr, kp).mean(1)
    step_delay = crossing(s_out, 50.0) - crossing(step, 50.0)
    t = np.arange(1200) / FPS
    clean = np.zeros_like(t)
    for f in np.linspace(0.1, 1.0, 10):
        clean += (3.0 / f) * np.sin(2 * np.pi * f * t + RNG.uniform(0, 2 * np.pi))
    fr, kp = track_from(clean)
    o = out_x(mode, fr, kp)
    inner = slice(40, -40)
    ks = np.arange(-10, 11)
    cc = [np.corrcoef(o[inner].mean(1), np.roll(clean, k)[inner])[0, 1] for k in ks]
    k = int(np.argmax(cc))
    sub = 0.0
    if 0 < k < len(ks) - 1:
        a, b, c = cc[k - 1], cc[k], cc[k + 1]
        sub = 0.5 * (a - c) / (a - 2 * b + c)
    distortion = float(np.sqrt(((o[inner] - clean[inner, None]) ** 2).mean()))
    fr, kp = track_from(np.full(1200, 500.0), noise=2.0)
    jitter = float(out_x(mode, fr, kp)[inner].std() / 2.0)
    live = PoseFilter(FilteringConfig(smoother=mode), FPS).delay
    return {"ramp1": ramp[1.0], "ramp4": ramp[4.0], "step": step_delay, "xcorr": float(ks[k] + sub), "live": live, "jitter": jitter,
            "distortion": distortion}


def gappy_track(n: int):
    fr, kp = track_from(100 + 3 * np.arange(n) + 20 * np.sin(np.arange(n) / 9), 400 + 10 * np.cos(np.arange(n) / 7),
                        noise=2.0)
    kp[:, :, 2] = RNG.uniform(0.1, 1.0, (n, 17)).astype(np.float32)
    keep = RNG.random(n) > 0.1
    return fr[keep], kp[keep]


def numpy_baseline(frames, kp, max_gap=8, min_conf=0.2, window=8):
    """The plain numpy way: interpolate each coordinate over valid samples, then an 8-frame mean."""
    dense = np.arange(frames[0], frames[-1] + 1)
    out = np.zeros((len(dense), 17, 2))
    w = np.ones(window) / window
    for j in range(17):
        ok = np.isfinite(kp[:, j, :2]).all(1) & (kp[:, j, 2] >= min_conf)
        for c in range(2):
            col = np.interp(dense, frames[ok], kp[ok, j, c].astype(np.float64))
            out[:, j, c] = np.convolve(col, w, mode="same")
    return out


def best(fn, reps=5) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def cost_offline(frames, kp) -> dict:
    n = int(frames[-1] - frames[0] + 1)
    res = {"numpy baseline": best(lambda: numpy_baseline(frames, kp)) / n * 1e6}
    for mode in MODES:
        cfg = FilteringConfig(smoother=mode)
        filter_track(frames, kp, cfg, FPS)
        res[mode] = best(lambda: filter_track(frames, kp, cfg, FPS)) / n * 1e6
    return res


def live_stream(n_tracks=8, n_frames=300):
    tracks = [gappy_track(n_frames) for _ in range(n_tracks)]
    recs = []
    for f in range(n_frames):
        ids, kps = [], []
        for i, (fr, kp) in enumerate(tracks):
            hit = np.flatnonzero(fr == f)
            if len(hit):
                ids.append(i)
                kps.append(kp[hit[0]])
        recs.append(Poses("cam", f, f / FPS, np.array(ids), np.zeros((len(ids), 4)), np.array(kps).reshape(-1, 17, 3)))
    return recs, sum(len(r) for r in recs)


def cost_live(recs, n_track_frames) -> dict:
    res = {}
    for mode in MODES:
        def go():
            pf = PoseFilter(FilteringConfig(smoother=mode), FPS)
            for r in recs:
                pf.update(r)
            pf.flush()
        go()
        res[mode] = best(go, reps=3) / n_track_frames * 1e6
    return res


_COLD = r"""
import sys, time
t0 = time.perf_counter()
import numpy as np
from edge.config import FilteringConfig
from edge.filtering import filter_track
t1 = time.perf_counter()
fr = np.arange(300); kp = np.random.default_rng(0).uniform(0.1, 1, (300, 17, 3)).astype(np.float32)
cfg = FilteringConfig(smoother=sys.argv[1])
t2 = time.perf_counter(); filter_track(fr, kp, cfg, 15.0); t3 = time.perf_counter()
filter_track(fr, kp, cfg, 15.0); t4 = time.perf_counter()
print(t1 - t0, t3 - t2, t4 - t3)
"""


def cold(mode: str) -> tuple[float, float, float]:
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", _COLD, mode], cwd=root, capture_output=True, text=True, check=True)
    return tuple(float(v) for v in out.stdout.split())


def main() -> None:
    for m in MODES:  # make sure the on-disk Numba cache exists before measuring cold starts
        cold(m)
    print("Lag (frames at 15 fps; 0 = none)")
    print(f"{'filter':<14}{'ramp 1':>8}{'ramp 4':>8}{'step':>8}{'xcorr':>8}{'live':>7}{'jitter':>9}{'error px':>10}")
    for m in MODES:
        r = lags(m)
        print(f"{m:<14}{r['ramp1']:>8.2f}{r['ramp4']:>8.2f}{r['step']:>8.2f}{r['xcorr']:>8.2f}{r['live']:>7d}{r['jitter']:>9.3f}"
              f"{r['distortion']:>10.2f}")
    frames, kp = gappy_track(20000)
    off = cost_offline(frames, kp)
    recs, ntf = live_stream()
    live = cost_live(recs, ntf)
    base = off["numpy baseline"]
    print("\nCost (microseconds per track-frame, best of runs; ratio = time / numpy baseline)")
    print(f"{'filter':<16}{'offline':>9}{'ratio':>8}{'live stage':>12}{'ratio':>8}")
    print(f"{'numpy baseline':<16}{base:>9.3f}{1.0:>8.2f}{'':>12}{'':>8}")
    for m in MODES:
        print(f"{m:<16}{off[m]:>9.3f}{off[m] / base:>8.2f}{live[m]:>12.2f}{live[m] / base:>8.1f}")
    print(f"(offline: one track of {len(frames)} detections; live: {len(recs)} records, {ntf} track-frames)")
    print("\nStart-up in a fresh process, Numba cache present (ms)")
    print(f"{'filter':<14}{'import':>9}{'cold call':>11}{'warm call':>11}{'cold/warm':>11}")
    for m in MODES:
        imp, c, w = cold(m)
        print(f"{m:<14}{imp * 1e3:>9.1f}{c * 1e3:>11.2f}{w * 1e3:>11.3f}{c / w:>11.0f}")


if __name__ == "__main__":
    main()
