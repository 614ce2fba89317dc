"""The PoseLift on-disk format: one pickle of tracked poses per video, one label array per test video.

A pickle holds ``dict[frame -> dict[person_id -> [bbox, keypoints (17, 3)]]]`` with 0-based contiguous
frame keys. The order of the four bbox numbers is not settled by the release's documentation (XYWH,
x1y1x2y2 and y1x1y2x2 have all been reported), so :func:`read_poselift_video` detects it from the data:
the reading whose boxes contain the keypoints (and hug them best) wins, and the choice is logged and kept
in ``PoseVideo.bbox_order``. In memory boxes are always ``x1, y1, x2, y2``; :func:`write_poselift_video`
writes that order too, which the detection reads back unambiguously.

Unpickling goes through a restricted unpickler that only rebuilds numpy arrays and scalars: a data file
cannot run code on a store device.
"""

from __future__ import annotations

import io
import logging
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FPS = 15.0
FRAME_SIZE = (1920, 1080)
BBOX_ORDERS = ("x1y1x2y2", "xywh", "y1x1y2x2")


class DatasetError(ValueError):
    """A data file that cannot be read as PoseLift/STG-NF data; the message names the file (and frame)."""


class DatasetWarning(UserWarning):
    """Something in a data file was repaired on reading (label length, bbox order guess)."""


@dataclass
class Track:
    """One person's detections: ``frames`` sorted int64 ``(F,)``, ``keypoints`` float32 ``(F, 17, 3)``
    pixels, ``boxes`` float32 ``(F, 4)`` x1y1x2y2; ``scores`` optional float32 ``(F,)`` person scores."""

    frames: np.ndarray
    keypoints: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class PoseVideo:
    """One video's tracked poses. ``labels`` (uint8, 1 = shoplifting) has length ``n_frames`` or is None."""

    name: str
    camera: int
    n_frames: int
    fps: float = FPS
    frame_size: tuple[int, int] = FRAME_SIZE
    tracks: dict[int, Track] = field(default_factory=dict)
    labels: np.ndarray | None = None
    bbox_order: str = "x1y1x2y2"
    source: str = ""

    def frame_table(self) -> tuple[np.ndarray, np.ndarray]:
        """All detections as ``(frames, track_ids)`` int64 arrays, sorted by frame then id."""
        if not self.tracks:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        f = np.concatenate([t.frames for t in self.tracks.values()])
        i = np.concatenate([np.full(len(t), k, np.int64) for k, t in self.tracks.items()])
        o = np.lexsort((i, f))
        return f[o], i[o]


@dataclass
class PoseDataset:
    root: Path
    train: list[PoseVideo] = field(default_factory=list)
    test: list[PoseVideo] = field(default_factory=list)


def camera_of(name: str) -> int:
    """Camera number from a ``<camera>_<video>`` name (0 when the name carries none)."""
    m = re.match(r"^(\d+)_", name)
    return int(m.group(1)) if m else 0


def video_sort_key(name: str):
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in name.split("_"))


# --- safe unpickling -------------------------------------------------------------------------------

def _numpy_globals() -> dict[tuple[str, str], object]:
    try:
        from numpy._core import multiarray as ma, numeric as nu
    except ImportError:  # numpy < 2
        from numpy.core import multiarray as ma, numeric as nu
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for mod in ("numpy.core", "numpy._core"):
        allowed[(f"{mod}.multiarray", "_reconstruct")] = ma._reconstruct
        allowed[(f"{mod}.multiarray", "scalar")] = ma.scalar
        if hasattr(nu, "_frombuffer"):
            allowed[(f"{mod}.numeric", "_frombuffer")] = nu._frombuffer
    # dtype pickles name their scalar classes (numpy.dtypes.Float32DType ...) in newer numpy
    try:
        import numpy.dtypes as npd
    except ImportError:  # numpy < 1.25
        npd = None
    for n in dir(npd) if npd is not None else ():
        if n.endswith("DType"):
            allowed[("numpy.dtypes", n)] = getattr(npd, n)
    allowed[("collections", "OrderedDict")] = __import__("collections").OrderedDict
    allowed[("_codecs", "encode")] = _latin1_encode  # protocol-2 pickles carry array bytes this way
    return allowed


