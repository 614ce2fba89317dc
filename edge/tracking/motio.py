"""MOTChallenge text files: detections in, tracks out.

Detections are ``frame,id,x,y,w,h,score[,...]`` with x, y the top-left corner in pixels; the id
column is ignored. A line that cannot be a detection (too few fields, a non-number, a frame below 1,
NaN or infinite values, width or height not above zero, a score outside 0..1) is rejected with the
file and line named; nothing is guessed. Lines of one frame may be scattered through the file: they
are grouped by a stable sort, so detections keep their file order within a frame (which decides the
order in which tracks are created).

Results are ``frame,id,x,y,w,h,score,-1,-1,-1`` with boxes to 3 decimals and scores to 5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np


class MotFormatError(ValueError):
    """A MOTChallenge file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class MotDetections:
    frames: np.ndarray   # (N,) int64, sorted (stable)
    tlwh: np.ndarray     # (N, 4) float64
    scores: np.ndarray   # (N,) float64
    path: str = ""

    @property
    def last_frame(self) -> int:
        return int(self.frames[-1]) if len(self.frames) else 0

    def by_frame(self, first: int = 1, last: int | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(frame, boxes x1y1x2y2, scores)`` for every frame from first to last, empty ones included."""
        last = self.last_frame if last is None else last
        starts = np.searchsorted(self.frames, np.arange(first, last + 2))
        xyxy = self.tlwh.copy()
        xyxy[:, 2:] += xyxy[:, :2]
        for k, f in enumerate(range(first, last + 1)):
            a, b = starts[k], starts[k + 1]
            yield f, xyxy[a:b], self.scores[a:b]


def read_detections(path: str | Path) -> MotDetections:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise MotFormatError(f"{path}: not a text file ({e})") from None
    except OSError as e:
        raise MotFormatError(f"{path}: cannot read ({e.strerror or e})") from None
    frames: list[int] = []
    rows: list[tuple[float, float, float, float, float]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 7:
            raise MotFormatError(f"{path}:{lineno}: expected at least 7 comma-separated fields "
                                 f"(frame,id,x,y,w,h,score), got {len(fields)}")
        try:
            fr = float(fields[0])
            x, y, w, h, s = (float(v) for v in fields[2:7])
        except ValueError:
            raise MotFormatError(f"{path}:{lineno}: non-numeric value in {line!r}") from None
        if not math.isfinite(fr) or fr != int(fr) or fr < 1:
            raise MotFormatError(f"{path}:{lineno}: frame must be an integer >= 1, got {fields[0]!r}")
        if not all(math.isfinite(v) for v in (x, y, w, h, s)):
            raise MotFormatError(f"{path}:{lineno}: NaN or infinite value in {line!r}")
        if w <= 0 or h <= 0:
            raise MotFormatError(f"{path}:{lineno}: box width and height must be > 0, got w={w:g} h={h:g}")
        if not 0.0 <= s <= 1.0:
            raise MotFormatError(f"{path}:{lineno}: score must be within 0..1, got {s:g}")
        frames.append(int(fr))
        rows.append((x, y, w, h, s))
    fr_arr = np.asarray(frames, dtype=np.int64)
    data = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    order = np.argsort(fr_arr, kind="stable")
    return MotDetections(fr_arr[order], np.ascontiguousarray(data[order, :4]),
                         np.ascontiguousarray(data[order, 4]), str(path))


def format_rows(frame: int, ids: np.ndarray, tlwh: np.ndarray, scores: np.ndarray) -> str:
    return "".join(f"{frame},{int(i)},{b[0]:.3f},{b[1]:.3f},{b[2]:.3f},{b[3]:.3f},{float(s):.5f},-1,-1,-1\n"
                   for i, b, s in zip(ids, tlwh, scores))


def read_results(path: str | Path) -> np.ndarray:
    """Read a MOT results (or ground truth) file as a float64 (N, 7+) array: frame, id, x, y, w, h, score."""
    path = Path(path)
    try:
        data = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    except (OSError, ValueError) as e:
        raise MotFormatError(f"{path}: cannot read MOT results ({e})") from None
    if data.size and data.shape[1] < 7:
        raise MotFormatError(f"{path}: expected at least 7 columns, got {data.shape[1]}")
    return data.reshape(-1, max(7, data.shape[1] if data.size else 7))
