"""Model directories: what is written, and clear errors for bad model, weight and window files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edge.cli import main
from edge.scoring import ModelFormatError, load_scorer, read_card, write_card
from edge.scoring.card import ModelCard, sha256_file
from edge.scoring.importer import import_stgnf

from conftest import shared_path


@pytest.fixture(scope="module")
def good_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("good") / "m"
    import_stgnf(shared_path("reference", "stgnf", "weights.npz"), out)
    return out


@pytest.fixture
def model(good_model, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(good_model, d)
    return d


def test_directory_contents_and_card(model):
    card = read_card(model)
    assert sorted(p.name for p in model.iterdir()) == ["card.json", "stgnf.onnx", "weights.npz"]
    raw = json.loads((model / "card.json").read_text())
    assert raw["schema"] == "poselift-edge/stgnf-model" and raw["schema_version"] == 1
    for name in ("stgnf.onnx", "weights.npz"):
        assert card.files[name] == sha256_file(model / name)
    assert card.threshold is None
    assert card.window_normalization == "window-std-y"  # imported weights: the published rule
    raw.pop("normalization")  # cards without the section read as the published rule
    assert ModelCard.model_validate(raw).window_normalization == "window-std-y"
    card.threshold = 4.5
    card.threshold_calibration = {"budget_per_hour": 0.5}
    write_card(model, card)
    assert load_scorer(model).card.threshold == 4.5


def test_numpy_scorer_needs_no_onnx_or_torch(model):
    import subprocess
    import sys

    code = ("import sys, numpy as np; sys.modules['onnx'] = None; sys.modules['onnxruntime'] = None; "
            "sys.modules['torch'] = None\n"
            "from edge.scoring import load_scorer\n"
            f"print(load_scorer({str(model)!r}).score(np.zeros((2, 2, 24, 18), np.float32)).shape)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "(2,)" in res.stdout


@pytest.mark.parametrize("damage, message", [
    ("no_card", "card.json: missing"),
    ("bad_json", "card.json: not valid JSON"),
    ("newer_schema", "newer than this software"),
    ("bad_field", "architecture.seg_len"),
    ("unknown_normalization", "normalization.method"),
    ("no_weights", "weights.npz: missing"),
    ("truncated_weights", "weights.npz: sha256"),
    ("no_onnx", "stgnf.onnx: missing"),
])
def test_bad_model_files(model, damage, message):
    card_path = model / "card.json"
    if damage == "no_card":
        card_path.unlink()
    elif damage == "bad_json":
        card_path.write_text("{not json")
    elif damage == "newer_schema":
        raw = json.loads(card_path.read_text())
        raw["schema_version"] = 7
        card_path.write_text(json.dumps(raw))
    elif damage == "bad_field":
        raw = json.loads(card_path.read_text())
        raw["architecture"]["seg_len"] = "long"
        card_path.write_text(json.dumps(raw))
    elif damage == "unknown_normalization":
        raw = json.loads(card_path.read_text())
        raw["normalization"]["method"] = "per-frame-mean"
        card_path.write_text(json.dumps(raw))
    elif damage == "no_weights":
        (model / "weights.npz").unlink()
    elif damage == "truncated_weights":
        data = (model / "weights.npz").read_bytes()
        (model / "weights.npz").write_bytes(data[: len(data) // 2])
    elif damage == "no_onnx":
        (model / "stgnf.onnx").unlink()
    backend = "onnxruntime" if damage == "no_onnx" else "numpy"
    with pytest.raises(ModelFormatError, match=message):
        load_scorer(model, backend)


def _rewrite_weights(model, tensors):
    np.savez(model / "weights.npz", **tensors)
    card = read_card(model)
    card.files["weights.npz"] = sha256_file(model / "weights.npz")
    write_card(model, card)


def test_wrong_shapes_and_names_in_weights(model):
    w = dict(np.load(model / "weights.npz"))
    w["flow.layers.3.block.0.tcn.2.weight"] = np.zeros((2, 2, 9, 1), np.float32)
    _rewrite_weights(model, w)
    with pytest.raises(ModelFormatError, match=r"weights.npz: flow.layers.3.block.0.tcn.2.weight: shape \(2, 2, 9, 1\)"):
        load_scorer(model)
    w = dict(np.load(model / "weights.npz"))
    w["flow.layers.3.block.0.tcn.2.weight"] = np.zeros((2, 2, 13, 1), np.float32)
    del w["flow.layers.5.actnorm.logs"]
    w["flow.layers.0.block.0.edge_importance"] = np.ones((1, 18, 18), np.float32)
    _rewrite_weights(model, w)
    with pytest.raises(ModelFormatError, match="missing tensors: flow.layers.5.actnorm.logs.*unknown tensors.*edge_importance"):
        load_scorer(model)


def test_corrupt_onnx_with_matching_hash(model):
    pytest.importorskip("onnxruntime")
    (model / "stgnf.onnx").write_bytes(b"\x08\x07garbage")
    card = read_card(model)
    card.files["stgnf.onnx"] = sha256_file(model / "stgnf.onnx")
    write_card(model, card)
    with pytest.raises(ModelFormatError, match="stgnf.onnx: ONNX Runtime cannot load it"):
        load_scorer(model, "onnxruntime")


def test_import_refuses_unknown_and_missing_names(tmp_path):
    w = dict(np.load(shared_path("reference", "stgnf", "weights.npz")))
    del w["flow.layers.2.block.0.tcn.3.bias"]
    w["flow.layers.2.extra"] = np.zeros(3, np.float32)
    src = tmp_path / "bad.npz"
    np.savez(src, **w)
    with pytest.raises(ModelFormatError) as e:
        import_stgnf(src, tmp_path / "m")
    assert "bad.npz" in str(e.value)
    assert "missing tensors: flow.layers.2.block.0.tcn.3.bias" in str(e.value)
    assert "unknown tensors (not part of this architecture): flow.layers.2.extra" in str(e.value)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ModelFormatError, match="junk.npz"):
        import_stgnf(tmp_path / "junk.npz", tmp_path / "m")
    with pytest.raises(ModelFormatError, match="file not found"):
        import_stgnf(tmp_path / "absent.npz", tmp_path / "m")


def test_commands(tmp_path, capsys):
    weights = shared_path("reference", "stgnf", "weights.npz")
    v = np.load(shared_path("reference", "stgnf", "windows.npz"))
    model = tmp_path / "m"
    assert main(["model", "import-stgnf", str(weights), "--out", str(model)]) == 0
    assert main(["model", "info", str(model)]) == 0
    assert "verified" in capsys.readouterr().out
    out = tmp_path / "nll.npy"
    for backend in ("numpy", "onnxruntime"):
        assert main(["score", "--model", str(model), "--windows", str(weights.parent / "windows.npz"),
                     "--out", str(out), "--backend", backend]) == 0
        assert np.abs(np.load(out) - v["nll_bpd"]).max() <= 1e-4
    np.savez(tmp_path / "nokey.npz", windows=v["x"])
    np.savez(tmp_path / "shape.npz", x=v["x"][:, :, :16])
    capsys.readouterr()
    assert main(["score", "--model", str(model), "--windows", str(tmp_path / "nokey.npz"), "--out", str(out)]) == 2
    assert "no key 'x' (keys: windows)" in capsys.readouterr().err
    assert main(["score", "--model", str(model), "--windows", str(tmp_path / "shape.npz"), "--out", str(out)]) == 2
    assert "shape.npz: key 'x': windows must have shape (N, 2, 24, 18)" in capsys.readouterr().err
    assert main(["score", "--model", str(tmp_path / "none"), "--windows", str(tmp_path / "shape.npz"),
                 "--out", str(out)]) == 2
    assert "model directory not found" in capsys.readouterr().err