def _latin1_encode(text, encoding="latin1"):
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise _Refused(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


_ALLOWED: dict | None = None


class _Refused(pickle.UnpicklingError):
    pass


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        global _ALLOWED
        if _ALLOWED is None:
            _ALLOWED = _numpy_globals()
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"refusing to load {module}.{name}: only numpy arrays are allowed "
                                         "in a pose file") from None


def safe_load_pickle(path: str | Path):
    """Unpickle ``path`` allowing only builtin containers and numpy arrays; errors are DatasetError."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        return _SafeUnpickler(io.BytesIO(data)).load()
    except _Refused as exc:
        raise DatasetError(f"{p}: not a valid pose pickle: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError) as exc:
        raise DatasetError(f"{p}: truncated or corrupt pickle ({type(exc).__name__}: {exc})") from None


# --- reading ---------------------------------------------------------------------------------------

def _as_int(key, what: str, path: Path) -> int:
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return int(key)
    if isinstance(key, str) and key.strip().isdigit():
        return int(key)
    raise DatasetError(f"{path}: {what} key {key!r} is not an integer (unknown layout)")


def _flatten(raw, path: Path):
    """Check the nested layout and return frames, pids, raw boxes (M,4) f64, keypoints (M,17,3) f32, n."""
    if not isinstance(raw, dict):
        raise DatasetError(f"{path}: expected dict[frame -> dict[person -> [bbox, keypoints]]], "
                           f"got {type(raw).__name__} (unknown layout)")
    frames, pids, boxes, kps = [], [], [], []
    n_frames = 0
    for fkey, people in raw.items():
        f = _as_int(fkey, "frame", path)
        if f < 0:
            raise DatasetError(f"{path}: frame {f}: negative frame number")
        n_frames = max(n_frames, f + 1)
        if people is None:
            continue
        if not isinstance(people, dict):
            raise DatasetError(f"{path}: frame {f}: expected dict[person -> [bbox, keypoints]], "
                               f"got {type(people).__name__} (unknown layout)")
        for pkey, entry in people.items():
            pid = _as_int(pkey, f"frame {f}: person", path)
            where = f"{path}: frame {f}, person {pid}"
            if isinstance(entry, dict) and "keypoints" in entry:
                entry = [entry.get("bbox", entry.get("box")), entry["keypoints"]]
            if not isinstance(entry, (list, tuple)) or len(entry) < 2:
                raise DatasetError(f"{where}: expected [bbox, keypoints], got {type(entry).__name__} "
                                   "(unknown layout)")
            try:
                b = np.asarray(entry[0], dtype=np.float64).reshape(-1)
                k = np.asarray(entry[1], dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise DatasetError(f"{where}: bbox/keypoints are not numeric ({exc})") from None
            if b.shape != (4,):
                raise DatasetError(f"{where}: bbox has {b.size} numbers, expected 4")
            if k.shape == (51,):
                k = k.reshape(17, 3)
            if k.shape != (17, 3):
                raise DatasetError(f"{where}: keypoints have shape {k.shape}, expected (17, 3)")
            if not (np.isfinite(b).all() and np.isfinite(k).all()):
                bad = "bbox" if not np.isfinite(b).all() else "keypoints"
                raise DatasetError(f"{where}: {bad} contain NaN or infinity")
            frames.append(f)
            pids.append(pid)
            boxes.append(b)
            kps.append(k)
    if not frames:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros((0, 17, 3), np.float32),
                n_frames)
    return (np.asarray(frames, np.int64), np.asarray(pids, np.int64), np.stack(boxes),
            np.stack(kps).astype(np.float32), n_frames)


def boxes_to_xyxy(raw: np.ndarray, order: str) -> np.ndarray:
    """Convert ``(M, 4)`` boxes in ``order`` (one of BBOX_ORDERS) to x1, y1, x2, y2."""
    a = np.asarray(raw, dtype=np.float64)
    if order == "x1y1x2y2":
        return a.copy()
    if order == "xywh":
        return np.stack([a[:, 0], a[:, 1], a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]], axis=1)
    if order == "y1x1y2x2":
        return a[:, [1, 0, 3, 2]].copy()
    raise ValueError(f"unknown bbox order {order!r}; expected one of {BBOX_ORDERS}")


def bbox_fit(raw: np.ndarray, keypoints: np.ndarray) -> dict[str, tuple[float, float]]:
    """Per reading: (fraction of confident keypoints inside the box, median IoU of box and keypoint extent)."""
    kp = np.asarray(keypoints, dtype=np.float64)
    conf = kp[..., 2] > 0.3  # dropped/guessed keypoints may lie anywhere
    conf[~conf.any(axis=1)] = True  # a pose without confidences still has positions
    big = np.where(conf, 1.0, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ex = np.stack([np.nanmin(kp[..., 0] * big, 1), np.nanmin(kp[..., 1] * big, 1),
                       np.nanmax(kp[..., 0] * big, 1), np.nanmax(kp[..., 1] * big, 1)], axis=1)
    out = {}
    for order in BBOX_ORDERS:
        b = boxes_to_xyxy(raw, order)
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        valid = (w > 0) & (h > 0)
        mx, my = 0.1 * np.abs(w)[:, None] + 2, 0.1 * np.abs(h)[:, None] + 2
        inside = ((kp[..., 0] >= b[:, :1] - mx) & (kp[..., 0] <= b[:, 2:3] + mx)
                  & (kp[..., 1] >= b[:, 1:2] - my) & (kp[..., 1] <= b[:, 3:4] + my) & valid[:, None])
        frac = float((inside & conf).sum() / max(conf.sum(), 1))
        iw = np.clip(np.minimum(b[:, 2], ex[:, 2]) - np.maximum(b[:, 0], ex[:, 0]), 0, None)
        ih = np.clip(np.minimum(b[:, 3], ex[:, 3]) - np.maximum(b[:, 1], ex[:, 1]), 0, None)
        inter = iw * ih
        union = np.abs(w * h) + (ex[:, 2] - ex[:, 0]) * (ex[:, 3] - ex[:, 1]) - inter
        iou = np.where(valid & (union > 0), inter / np.maximum(union, 1e-9), 0.0)
        out[order] = (frac, float(np.median(iou)) if len(iou) else 0.0)
    return out


def detect_bbox_order(raw: np.ndarray, keypoints: np.ndarray) -> tuple[str, dict]:
    """The bbox reading that contains the keypoints. An x1y1x2y2 box read as XYWH is a larger box that
    contains them too, so among readings within 5 % of the best containment the tightest fit wins."""
    if len(raw) == 0:
        return "x1y1x2y2", {}
    fit = bbox_fit(raw, keypoints)
    best = max(f[0] for f in fit.values())
    close = [o for o in BBOX_ORDERS if fit[o][0] >= best - 0.05]
    return max(close, key=lambda o: fit[o][1]), fit


def _group_tracks(frames, pids, boxes, kps) -> dict[int, Track]:
    tracks: dict[int, Track] = {}
    if len(frames) == 0:
        return tracks
    order = np.lexsort((frames, pids))
    frames, pids, boxes, kps = frames[order], pids[order], boxes[order], kps[order]
    cuts = np.flatnonzero(np.diff(pids)) + 1
    for sl in np.split(np.arange(len(pids)), cuts):
        tracks[int(pids[sl[0]])] = Track(frames=np.ascontiguousarray(frames[sl]),
                                         keypoints=np.ascontiguousarray(kps[sl], dtype=np.float32),
                                         boxes=np.ascontiguousarray(boxes[sl], dtype=np.float32))
    return dict(sorted(tracks.items()))


def read_labels(path: str | Path) -> np.ndarray:
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            a = np.load(fh, allow_pickle=False)
    except OSError as exc:
        raise DatasetError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, EOFError) as exc:
        raise DatasetError(f"{p}: not a valid .npy label file ({exc})") from None
    a = np.asarray(a).reshape(-1) if np.asarray(a).ndim == 2 and 1 in np.asarray(a).shape else np.asarray(a)
    if a.ndim != 1:
        raise DatasetError(f"{p}: labels must be a 1-D array of 0/1 per frame, got shape {a.shape}")
    if a.dtype.kind not in "biuf" or not np.isfinite(a.astype(np.float64)).all():
        raise DatasetError(f"{p}: labels must be numeric 0/1, got dtype {a.dtype}")
    bad = np.flatnonzero((a != 0) & (a != 1))
    if len(bad):
        raise DatasetError(f"{p}: frame {bad[0]}: label {a[bad[0]].item()!r} is not 0 or 1")
    return a.astype(np.uint8)


def _apply_labels(video: PoseVideo, labels: np.ndarray, labels_path: Path) -> None:
    """The clip length is the label file's (the benchmark protocol counts every labelled frame)."""
    n_pkl, n_lab = video.n_frames, len(labels)
    if n_lab > n_pkl:
        warnings.warn(f"{labels_path}: {n_lab} labels but {video.source or video.name} has {n_pkl} frames; "
                      f"kept all labels and extended the video with {n_lab - n_pkl} empty frames",
                      DatasetWarning, stacklevel=3)
    elif n_lab < n_pkl:
        dropped = 0
        for pid in list(video.tracks):
            t = video.tracks[pid]
            keep = t.frames < n_lab
            dropped += int((~keep).sum())
            if keep.all():
                continue
            if not keep.any():
                del video.tracks[pid]
                continue
            video.tracks[pid] = Track(t.frames[keep], t.keypoints[keep], t.boxes[keep],
                                      None if t.scores is None else t.scores[keep])
        warnings.warn(f"{labels_path}: {n_lab} labels but {video.source or video.name} has {n_pkl} frames; "
                      f"truncated the video to {n_lab} frames (dropped {dropped} detections of frames "
                      f"{n_lab}..{n_pkl - 1})", DatasetWarning, stacklevel=3)
    video.n_frames = n_lab
    video.labels = labels


