"""``poselift-edge eval`` end to end on the reference pipeline's JSON data with the imported weights."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest

from edge.cli import main
from tests.conftest import renormalized_copy, shared_path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from edge.scoring.importer import import_stgnf

    out = tmp_path_factory.mktemp("model") / "stgnf"
    import_stgnf(shared_path("reference", "stgnf", "weights.npz"), out)
    return out


@pytest.fixture(scope="module")
def ref():
    return np.load(shared_path("reference", "stgnf", "preproc", "preproc_and_scoring.npz"))


def _data():
    return shared_path("reference", "stgnf", "preproc", "data", "ShanghaiTech")


def _csv_scores(path):
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    return rows, np.array([float(r["score"]) for r in rows])


def test_eval_reproduces_the_reference(model, ref, tmp_path, capsys):
    rep = tmp_path / "report"
    assert main(["eval", "--data", str(_data()), "--model", str(model), "--report", str(rep)]) == 0
    out = capsys.readouterr().out
    assert "AUC-ROC (shoplifting positive)" in out and "0.70707" in out and "EER" in out
    assert "AUC-PR (normal positive, paper convention)" in out
    assert "AUC-PR (shoplifting positive, Shopformer convention)" in out
    doc = json.loads((rep / "metrics.json").read_text())
    assert abs(doc["metrics"]["auc_roc"] - float(ref["auc"])) < 1e-4
    rows, scores = _csv_scores(rep / "frame_scores.csv")
    assert len(rows) == 250 and list(rows[0]) == ["clip", "frame", "score", "label"]
    np.testing.assert_allclose(scores, ref["frame_score_smoothed"], rtol=0, atol=1e-4)
    labels = np.array([int(r["label"]) for r in rows])
    np.testing.assert_array_equal(labels, 1 - ref["frame_gt_normal1"])
    assert [c["frames"] for c in doc["clips"]] == [120, 80, 50]
    assert doc["clips"][2]["scored_frames"] == 0  # the clip with labels and no poses counts
    for name in ("roc.png", "pr.png", "timelines_01.png"):
        assert (rep / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_without_matplotlib_still_writes_json_and_csv(model, tmp_path, capsys, monkeypatch):
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    rep = tmp_path / "r"
    assert main(["eval", "--data", str(_data()), "--model", str(model), "--report", str(rep)]) == 0
    err = capsys.readouterr().err
    assert "plots skipped: matplotlib is not installed" in err
    assert (rep / "metrics.json").exists() and (rep / "frame_scores.csv").exists()
    assert not (rep / "roc.png").exists()


def test_eval_with_the_pose_filter_and_other_divisors(model, ref, tmp_path, capsys):
    rep = tmp_path / "f"
    assert main(["eval", "--data", str(_data()), "--model", str(model), "--report", str(rep), "--no-plots",
                 "--filter", "centered", "--divisors", "1920x1080"]) == 0
    doc = json.loads((rep / "metrics.json").read_text())
    assert doc["info"]["filter"]["smoother"] == "centered" and doc["info"]["divisors"] == [1920.0, 1080.0]
    _, scores = _csv_scores(rep / "frame_scores.csv")
    assert np.isfinite(scores).all() and np.abs(scores - ref["frame_score_smoothed"]).max() > 1e-3


def test_eval_errors_are_plain(model, tmp_path, capsys):
    assert main(["eval", "--data", str(tmp_path / "nope"), "--model", str(model), "--report", str(tmp_path)]) == 2
    assert "no such dataset directory" in capsys.readouterr().err
    assert main(["eval", "--data", str(_data()), "--model", str(tmp_path), "--report", str(tmp_path / "r")]) == 2
    assert "card.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--data", "x", "--model", "y", "--report", "z", "--divisors", "856by480"])


def test_eval_on_the_poselift_layout_gives_the_same_scores(model, ref, tmp_path, capsys):
    from edge.datasets.poselift import write_poselift_dataset
    from edge.datasets.stgnf_json import read_stgnf_dataset

    ds = read_stgnf_dataset(_data())
    root = write_poselift_dataset(tmp_path / "poselift", ds.train, ds.test)
    rep = tmp_path / "r"
    assert main(["eval", "--data", str(root), "--model", str(model), "--report", str(rep), "--no-plots"]) == 0
    _, scores = _csv_scores(rep / "frame_scores.csv")
    np.testing.assert_allclose(scores, ref["frame_score_smoothed"], rtol=0, atol=1e-4)


def test_eval_normalises_windows_as_the_model_card_says(model, ref, tmp_path, capsys):
    """A model trained with the detrended normalisation is evaluated on detrended windows: the frame
    scores equal the protocol applied to the reference's windows normalised that way."""
    from edge.evaluation.protocol import ClipWindows, frame_scores
    from edge.scoring import load_scorer
    from edge.windowing.stgnf import DETRENDED, model_input

    detrended = renormalized_copy(model, tmp_path / "m", DETRENDED)
    rep = tmp_path / "r"
    assert main(["eval", "--data", str(_data()), "--model", str(detrended), "--report", str(rep), "--no-plots"]) == 0
    assert json.loads((rep / "metrics.json").read_text())["info"]["normalization"] == DETRENDED
    _, scores = _csv_scores(rep / "frame_scores.csv")

    nll = load_scorer(detrended).score(model_input(ref["test_segs_coco17_pixels"], method=DETRENDED))
    meta = ref["test_meta"]
    clips = []
    for k, (name, n) in enumerate(zip(ref["clip_order"], ref["clip_lengths"])):
        scene, clip = (int(v) for v in str(name).removesuffix(".npy").split("_"))
        sel = (meta[:, 0] == scene) & (meta[:, 1] == clip)
        labels = 1 - ref["frame_gt_normal1"][int(ref["clip_lengths"][:k].sum()):][:int(n)]
        clips.append(ClipWindows(str(name), labels.astype(np.uint8), meta[sel, 3].astype(np.int64),
                                 -nll[sel].astype(np.float64), meta[sel, 2].astype(np.int64)))
    np.testing.assert_allclose(scores, frame_scores(clips).smoothed, rtol=0, atol=1e-4)
    assert np.abs(scores - ref["frame_score_smoothed"]).max() > 1e-3  # the published rule scores differently
