"""The STG-NF / Shopformer JSON layout of tracked poses.

::

    ROOT/pose/train/<scene>_<clip>_alphapose_tracked_person.json
    ROOT/pose/test/<scene>_<clip>_alphapose_tracked_person.json
    ROOT/gt/test_frame_mask/<scene>_<clip>.npy          (one 0/1 per frame, 1 = abnormal)

A JSON file is ``{person_id: {frame_key: {"keypoints": [x0, y0, c0, ... x16, y16, c16], "scores": s}}}``
with zero-padded frame keys and COCO-17 pixel keypoints. The layout has no boxes; the writer adds a
``"box": [x1, y1, x2, y2]`` entry (readers of the layout ignore unknown keys) so a round trip keeps them,
and the reader takes boxes from it when present, otherwise from the keypoints' extent.

STG-NF parses scene and clip from the first two ``_`` fields of the name, so PoseLift's
``<camera>_<video>`` maps to ``<camera:02d>_<video:04d>`` (``1_126`` <-> ``01_0126``); both directions
drop/add zero padding only, which keeps the map reversible for PoseLift's unpadded names.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np

from edge.datasets.poselift import (
    FPS, FRAME_SIZE, DatasetError, DatasetWarning, PoseDataset, PoseVideo, Track, _apply_labels, camera_of,
    empty_video, read_labels, video_sort_key,
)

SUFFIX = "_alphapose_tracked_person.json"
_NUM2 = re.compile(r"^(\d+)_(\d+)$")


def poselift_to_stgnf_name(name: str) -> str:
    """``1_126`` -> ``01_0126``; names that are not ``<int>_<int>`` are kept as they are."""
    m = _NUM2.match(name)
    return f"{int(m.group(1)):02d}_{int(m.group(2)):04d}" if m else name


def stgnf_to_poselift_name(name: str) -> str:
    """``01_0126`` -> ``1_126`` (inverse of :func:`poselift_to_stgnf_name`)."""
    m = _NUM2.match(name)
    return f"{int(m.group(1))}_{int(m.group(2))}" if m else name


def _extent_boxes(kp: np.ndarray) -> np.ndarray:
    x, y = kp[..., 0], kp[..., 1]
    x1, x2, y1, y2 = x.min(1), x.max(1), y.min(1), y.max(1)
    mx, my = 0.1 * (x2 - x1) + 2, 0.1 * (y2 - y1) + 2
    return np.stack([x1 - mx, y1 - my, x2 + mx, y2 + my], 1).astype(np.float32)


def read_stgnf_video(json_path, mask_path=None, *, fps: float = FPS,
                     frame_size: tuple[int, int] = FRAME_SIZE) -> PoseVideo:
    """Read one ``*_alphapose_tracked_person.json`` (and its frame mask) into a PoseVideo."""
    p = Path(json_path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DatasetError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{p}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise DatasetError(f"{p}: expected {{person: {{frame: {{keypoints, scores}}}}}}, got "
                           f"{type(raw).__name__} (unknown layout)")
    stem = p.name[: -len(SUFFIX)] if p.name.endswith(SUFFIX) else p.stem
    tracks: dict[int, Track] = {}
    n_frames = 0
    for pkey, frames in raw.items():
        try:
            pid = int(pkey)
        except (TypeError, ValueError):
            raise DatasetError(f"{p}: person key {pkey!r} is not an integer (unknown layout)") from None
        if not isinstance(frames, dict):
            raise DatasetError(f"{p}: person {pid}: expected {{frame: {{keypoints, scores}}}} (unknown layout)")
        fr, kps, scs, bxs = [], [], [], []
        for fkey, det in frames.items():
            try:
                f = int(fkey)
            except (TypeError, ValueError):
                raise DatasetError(f"{p}: person {pid}: frame key {fkey!r} is not an integer") from None
            where = f"{p}: frame {f}, person {pid}"
            if not isinstance(det, dict) or "keypoints" not in det:
                raise DatasetError(f"{where}: expected {{'keypoints': [...], 'scores': s}} (unknown layout)")
            try:
                k = np.asarray(det["keypoints"], dtype=np.float64)
                s = float(det.get("scores", np.nan if not len(k) else 0.0))
                b = None if det.get("box") is None else np.asarray(det["box"], dtype=np.float64).reshape(-1)
            except (TypeError, ValueError) as exc:
                raise DatasetError(f"{where}: values are not numeric ({exc})") from None
            if k.size != 51:
                raise DatasetError(f"{where}: {k.size} keypoint numbers, expected 51 (17 x, y, confidence)")
            if not np.isfinite(k).all():
                raise DatasetError(f"{where}: keypoints contain NaN or infinity")
            if b is not None and (b.shape != (4,) or not np.isfinite(b).all()):
                raise DatasetError(f"{where}: box must be 4 finite numbers")
            fr.append(f)
            kps.append(k.reshape(17, 3))
            scs.append(s)
            bxs.append(b)
        if not fr:
            continue
        o = np.argsort(np.asarray(fr), kind="stable")
        fa = np.asarray(fr, np.int64)[o]
        if len(fa) > 1 and (np.diff(fa) == 0).any():
            raise DatasetError(f"{p}: person {pid}: frame {fa[np.flatnonzero(np.diff(fa) == 0)[0]]} appears twice")
        ka = np.stack(kps)[o].astype(np.float32)
        boxes = _extent_boxes(ka)
        for j, b in enumerate(np.asarray(bxs, dtype=object)[o]):
            if b is not None:
                boxes[j] = b
        tracks[pid] = Track(frames=fa, keypoints=ka, boxes=boxes,
                            scores=np.asarray(scs, np.float32)[o])
        n_frames = max(n_frames, int(fa[-1]) + 1)
    name = stgnf_to_poselift_name(stem)
    video = PoseVideo(name=name, camera=camera_of(name), n_frames=n_frames, fps=fps, frame_size=frame_size,
                      tracks=dict(sorted(tracks.items())), source=str(p))
    if mask_path is not None:
        _apply_labels(video, read_labels(mask_path), Path(mask_path))
    return video


def stgnf_dict(video: PoseVideo, *, boxes: bool = True) -> dict:
    width = max(4, len(str(max(video.n_frames - 1, 0))))
    out: dict[str, dict] = {}
    for pid, t in video.tracks.items():
        kp = np.asarray(t.keypoints, np.float32)
        sc = (kp[..., 2].mean(1) if t.scores is None else np.asarray(t.scores, np.float32)).astype(np.float64)
        kl = kp.astype(np.float64).reshape(len(kp), 51).tolist()
        bl = np.asarray(t.boxes, np.float32).astype(np.float64).tolist()
        person = {}
        for j, f in enumerate(np.asarray(t.frames).tolist()):
            det = {"keypoints": kl[j], "scores": float(sc[j])}
            if boxes:
                det["box"] = bl[j]
            person[str(f).zfill(width)] = det
        out[str(int(pid))] = person
    return out


def write_stgnf_video(video: PoseVideo, json_path, mask_path=None, *, boxes: bool = True) -> None:
    p = Path(json_path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(stgnf_dict(video, boxes=boxes), separators=(",", ":")), encoding="utf-8")
    tmp.replace(p)
    if mask_path is not None:
        if video.labels is None:
            raise DatasetError(f"{video.name}: no labels to write to {mask_path}")
        mp = Path(mask_path)
        mp.parent.mkdir(parents=True, exist_ok=True)
        with open(mp, "wb") as fh:
            np.save(fh, np.asarray(video.labels, np.uint8), allow_pickle=False)


def is_stgnf_root(root) -> bool:
    r = Path(root)
    return (r / "pose" / "train").is_dir() or (r / "pose" / "test").is_dir()


def read_stgnf_dataset(root, *, fps: float = FPS, frame_size: tuple[int, int] = FRAME_SIZE) -> PoseDataset:
    """Read ``root/pose/{train,test}`` and ``root/gt/test_frame_mask``. A mask without a pose file is a
    test clip with nobody in it (it still counts in the benchmark)."""
    root = Path(root)
    if not is_stgnf_root(root):
        raise DatasetError(f"{root}: not an STG-NF JSON layout (expected pose/train or pose/test inside)")
    ds = PoseDataset(root=root)
    kw = dict(fps=fps, frame_size=frame_size)

    def stems(d: Path) -> dict[str, Path]:
        return {q.name[: -len(SUFFIX)]: q for q in d.glob("*" + SUFFIX)} if d.is_dir() else {}

    for stem, q in sorted(stems(root / "pose" / "train").items(), key=lambda kv: video_sort_key(kv[0])):
        ds.train.append(read_stgnf_video(q, **kw))
    tests = stems(root / "pose" / "test")
    mdir = root / "gt" / "test_frame_mask"
    masks = {q.stem: q for q in mdir.glob("*.npy")} if mdir.is_dir() else {}
    for stem in sorted(set(tests) | set(masks), key=video_sort_key):
        if stem in tests:
            if stem not in masks:
                warnings.warn(f"{tests[stem]}: no frame mask {mdir / (stem + '.npy')}; video has no labels",
                              DatasetWarning, stacklevel=2)
            ds.test.append(read_stgnf_video(tests[stem], masks.get(stem), **kw))
        else:
            labels = read_labels(masks[stem])
            ds.test.append(empty_video(stgnf_to_poselift_name(stem), len(labels), labels, source=str(masks[stem]),
                                       **kw))
    return ds


def write_stgnf_dataset(root, train: list[PoseVideo], test: list[PoseVideo], *, boxes: bool = True) -> Path:
    """Write the JSON layout under ``root``. A test video without poses gets only its mask."""
    root = Path(root)
    for v in train:
        write_stgnf_video(v, root / "pose" / "train" / (poselift_to_stgnf_name(v.name) + SUFFIX), boxes=boxes)
    for v in test:
        stem = poselift_to_stgnf_name(v.name)
        mask = None if v.labels is None else root / "gt" / "test_frame_mask" / f"{stem}.npy"
        if v.tracks:
            write_stgnf_video(v, root / "pose" / "test" / (stem + SUFFIX), mask, boxes=boxes)
        elif mask is not None:
            mask.parent.mkdir(parents=True, exist_ok=True)
            with open(mask, "wb") as fh:
                np.save(fh, np.asarray(v.labels, np.uint8), allow_pickle=False)
    return root