def read_poselift_video(pkl_path, labels_path=None, *, bbox_order: str = "auto", fps: float = FPS,
                        frame_size: tuple[int, int] = FRAME_SIZE) -> PoseVideo:
    """Read one PoseLift pickle (and its label file). ``bbox_order="auto"`` detects the box order."""
    p = Path(pkl_path)
    frames, pids, raw_boxes, kps, n_frames = _flatten(safe_load_pickle(p), p)
    if bbox_order == "auto":
        order, fit = detect_bbox_order(raw_boxes, kps)
        if fit:
            log.info("%s: bbox order %s (keypoints inside: %s)", p, order,
                     ", ".join(f"{o} {fit[o][0]:.0%}" for o in BBOX_ORDERS))
            if fit[order][0] < 0.5:
                warnings.warn(f"{p}: no bbox reading contains most keypoints (best: {order}, "
                              f"{fit[order][0]:.0%}); boxes may be unrelated to the poses", DatasetWarning,
                              stacklevel=2)
    elif bbox_order in BBOX_ORDERS:
        order = bbox_order
    else:
        raise ValueError(f"bbox_order must be 'auto' or one of {BBOX_ORDERS}, got {bbox_order!r}")
    boxes = boxes_to_xyxy(raw_boxes, order).astype(np.float32)
    name = p.stem
    video = PoseVideo(name=name, camera=camera_of(name), n_frames=n_frames, fps=fps, frame_size=frame_size,
                      tracks=_group_tracks(frames, pids, boxes, kps), bbox_order=order, source=str(p))
    if labels_path is not None:
        _apply_labels(video, read_labels(labels_path), Path(labels_path))
    return video


