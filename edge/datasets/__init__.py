"""Recorded pose data: the PoseLift pickle layout and the STG-NF/Shopformer JSON layout.

``read_dataset(root)`` reads either layout (detected from the folder structure); the two modules
below read and write one layout each, and :mod:`edge.datasets.convert` goes between them.
"""

from __future__ import annotations

from pathlib import Path

from edge.datasets.poselift import (
    DatasetError, DatasetWarning, PoseDataset, PoseVideo, Track, read_poselift_dataset, read_poselift_video,
    write_poselift_dataset, write_poselift_video,
)

__all__ = [
    "DatasetError", "DatasetWarning", "PoseDataset", "PoseVideo", "Track", "detect_layout", "read_dataset",
    "read_poselift_dataset", "read_poselift_video", "write_poselift_dataset", "write_poselift_video",
]


def detect_layout(root) -> str:
    """``"poselift"`` or ``"json"`` for a dataset folder; DatasetError when it is neither."""
    from edge.datasets.stgnf_json import is_stgnf_root

    r = Path(root)
    if is_stgnf_root(r):
        return "json"
    for cand in (r / "Pickle_files", r):
        if (cand / "Train").is_dir() or (cand / "Test").is_dir():
            return "poselift"
    raise DatasetError(f"{r}: neither a PoseLift dataset (Pickle_files/Train, Test, GT) nor the STG-NF JSON "
                       "layout (pose/train, pose/test, gt/test_frame_mask)")


def read_dataset(root, **kw) -> PoseDataset:
    """Read a dataset in either layout."""
    if detect_layout(root) == "json":
        from edge.datasets.stgnf_json import read_stgnf_dataset

        return read_stgnf_dataset(root, **kw)
    return read_poselift_dataset(root, **kw)
