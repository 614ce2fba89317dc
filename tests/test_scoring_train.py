"""Training module (torch) against the reference ActNorm initialisation and the numpy scorer; the
train command on both dataset layouts; import of official checkpoints written with torch."""

from __future__ import annotations

import argparse
import collections

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edge.scoring import load_scorer, read_card  # noqa: E402
from edge.scoring.architecture import ModelFormatError, StgnfArchitecture  # noqa: E402
from edge.scoring.flow_numpy import NumpyFlow  # noqa: E402
from edge.scoring.importer import import_stgnf  # noqa: E402
from edge.scoring.train import model_from_weights, state_dict_numpy, train_stgnf  # noqa: E402

from conftest import shared_path  # noqa: E402


def _ref(name):
    return dict(np.load(shared_path("reference", "stgnf", name)))


def test_actnorm_data_dependent_init():
    ref = np.load(shared_path("reference", "stgnf", "actnorm_init.npz"))
    model = model_from_weights(_ref("weights_init_seed0.npz"), StgnfArchitecture())
    for step in model.flow.layers:
        step.actnorm.initialised = False
    model.train()
    with torch.no_grad():
        nll, _ = model(torch.from_numpy(ref["init_batch"]))
    after = state_dict_numpy(model)
    for name, value in after.items():
        expect = ref["after_init." + name]
        if name.endswith(("actnorm.bias", "actnorm.logs", "running_mean", "running_var")):
            np.testing.assert_allclose(value, expect, rtol=0, atol=2e-6, err_msg=name)
        elif name.endswith("num_batches_tracked"):
            assert value == expect, name
    np.testing.assert_allclose(nll.numpy(), ref["nll_train_mode_init_batch"], rtol=0, atol=1e-3)


def test_torch_module_matches_numpy_and_reference():
    w = _ref("weights.npz")
    v = np.load(shared_path("reference", "stgnf", "windows.npz"))
    arch = StgnfArchitecture()
    model = model_from_weights(w, arch).eval()
    with torch.no_grad():
        nll, z = model(torch.from_numpy(v["x"]))
    ours = NumpyFlow(w, arch).forward(v["x"])
    assert np.abs(nll.numpy() - ours.nll).max() <= 1e-4
    assert np.abs(nll.numpy() - v["nll_bpd"]).max() <= 1e-4
    assert np.abs(z.numpy() - v["z"]).max() <= 5e-4


def _synthetic_windows(n, seed):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(1, 2, 1, 18))
    drift = np.cumsum(rng.normal(scale=0.05, size=(n, 2, 24, 1)), axis=2)
    return (base + drift + rng.normal(scale=0.1, size=(n, 2, 24, 18))).astype(np.float32)


def test_training_lowers_the_loss_and_is_deterministic(tmp_path):
    x = _synthetic_windows(512, 0)
    w1, m1 = train_stgnf(x, epochs=3, batch_size=128, seed=3, progress=False)
    w2, _ = train_stgnf(x, epochs=3, batch_size=128, seed=3, progress=False)
    assert m1["epoch_loss_bpd"][-1] < m1["epoch_loss_bpd"][0]
    for k in w1:
        np.testing.assert_array_equal(w1[k], w2[k])
    # trained normal windows score lower than shuffled-joint (implausible) ones
    flow = NumpyFlow(w1, StgnfArchitecture())
    odd = x[:64, :, :, np.random.default_rng(1).permutation(18)][:, :, ::-1].copy()
    odd[:, 0] *= 3
    assert np.median(flow.forward(odd).nll) > np.median(flow.forward(x[:64]).nll)
    with pytest.raises(ValueError, match="training windows"):
        train_stgnf(x[:, :, :16], epochs=1)


def _tracks_video(name, rng, n_frames=80, people=2):
    from edge.datasets.poselift import PoseVideo, Track

    tracks = {}
    for pid in range(1, people + 1):
        frames = np.arange(n_frames, dtype=np.int64)
        body = rng.uniform(-40, 40, size=(1, 17, 2)) + np.array([900.0, 500.0])
        walk = np.cumsum(rng.normal(scale=2.0, size=(n_frames, 1, 2)), axis=0)
        xy = body + walk + rng.normal(scale=1.5, size=(n_frames, 17, 2))
        kp = np.concatenate([xy, np.full((n_frames, 17, 1), 0.9)], axis=2).astype(np.float32)
        box = np.concatenate([xy.min(1) - 5, xy.max(1) + 5], axis=1).astype(np.float32)
        tracks[pid] = Track(frames=frames, keypoints=kp, boxes=box)
    return PoseVideo(name=name, camera=int(name.split("_")[0]), n_frames=n_frames, tracks=tracks,
                     labels=np.zeros(n_frames, np.uint8))