def empty_video(name: str, n_frames: int, labels=None, **kw) -> PoseVideo:
    return PoseVideo(name=name, camera=camera_of(name), n_frames=n_frames, labels=labels, **kw)


def _split_dirs(root: Path) -> Path:
    for cand in (root / "Pickle_files", root):
        if (cand / "Train").is_dir() or (cand / "Test").is_dir():
            return cand
    raise DatasetError(f"{root}: not a PoseLift dataset (expected Pickle_files/Train, Pickle_files/Test, "
                       "Pickle_files/GT, or Train/Test/GT directly)")


def read_poselift_dataset(root, *, bbox_order: str = "auto", fps: float = FPS,
                          frame_size: tuple[int, int] = FRAME_SIZE) -> PoseDataset:
    """Read ``root/Pickle_files/{Train,Test,GT}`` (``root`` may also be the Pickle_files folder itself).

    A label file without a pickle still yields a test video (no poses, length from the labels), because
    the benchmark protocol counts those frames.
    """
    root = Path(root)
    base = _split_dirs(root)
    kw = dict(bbox_order=bbox_order, fps=fps, frame_size=frame_size)
    ds = PoseDataset(root=root)
    for pkl in sorted((base / "Train").glob("*.pkl"), key=lambda q: video_sort_key(q.stem)):
        ds.train.append(read_poselift_video(pkl, **kw))
    gt_dir = base / "GT"
    gts = {q.stem: q for q in gt_dir.glob("*.npy")} if gt_dir.is_dir() else {}
    tests = {q.stem: q for q in (base / "Test").glob("*.pkl")} if (base / "Test").is_dir() else {}
    for stem in sorted(set(gts) | set(tests), key=video_sort_key):
        if stem in tests:
            if stem not in gts:
                warnings.warn(f"{tests[stem]}: no label file {gt_dir / (stem + '.npy')}; video has no labels",
                              DatasetWarning, stacklevel=2)
            ds.test.append(read_poselift_video(tests[stem], gts.get(stem), **kw))
        else:
            labels = read_labels(gts[stem])
            warnings.warn(f"{gts[stem]}: labels without a pose file; counted as a clip with nobody in it",
                          DatasetWarning, stacklevel=2)
            ds.test.append(empty_video(stem, len(labels), labels, fps=fps, frame_size=frame_size,
                                       source=str(gts[stem])))
    orders = {v.bbox_order for v in ds.train + ds.test if v.tracks}
    if len(orders) > 1:
        warnings.warn(f"{root}: videos disagree on the bbox order ({', '.join(sorted(orders))}); "
                      "each was read with its own", DatasetWarning, stacklevel=2)
    elif orders:
        log.info("%s: bbox order %s", root, orders.pop())
    return ds


