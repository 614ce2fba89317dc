"""Conversion between the PoseLift pickle layout and the STG-NF JSON layout (both directions)."""

from __future__ import annotations

from pathlib import Path

from edge.datasets import PoseDataset, detect_layout
from edge.datasets.poselift import DatasetError, read_poselift_dataset, write_poselift_dataset
from edge.datasets.stgnf_json import read_stgnf_dataset, write_stgnf_dataset

LAYOUTS = ("poselift", "json")


def read_layout(src, layout: str) -> PoseDataset:
    if layout == "poselift":
        return read_poselift_dataset(src)
    if layout == "json":
        return read_stgnf_dataset(src)
    raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")


def write_layout(ds: PoseDataset, dst, layout: str) -> Path:
    if layout == "poselift":
        return write_poselift_dataset(dst, ds.train, ds.test)
    if layout == "json":
        return write_stgnf_dataset(dst, ds.train, ds.test)
    raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")


def convert(src, dst, *, src_layout: str = "auto", dst_layout: str) -> PoseDataset:
    """Read ``src`` in ``src_layout`` (``auto`` detects it) and write it to ``dst`` in ``dst_layout``."""
    src, dst = Path(src), Path(dst)
    if src_layout == "auto":
        src_layout = detect_layout(src)
    if dst.resolve() == src.resolve():
        raise DatasetError(f"{dst}: the destination must differ from the source")
    ds = read_layout(src, src_layout)
    write_layout(ds, dst, dst_layout)
    return ds
