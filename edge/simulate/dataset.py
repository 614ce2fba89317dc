"""Dataset plans (``small`` and ``paper`` scale) and writing a generated dataset in the PoseLift layout.

``paper`` follows the real release's shape. Given the release's inventory files
(``train_inventory.csv``, ``test_inventory.csv``: one row per video with its frame, track and anomaly
counts), every video is reproduced by name, length, track count and labelled frames, including the four
videos whose label length differs from the pickle's. Without them, a plan with the same documented
shape is drawn: videos per camera (train/test 31/11, 22/11, 21/11, 14/7, 10/5, 6/2), 4,846 labelled
test frames of which 1,534 (0.317) are shoplifting, six all-normal test videos, clip lengths 15..440.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.datasets.poselift import PoseDataset, write_poselift_dataset
from edge.simulate.noise import NoiseConfig
from edge.simulate.scene import VideoPlan, simulate_video

PER_CAMERA = {1: (31, 11), 2: (22, 11), 3: (21, 11), 4: (14, 7), 5: (10, 5), 6: (6, 2)}
TEST_FRAMES, TEST_ANOMALOUS, TRAIN_FRAMES = 4846, 1534, 91598
INVENTORY_ENV = "POSELIFT_INVENTORY"


@dataclass(frozen=True)
class DatasetPlan:
    train: tuple[VideoPlan, ...]
    test: tuple[VideoPlan, ...]
    source: str


def small_plan(seed: int = 0) -> DatasetPlan:
    """12 train videos (two per camera) and 8 test videos (6 with shoplifting): done in seconds."""
    rng = np.random.default_rng([seed, 99])
    train, test = [], []
    vid = 10
    for cam in range(1, 7):
        for _ in range(2):
            n = int(rng.integers(1000, 1600))
            train.append(VideoPlan(f"{cam}_{vid}", cam, n, int(rng.integers(2, 5))))
            vid += 1
    for k, cam in enumerate([1, 2, 3, 4, 5, 6, 1, 3]):
        n = int(rng.integers(60, 150))
        a = 0 if k >= 6 else int(n * rng.uniform(0.3, 0.6))
        test.append(VideoPlan(f"{cam}_{vid}", cam, n, int(rng.integers(1, 3)), n, a))
        vid += 1
    return DatasetPlan(tuple(train), tuple(test), "small")


def find_inventory(explicit: str | os.PathLike | None = None) -> Path | None:
    for c in (explicit, os.environ.get(INVENTORY_ENV)):
        if c and (Path(c) / "train_inventory.csv").is_file() and (Path(c) / "test_inventory.csv").is_file():
            return Path(c)
    return None


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def inventory_plan(inv_dir: Path) -> DatasetPlan:
    train = tuple(VideoPlan(r["video"], int(r["cam"]), int(r["n_frames_pkl"]), int(r["n_tracks"]))
                  for r in _read_csv(inv_dir / "train_inventory.csv"))
    test = tuple(VideoPlan(r["video"], int(r["cam"]), int(r["n_frames_pkl"]), int(r["n_tracks"]),
                           int(r["gt_frames"]), int(r["anomaly_frames"]))
                 for r in _read_csv(inv_dir / "test_inventory.csv"))
    return DatasetPlan(train, test, f"inventory {inv_dir}")


def _lengths(rng, k: int, total: int, median: float, lo: int, hi: int) -> np.ndarray:
    x = np.clip(rng.lognormal(np.log(median), 1.0, k), lo, hi)
    x = np.clip(np.round(x * total / x.sum()), lo, hi).astype(int)
    x[np.argmax(x)] += total - x.sum()
    return x


def drawn_paper_plan(seed: int = 0) -> DatasetPlan:
    """The release's documented shape, drawn at random where the exact per-video figures are unknown."""
    rng = np.random.default_rng([seed, 7])
    n_train = sum(v[0] for v in PER_CAMERA.values())
    n_test = sum(v[1] for v in PER_CAMERA.values())
    tr_len = _lengths(rng, n_train, TRAIN_FRAMES, 600, 4, 4500)
    te_len = _lengths(rng, n_test, TEST_FRAMES, 62, 15, 440)
    normal = set(rng.choice(n_test, 6, replace=False).tolist())
    weights = np.array([0 if i in normal else te_len[i] * rng.uniform(0.3, 1.0) for i in range(n_test)])
    anom = np.minimum(np.round(weights / weights.sum() * TEST_ANOMALOUS), te_len - 1).astype(int)
    j = int(np.argmax(np.where(anom > 0, te_len - anom, -1)))
    anom[j] += TEST_ANOMALOUS - anom.sum()
    train, test, i, j, vid = [], [], 0, 0, 100
    for cam, (ntr, nte) in PER_CAMERA.items():
        for _ in range(ntr):
            tracks = max(1, int(rng.poisson(1 + tr_len[i] / 250)))
            train.append(VideoPlan(f"{cam}_{vid}", cam, int(tr_len[i]), tracks))
            i, vid = i + 1, vid + 1
        for _ in range(nte):
            test.append(VideoPlan(f"{cam}_{vid}", cam, int(te_len[j]), int(rng.integers(1, 4)), int(te_len[j]),
                                  int(anom[j])))
            j, vid = j + 1, vid + 1
    return DatasetPlan(tuple(train), tuple(test), "drawn from the documented shape")


def paper_plan(seed: int = 0, inventory: str | os.PathLike | None = None) -> DatasetPlan:
    inv = find_inventory(inventory)
    return inventory_plan(inv) if inv is not None else drawn_paper_plan(seed)


def make_plan(scale: str, seed: int = 0, inventory=None) -> DatasetPlan:
    if scale == "small":
        return small_plan(seed)
    if scale == "paper":
        return paper_plan(seed, inventory)
    raise ValueError(f"unknown scale {scale!r}; expected small or paper")


def generate(plan: DatasetPlan, seed: int = 0, noise: NoiseConfig = NoiseConfig(), progress=None) -> PoseDataset:
    ds = PoseDataset(root=Path("."))
    for split, plans, out in ((0, plan.train, ds.train), (1, plan.test, ds.test)):
        for k, vp in enumerate(plans):
            rng = np.random.default_rng([seed, split, k])
            out.append(simulate_video(vp, rng, noise))
            if progress:
                progress(vp)
    return ds


def simulate_dataset(out, *, seed: int = 0, scale: str = "small", inventory=None,
                     noise: NoiseConfig = NoiseConfig(), progress=None) -> tuple[PoseDataset, DatasetPlan, float]:
    """Generate and write a dataset to ``out/Pickle_files``; returns it, its plan and the seconds taken."""
    t = time.perf_counter()
    plan = make_plan(scale, seed, inventory)
    ds = generate(plan, seed, noise, progress)
    ds.root = Path(out)
    frames = {vp.name: vp.n_frames for vp in plan.train + plan.test}
    write_poselift_dataset(out, ds.train, ds.test, pickle_frames=frames)
    return ds, plan, time.perf_counter() - t