# --- writing ---------------------------------------------------------------------------------------

def poselift_dict(video: PoseVideo, n_frames: int | None = None) -> dict:
    """The pickle's content for ``video``: every frame 0..n_frames-1 present, boxes as x1y1x2y2 lists."""
    n_frames = video.n_frames if n_frames is None else int(n_frames)
    out: dict[int, dict] = {f: {} for f in range(n_frames)}
    for pid, t in video.tracks.items():
        boxes = np.asarray(t.boxes, np.float64).tolist()
        kps = np.ascontiguousarray(t.keypoints, dtype=np.float32)
        for j, f in enumerate(np.asarray(t.frames).tolist()):
            if not 0 <= f < n_frames:
                raise DatasetError(f"{video.name}: track {pid} has frame {f} outside 0..{n_frames - 1}")
            out[f][int(pid)] = [boxes[j], kps[j].copy()]
    for f in out:  # person order inside a frame: by id, so files are byte-identical for equal content
        out[f] = dict(sorted(out[f].items()))
    return out


def write_poselift_video(video: PoseVideo, pkl_path, labels_path=None, *, pickle_frames: int | None = None) -> None:
    """Write ``video`` as a PoseLift pickle (bbox order x1y1x2y2) and, if given, its labels (.npy uint8).

    ``pickle_frames`` writes a pickle with that many frames instead of ``n_frames`` (the real release has
    videos whose pickle and labels differ in length; generated data can reproduce that).
    """
    p = Path(pkl_path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = pickle.dumps(poselift_dict(video, pickle_frames), protocol=4)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(p)
    if labels_path is not None:
        if video.labels is None:
            raise DatasetError(f"{video.name}: no labels to write to {labels_path}")
        lab = np.asarray(video.labels, np.uint8).reshape(-1)
        if len(lab) != video.n_frames:
            raise DatasetError(f"{video.name}: {len(lab)} labels for {video.n_frames} frames")
        lp = Path(labels_path)
        lp.parent.mkdir(parents=True, exist_ok=True)
        with open(lp, "wb") as fh:
            np.save(fh, lab, allow_pickle=False)


def write_poselift_dataset(root, train: list[PoseVideo], test: list[PoseVideo],
                           pickle_frames: dict[str, int] | None = None) -> Path:
    """Write ``root/Pickle_files/{Train,Test,GT}``; returns the Pickle_files folder."""
    base = Path(root) / "Pickle_files"
    pf = pickle_frames or {}
    for v in train:
        write_poselift_video(v, base / "Train" / f"{v.name}.pkl", pickle_frames=pf.get(v.name))
    for v in test:
        write_poselift_video(v, base / "Test" / f"{v.name}.pkl",
                             None if v.labels is None else base / "GT" / f"{v.name}.npy",
                             pickle_frames=pf.get(v.name))
    return base