@pytest.mark.parametrize("layout", ["poselift", "stgnf-json"])
def test_train_command_on_both_layouts(tmp_path, layout, capsys):
    from edge.cli import main

    rng = np.random.default_rng(5)
    train = [_tracks_video(f"1_{i}", rng) for i in range(3)]
    test = [_tracks_video("1_9", rng)]
    root = tmp_path / "data"
    if layout == "poselift":
        from edge.datasets.poselift import write_poselift_dataset
        write_poselift_dataset(root, train, test)
    else:
        from edge.datasets.stgnf_json import write_stgnf_dataset
        write_stgnf_dataset(root, train, test)
    out = tmp_path / "model"
    rc = main(["train", "--data", str(root), "--out", str(out), "--epochs", "2", "--batch-size", "64", "--seed", "1"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "train [" in captured.err and "wrote" in captured.out
    card = read_card(out)
    # 3 videos x 2 people x ceil((80 - 24) / 6) = 10 windows, twice (flip)
    assert card.training.n_windows == 3 * 2 * 10 * 2
    assert card.training.metrics["data"]["layout"] == layout
    assert len(card.training.data_sha256) == 64 and len(card.training.metrics["epoch_loss_bpd"]) == 2
    assert np.isfinite(load_scorer(out).score(_synthetic_windows(4, 2))).all()
    # trained on detrended windows by default, the published rule on request; the card says which
    from edge.scoring.card import sha256_windows
    from edge.windowing.stgnf import training_windows

    tracks = [(t.frames, t.keypoints) for v in train for _, t in sorted(v.tracks.items())]
    assert card.window_normalization == "detrended-std-y"
    assert card.training.data_sha256 == sha256_windows(training_windows(tracks, method="detrended-std-y"))
    if layout == "poselift":
        assert main(["train", "--data", str(root), "--out", str(tmp_path / "published"), "--epochs", "1",
                     "--normalization", "window-std-y", "--quiet"]) == 0
        card = read_card(tmp_path / "published")
        assert card.window_normalization == "window-std-y"
        assert card.training.data_sha256 == sha256_windows(training_windows(tracks))
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(out)]) == 2


def _reference_layout_state_dict(weights):
    sd = collections.OrderedDict()
    for k, v in weights.items():
        t = torch.from_numpy(np.array(v))
        sd[k] = t.to(torch.int64) if k.endswith("num_batches_tracked") else t
    return sd


@pytest.mark.parametrize("wrapped", ["checkpoint", "plain", "dataparallel"])
def test_import_official_checkpoint(tmp_path, wrapped):
    w = _ref("weights.npz")
    sd = _reference_layout_state_dict(w)
    path = tmp_path / "ShanghaiTech_test.pth.tar"
    if wrapped == "checkpoint":
        args = argparse.Namespace(seg_len=24, R=3.0, K=8, L=1, hidden_channels=0, max_hops=8,
                                  flow_permutation="invcov", edge_importance=False, model_confidence=False,
                                  epochs=8, dataset="ShanghaiTech")
        torch.save({"epoch": 8, "state_dict": sd, "optimizer": {"state": {}, "param_groups": []}, "args": args}, path)
    elif wrapped == "plain":
        torch.save(sd, path)
    else:
        torch.save({"state_dict": collections.OrderedDict(("module." + k, t) for k, t in sd.items())}, path)
    card = import_stgnf(path, tmp_path / "m")
    v = np.load(shared_path("reference", "stgnf", "windows.npz"))
    assert np.abs(load_scorer(tmp_path / "m").score(v["x"]) - v["nll_bpd"]).max() <= 1e-4
    if wrapped == "checkpoint":
        assert card.training.metrics["dataset"] == "ShanghaiTech"


def test_import_refuses_unsupported_checkpoints(tmp_path):
    sd = _reference_layout_state_dict(_ref("weights.npz"))
    path = tmp_path / "edge_importance.pth.tar"
    torch.save({"state_dict": sd, "args": argparse.Namespace(edge_importance=True, L=1)}, path)
    with pytest.raises(ModelFormatError, match="edge_importance"):
        import_stgnf(path, tmp_path / "m")
    trunc = tmp_path / "trunc.pth.tar"
    torch.save({"state_dict": sd}, trunc)
    trunc.write_bytes(trunc.read_bytes()[:2000])
    with pytest.raises(ModelFormatError, match="trunc.pth.tar"):
        import_stgnf(trunc, tmp_path / "m2")


@pytest.mark.parametrize("arch", [StgnfArchitecture(max_hops=2), StgnfArchitecture(seg_len=16, prior_mean=10.0)],
                         ids=["max_hops-2", "seg_len-16"])
def test_other_architectures_agree_across_implementations(tmp_path, arch):
    """A local adjacency (general aggregation path) and the 16-frame variant: torch, numpy and ONNX agree."""
    from edge.scoring.model_io import save_model

    x = _synthetic_windows(96, 4)[:, :, :arch.seg_len].copy()
    w, _ = train_stgnf(x, epochs=1, batch_size=32, seed=0, arch=arch, progress=False)
    model = model_from_weights(w, arch).eval()
    with torch.no_grad():
        ref, _ = model(torch.from_numpy(x))
    save_model(tmp_path / "m", w, arch)
    for backend in ("numpy", "onnxruntime"):
        if backend == "onnxruntime":
            pytest.importorskip("onnxruntime")
        got = load_scorer(tmp_path / "m", backend).score(x)
        assert np.abs(got - ref.numpy()).max() <= 1e-4, backend
    single = np.concatenate([load_scorer(tmp_path / "m").score(x[i:i + 1]) for i in range(8)])
    np.testing.assert_array_equal(single, load_scorer(tmp_path / "m").score(x)[:8])
