"""ByteTrack parity with the original implementation's outputs on real MOT15 detections."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from conftest import SHARED, shared_path
from edge.tracking.bytetrack import ByteTracker
from edge.tracking.mot_metrics import evaluate
from edge.tracking.motio import read_detections, read_results

CONFIGS = {"demo_t05_m08": (0.5, 0.8, 30), "eval_t06_m09": (0.6, 0.9, 30), "stress_t08_m08": (0.8, 0.8, 30)}
IMPLS = {"plain": "bytetrack_orig_plainiou", "legacy": "bytetrack_orig"}
REF = SHARED / "tracking" / "reference_bytetrack"
CASES = sorted((iou, cfg, p.stem) for iou, impl in IMPLS.items() for cfg in CONFIGS
               for p in (REF / impl / cfg).glob("*.txt")) or [("plain", "demo_t05_m08", "TUD-Campus")]


def run_tracker(seq: str, cfg: str, iou: str) -> np.ndarray:
    tt, mt, tb = CONFIGS[cfg]
    det = read_detections(shared_path("tracking", "detections", f"{seq}.txt"))
    trk = ByteTracker(tt, mt, tb, 30, fuse_score=True, iou=iou)
    rows = []
    for f, boxes, scores in det.by_frame():
        out = trk.update(boxes, scores)
        for i, b, s in zip(out.ids, out.tlwh, out.scores):
            rows.append((f, i, *b, s))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 7)


def compare(mine: np.ndarray, ref: np.ndarray, tol: float = 0.05) -> list[str]:
    """Same rows per frame (boxes within tol, scores to the written precision) and a 1:1 id mapping."""
    problems = []
    by_frame = defaultdict(list)
    for r in ref:
        by_frame[int(r[0])].append(r)
    fwd: dict[int, int] = {}
    bwd: dict[int, int] = {}
    mine_frames = defaultdict(list)
    for r in mine:
        mine_frames[int(r[0])].append(r)
    for f in sorted(set(by_frame) | set(mine_frames)):
        a, b = mine_frames.get(f, []), list(by_frame.get(f, []))
        if len(a) != len(b):
            problems.append(f"frame {f}: {len(a)} rows vs {len(b)} in the reference")
            continue
        for r in a:
            d = [np.abs(c[2:6] - r[2:6]).max() for c in b]
            k = int(np.argmin(d))
            if d[k] > tol or abs(b[k][6] - r[6]) > 6e-6:
                problems.append(f"frame {f}: no reference row for box {np.round(r[2:6], 3)} (off by {d[k]:.3f})")
                continue
            c = b.pop(k)
            mi, ri = int(r[1]), int(c[1])
            if fwd.setdefault(mi, ri) != ri or bwd.setdefault(ri, mi) != mi:
                problems.append(f"frame {f}: id {mi} maps to reference ids {fwd[mi]} and {ri}")
    return problems


@pytest.mark.shared
@pytest.mark.parametrize("iou,cfg,seq", CASES)
def test_parity_with_original(iou, cfg, seq):
    ref = read_results(shared_path("tracking", "reference_bytetrack", IMPLS[iou], cfg, f"{seq}.txt"))[:, :7]
    mine = run_tracker(seq, cfg, iou)
    assert len(mine) == len(ref)
    problems = compare(mine, ref)
    assert not problems, f"{seq} {cfg} {iou}: {len(problems)} differences, first: {problems[:5]}"


@pytest.mark.shared
def test_every_reference_sequence_is_covered():
    for impl in IMPLS.values():
        for cfg in CONFIGS:
            refs = {p.stem for p in shared_path("tracking", "reference_bytetrack", impl, cfg).glob("*.txt")}
            dets = {p.stem for p in shared_path("tracking", "detections").glob("*.txt")}
            assert refs and refs <= dets
            assert refs <= {c[2] for c in CASES if c[1] == cfg}


def test_compare_detects_differences():
    ref = np.array([[1, 1, 10, 10, 5, 5, 0.9], [1, 2, 30, 30, 5, 5, 0.8], [2, 1, 11, 10, 5, 5, 0.9]])
    assert compare(ref.copy(), ref) == []
    moved = ref.copy()
    moved[2, 2] += 0.2
    assert compare(moved, ref)
    swapped = ref.copy()
    swapped[2, 1] = 2  # track 1 continues under the id of track 2: not one-to-one
    assert compare(swapped, ref)


@pytest.mark.shared
@pytest.mark.parametrize("iou,mota,idf1", [("legacy", 0.596, 0.679), ("plain", 0.599, 0.680)])
def test_tud_campus_mota_idf1(iou, mota, idf1):
    gt = read_results(shared_path("tracking", "ground_truth", "TUD-Campus.txt"))
    ref = read_results(shared_path("tracking", "reference_bytetrack", IMPLS[iou], "demo_t05_m08", "TUD-Campus.txt"))
    mine = evaluate(gt, run_tracker("TUD-Campus", "demo_t05_m08", iou))
    orig = evaluate(gt, ref)
    assert round(mine.mota, 3) == pytest.approx(mota, abs=1e-9)
    assert round(mine.idf1, 3) == pytest.approx(idf1, abs=1e-9)
    assert (mine.mota, mine.idf1, mine.switches) == (orig.mota, orig.idf1, orig.switches)


def test_metrics_on_hand_made_sequences():
    gt = np.array([[1, 1, 0, 0, 10, 10], [2, 1, 1, 0, 10, 10], [3, 1, 2, 0, 10, 10],
                   [1, 2, 50, 0, 10, 10], [2, 2, 50, 0, 10, 10], [3, 2, 50, 0, 10, 10]], dtype=float)
    perfect = gt.copy()
    perfect[:, 1] += 10
    s = evaluate(gt, perfect)
    assert (s.mota, s.idf1, s.switches) == (1.0, 1.0, 0)
    # The hypothesis of object 1 changes id at frame 3: one switch; one box missing; one false box.
    hyp = np.array([[1, 7, 0, 0, 10, 10], [2, 7, 1, 0, 10, 10], [3, 8, 2, 0, 10, 10],
                    [1, 9, 50, 0, 10, 10], [2, 9, 50, 0, 10, 10], [3, 5, 200, 0, 10, 10]], dtype=float)
    s = evaluate(gt, hyp)
    assert (s.misses, s.false_positives, s.switches) == (1, 1, 1)
    assert s.mota == pytest.approx(1 - 3 / 6)
    assert s.idtp == 4 and s.idf1 == pytest.approx(8 / 12)
    # Below IoU 0.5 is no match at all.
    off = gt.copy()
    off[:, 2] += 6
    assert evaluate(gt, off).misses == 6


@pytest.mark.shared
@pytest.mark.parametrize("iou,cfg,seq", CASES)
def test_track_command_output_is_the_original_file(tmp_path, iou, cfg, seq, capsys):
    """Beyond the parity bar: the written file is byte for byte the original's (ids, order, digits)."""
    from edge.cli import main as cli_main

    tt, mt, tb = CONFIGS[cfg]
    ref = shared_path("tracking", "reference_bytetrack", IMPLS[iou], cfg, f"{seq}.txt")
    out = tmp_path / "out.txt"
    argv = ["track", "--detections", str(shared_path("tracking", "detections", f"{seq}.txt")), "--out", str(out),
            "--track-thresh", str(tt), "--match-thresh", str(mt), "--track-buffer", str(tb), "--iou", iou]
    assert cli_main(argv) == 0
    assert out.read_bytes() == ref.read_bytes()
