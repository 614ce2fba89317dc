"""Training windows from a dataset directory (PoseLift layout or STG-NF JSON layout, detected)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.windowing.stgnf import DEFAULT_DIVISORS, DEFAULT_SEG_LEN, DETRENDED, training_windows

TRAIN_STRIDE = 6


def read_train_videos(data) -> tuple[list, str]:
    """Training videos of ``data`` and the layout name."""
    from edge.datasets import stgnf_json
    from edge.datasets.poselift import read_poselift_dataset

    root = Path(data)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such dataset directory")
    if stgnf_json.is_stgnf_root(root):
        ds, layout = stgnf_json.read_stgnf_dataset(root), "stgnf-json"
    else:
        ds, layout = read_poselift_dataset(root), "poselift"
    if not ds.train:
        raise ValueError(f"{root}: the dataset ({layout} layout) has no training videos")
    return ds.train, layout


def training_set(data, *, seg_len: int = DEFAULT_SEG_LEN, stride: int = TRAIN_STRIDE,
                 divisors=DEFAULT_DIVISORS, flip: bool = True, filter_cfg=None,
                 normalization: str = DETRENDED) -> tuple[np.ndarray, dict]:
    """Normalised training windows ``(N, 2, seg_len, 18)`` of ``data``'s train split, plus a
    description of where they came from (for the model card)."""
    videos, layout = read_train_videos(data)
    tracks = []
    for v in videos:
        for _, tr in sorted(v.tracks.items()):
            frames, kp = tr.frames, tr.keypoints
            if filter_cfg is not None:
                from edge.filtering import filter_track

                frames, kp = filter_track(frames, kp, filter_cfg, v.fps).poses()
            tracks.append((frames, kp))
    x = training_windows(tracks, seg_len=seg_len, stride=stride, divisors=divisors, flip=flip, method=normalization)
    if len(x) < 2:
        raise ValueError(f"{data}: only {len(x)} training windows (tracks need more than {seg_len} detections)")
    info = {"data": str(Path(data).resolve()), "layout": layout, "videos": len(videos), "tracks": len(tracks),
            "seg_len": seg_len, "stride": stride, "flip": flip, "divisors": list(map(float, divisors)),
            "normalization": normalization,
            "filter": None if filter_cfg is None else filter_cfg.model_dump()}
    return x, info
