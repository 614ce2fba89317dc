"""Cost of the live scoring chain (pose filter -> live windows -> STG-NF -> alerts) per frame and window.

Baseline, measured in the same run: the offline chain on the same videos (cut every track at once with
``track_windows``, normalise, score in batches of 4096), which is the least work that yields these
scores. The live chain pays for doing it frame by frame; the ratios say how much, for one frame per
call and for batches of 64 frames (what a replay or a multi-camera device hands over).

    .venv/bin/python bench/bench_pipeline.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT.parent / "shared" / "reference" / "stgnf" / "weights.npz"


def _model(tmp: Path, data: Path) -> Path:
    out = tmp / "model"
    if WEIGHTS.exists():
        from edge.scoring.importer import import_stgnf

        import_stgnf(WEIGHTS, out)
    else:
        from edge.scoring.train import train_model

        train_model(data, out, epochs=1, progress=False)
    return out


def _offline(videos, scorer) -> tuple[float, int]:
    from edge.windowing.stgnf import model_input, track_windows

    t0 = time.perf_counter()
    n = 0
    for v in videos:
        parts = [track_windows(tr.frames, tr.keypoints)[1] for tr in v.tracks.values()]
        parts = [p for p in parts if len(p)]
        if parts:
            x = model_input(np.concatenate(parts))
            for i in range(0, len(x), 4096):
                scorer.score(x[i:i + 4096])
            n += len(x)
    return time.perf_counter() - t0, n


def _live(videos, scorer, frames_per_call: int) -> tuple[float, int, int, float]:
    from edge.config import EdgeConfig
    from edge.service.pipeline import ScoringPipeline
    from edge.sources.replay import iter_replay

    records = [rec for _, rec in iter_replay(videos)]
    pipe = ScoringPipeline(EdgeConfig(), scorer, threshold=1e6)
    t0 = time.perf_counter()
    for i in range(0, len(records), frames_per_call):
        pipe.process_batch(records[i:i + frames_per_call])
    pipe.finish()
    return time.perf_counter() - t0, pipe.stats.frames, pipe.stats.windows_scored, pipe.stats.score_ms / 1e3


def main() -> None:
    from edge.datasets import read_dataset
    from edge.scoring import load_scorer
    from edge.simulate.dataset import simulate_dataset

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        simulate_dataset(tmp / "data", seed=1, scale="small")
        ds = read_dataset(tmp / "data")
        scorer = load_scorer(_model(tmp, tmp / "data"))
        videos = ds.train
        _live(videos[:1], scorer, 64)  # warm-up: Numba kernels loaded, caches filled
        base_s, base_n = _offline(videos, scorer)
        print(f"videos {len(videos)}, frames {sum(v.n_frames for v in videos)}")
        print(f"offline baseline: {base_n} windows in {base_s:.2f} s = {base_n / base_s:,.0f} windows/s")
        for k in (1, 64):
            s, frames, wins, score_s = _live(videos, scorer, k)
            print(f"live, {k:>2} frame(s) per call: {frames} frames, {wins} windows in {s:.2f} s = "
                  f"{frames / s:,.0f} frames/s, {wins / s:,.0f} windows/s; {1e6 * s / max(wins, 1):.0f} us/window "
                  f"({1e6 * score_s / max(wins, 1):.0f} of it scoring); "
                  f"{s / base_s * base_n / max(wins, 1):.2f}x the offline cost per window")


if __name__ == "__main__":
    main()
