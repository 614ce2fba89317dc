"""The scoring pipeline end to end on a small simulated store: filter -> live windows -> STG-NF -> alerts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.cli import main
from edge.config import EdgeConfig, FilteringConfig
from edge.records import AlertPhase, Poses
from edge.service.pipeline import PipelineError, ScoringPipeline
from tests.conftest import SHARED, renormalized_copy

WEIGHTS = SHARED / "reference" / "stgnf" / "weights.npz"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from edge.datasets import read_dataset
    from edge.simulate.dataset import simulate_dataset

    root = tmp_path_factory.mktemp("store")
    simulate_dataset(root, seed=3, scale="small")
    return root, read_dataset(root)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, store):
    """The reference weights imported when ../shared is there, else a model trained for one epoch."""
    out = tmp_path_factory.mktemp("model") / "m"
    if WEIGHTS.exists():
        from edge.scoring.importer import import_stgnf

        import_stgnf(WEIGHTS, out)
    else:
        pytest.importorskip("torch")
        from edge.scoring.train import train_model

        train_model(store[0], out, epochs=1, progress=False)
    return out


@pytest.fixture(scope="module")
def scorer(model_dir):
    from edge.scoring import load_scorer

    return load_scorer(model_dir)


@pytest.fixture(scope="module")
def detrended_scorer(model_dir, tmp_path_factory):
    """The same weights under a card that asks for the detrended window normalisation."""
    from edge.scoring import load_scorer

    return load_scorer(renormalized_copy(model_dir, tmp_path_factory.mktemp("detrended") / "m", "detrended-std-y"))


def replay(test_videos):
    from edge.sources.replay import iter_replay

    return [rec for _, rec in iter_replay(test_videos)]


def events_key(events):
    return [(e.alert_id, e.event, e.camera_id, e.track_id, e.frame_index, round(e.score, 4)) for e in events]


def median_score(pipe_cfg, scorer, videos) -> float:
    pipe = ScoringPipeline(pipe_cfg, scorer)
    nll = np.concatenate([s.nll for s in pipe.score_batch(replay(videos))])
    return float(np.median(nll))


@pytest.mark.parametrize("normalization", ["window-std-y", "detrended-std-y"])
def test_pipeline_windows_and_scores_match_the_offline_chain(store, scorer, detrended_scorer, normalization):
    """Without smoothing and with the reference cutting rule, the live chain scores exactly the reference
    windows (plus each track's last), normalised as the model card says."""
    from edge.config import ScoringConfig
    from edge.sources.replay import iter_poses
    from edge.windowing.stgnf import model_input, track_windows

    cfg = EdgeConfig(filtering=FilteringConfig(smoother="none", max_gap=0, min_confidence=0.0),
                     scoring=ScoringConfig(window_fill_gaps=0))
    _, ds = store
    video = max(ds.test, key=lambda v: sum(len(t) for t in v.tracks.values()))
    scorer = detrended_scorer if normalization == "detrended-std-y" else scorer
    assert scorer.card.window_normalization == normalization
    pipe = ScoringPipeline(cfg, scorer)
    got = {}
    for s in pipe.score_batch(list(iter_poses(video, "cam1"))):
        for tid, c, x in zip(s.track_ids.tolist(), s.centre_frames.tolist(), s.nll.tolist()):
            got[(tid, c)] = x
    expected = {}
    for tid, tr in video.tracks.items():
        starts, pix = track_windows(tr.frames, tr.keypoints)
        if len(starts):
            nll = scorer.score(model_input(pix, method=normalization))
            expected.update({(tid, int(f0) + 12): float(x) for f0, x in zip(starts, nll)})
    assert len(expected) > 20
    assert set(expected) <= set(got)
    assert len(got) - len(expected) <= len(video.tracks)  # the live builder's extra last window per track
    for k, x in expected.items():
        assert got[k] == pytest.approx(x, abs=1e-4)


def test_batched_and_frame_by_frame_give_the_same_alerts(store, scorer):
    _, ds = store
    base = EdgeConfig()
    thr = median_score(base, scorer, ds.test)  # low enough that alerts fire
    cfg = base.model_copy(update={"alerting": base.alerting.model_copy(update={"min_duration_s": 0.5,
                                                                                 "cooldown_s": 2.0})})
    records = replay(ds.test)
    one = ScoringPipeline(cfg, scorer, threshold=thr, alert_id_key="k")
    ev1 = [e for r in records for e in one.process(r)] + one.finish()
    many = ScoringPipeline(cfg.model_copy(update={"scoring": cfg.scoring.model_copy(update={"max_batch": 7})}),
                           scorer, threshold=thr, alert_id_key="k")
    ev2 = []
    for i in range(0, len(records), 50):
        ev2 += many.process_batch(records[i:i + 50])
    ev2 += many.finish()
    assert events_key(ev1) == events_key(ev2)
    news = [e for e in ev1 if e.event == AlertPhase.NEW]
    ends = [e for e in ev1 if e.event == AlertPhase.END]
    assert len(news) >= 2
    assert sorted(e.alert_id for e in news) == sorted(e.alert_id for e in ends)  # every alert ends
    assert one.stats.frames == len(records) == many.stats.frames
    assert one.stats.windows_scored == many.stats.windows_scored > 0
    assert many.stats.score_calls > 1 and one.stats.alerts_new == len(news)
    assert one.open_alerts == 0
    cams = {r.camera_id for r in records}
    assert len(cams) > 1 and {e.camera_id for e in news} <= cams


def test_threshold_comes_from_argument_config_or_card(store, scorer):
    cfg = EdgeConfig()
    assert ScoringPipeline(cfg, scorer, threshold=3.0).threshold == 3.0
    cfg2 = cfg.model_copy(update={"alerting": cfg.alerting.model_copy(update={"threshold": 4.0})})
    assert ScoringPipeline(cfg2, scorer).threshold == 4.0
    carded = type("S", (), {"card": scorer.card.model_copy(update={"threshold": 5.0}), "score": scorer.score})()
    assert ScoringPipeline(cfg, carded).threshold == 5.0
    assert ScoringPipeline(cfg2, carded).threshold == 4.0


def test_without_threshold_scoring_works_but_alerting_refuses(store, scorer):
    _, ds = store
    pipe = ScoringPipeline(EdgeConfig(), scorer)
    assert pipe.threshold is None or scorer.card.threshold is not None
    if pipe.threshold is None:
        recs = replay(ds.test[:1])
        assert sum(len(s) for s in pipe.score_batch(recs)) > 0
        with pytest.raises(PipelineError, match="calibrate-threshold"):
            pipe.process(recs[0])


def test_camera_restart_ends_its_open_alerts(store, scorer):
    from edge.sources.replay import iter_poses

    _, ds = store
    video = max(ds.test, key=lambda v: v.n_frames)
    pipe = ScoringPipeline(EdgeConfig(alerting={"min_duration_s": 0.0}), scorer, threshold=-1e9)
    recs = [r for r in iter_poses(video, "cam1", closing_record=False)]
    events = [e for r in recs for e in pipe.process(r)]
    assert pipe.open_alerts >= 1
    restart = Poses("cam1", 0, recs[-1].t + 1.0, np.zeros(0), np.zeros((0, 4)), np.zeros((0, 17, 3)))
    ends = pipe.process(restart)
    assert pipe.stats.camera_restarts == 1 and pipe.open_alerts == 0
    opened = {e.alert_id for e in events if e.event == AlertPhase.NEW}
    assert {e.alert_id for e in ends if e.event == AlertPhase.END} == opened


def test_scorer_breaking_its_contract_is_a_clear_error(store, scorer):
    _, ds = store

    class Short:
        card = scorer.card

        def score(self, x):
            return np.zeros(max(len(x) - 1, 0), np.float32)

    pipe = ScoringPipeline(EdgeConfig(), Short(), threshold=1.0)
    with pytest.raises(PipelineError, match="scores for"):
        pipe.process_batch(replay(ds.test))


# ---- calibrate-threshold ------------------------------------------------------------------------

def test_calibrate_threshold_cli_meets_budget(store, model_dir, tmp_path, capsys):
    from edge.alerting.calibrate_cli import record_scores
    from edge.scoring import load_scorer
    from edge.scoring.model_io import read_card

    root, ds = store
    out = tmp_path / "calibrated"
    budget = 60.0  # per camera-hour: a few alerts allowed in this short recording, so the search matters
    rc = main(["calibrate-threshold", "--model", str(model_dir), "--data", str(root), "--budget", str(budget),
               "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "threshold" in printed and "camera-hours" in printed
    card = read_card(out)
    rec = card.threshold_calibration
    assert card.threshold == rec["threshold"]
    assert rec["budget_per_hour"] == budget and rec["split"] == "train" and len(rec["data_sha256"]) == 64
    hours = sum(v.n_frames / v.fps for v in ds.train) / 3600
    assert rec["hours"] == pytest.approx(hours)
    assert rec["rate_per_hour"] <= budget
    # the live pipeline, run over the same normal data with the written threshold, raises what was measured
    scorer = load_scorer(out)
    alerts = 0
    for v in ds.train:
        from edge.sources.replay import iter_poses

        pipe = ScoringPipeline(EdgeConfig(), scorer, fps=v.fps)
        alerts += sum(e.event == AlertPhase.NEW for r in iter_poses(v, f"cam{v.camera}") for e in pipe.process(r))
        alerts += sum(e.event == AlertPhase.NEW for e in pipe.finish())
    assert pipe.threshold == card.threshold
    assert alerts == rec["alerts"] and alerts / hours <= budget
    assert rec["alerts"] >= 1, "budget too tight for the test to exercise the search"
    assert read_card(model_dir).threshold is None  # --out leaves the source model untouched
    recorder, _ = record_scores(ds.train, scorer, EdgeConfig())
    assert len(recorder.series()) == rec["windows"]


def test_calibrate_threshold_errors_name_the_problem(tmp_path, capsys, store, model_dir):
    root, _ = store
    rc = main(["calibrate-threshold", "--model", str(tmp_path / "nope"), "--data", str(root)])
    err = capsys.readouterr().err
    assert rc == 2 and "nope" in err
    rc = main(["calibrate-threshold", "--model", str(model_dir), "--data", str(tmp_path / "nodata")])
    err = capsys.readouterr().err
    assert rc == 2 and "nodata" in err
    rc = main(["calibrate-threshold", "--model", str(model_dir), "--data", str(root), "--budget", "0"])
    assert rc == 2 and "budget" in capsys.readouterr().err
    out = tmp_path / "busy"
    out.mkdir()
    (out / "x").write_text("1")
    rc = main(["calibrate-threshold", "--model", str(model_dir), "--data", str(root), "--out", str(out)])
    assert rc == 2 and "not empty" in capsys.readouterr().err
    assert json.loads((model_dir / "card.json").read_text())["threshold"] is None


def test_calibration_splits(store):
    from edge.alerting.calibrate_cli import select_videos

    _, ds = store
    assert select_videos(ds, "train") == ds.train
    normal = select_videos(ds, "test-normal")
    assert normal and all(not v.labels.any() for v in normal) and len(normal) < len(ds.test)
    with pytest.raises(ValueError, match="unknown split"):
        select_videos(ds, "val")


def test_score_sink_sees_every_scored_window(store, scorer):
    _, ds = store
    seen = []
    pipe = ScoringPipeline(EdgeConfig(), scorer, threshold=1e9, score_sink=lambda s: seen.append(len(s)))
    pipe.process_batch(replay(ds.test))
    pipe.finish()
    assert all(seen) and sum(seen) == pipe.stats.windows_scored > 0


def test_pose_quality_gate_in_the_live_path_and_in_calibration(store, model_dir, scorer, tmp_path):
    import dataclasses

    from edge.alerting.calibrate_cli import calibrate_model, record_scores
    from edge.config import ScoringConfig
    from edge.scoring.model_io import read_card

    _, ds = store
    W, H = ds.test[0].frame_size

    def cut_off(rec):  # people standing at the bottom edge of the view from frame 40 on
        if rec.frame_index < 40 or not len(rec):
            return rec
        kp = rec.keypoints.copy()
        kp[:, 15:, 1] = H - 1
        return dataclasses.replace(rec, keypoints=kp)

    records = [cut_off(r) for r in replay(ds.test)]
    off = ScoringPipeline(EdgeConfig(), scorer)
    n_off = sum(len(s) for s in off.score_batch(records) + off.drain())
    assert off.stats.gated_windows == 0
    gated_cfg = EdgeConfig(scoring=ScoringConfig(gate_in_view=True))
    on = ScoringPipeline(gated_cfg, scorer)
    kept = on.score_batch(records) + on.drain()
    n_on = sum(len(s) for s in kept)
    assert on.stats.gated_windows > 0 and n_on + on.stats.gated_windows == n_off
    assert on.stats.as_dict()["gated_windows"] == on.stats.gated_windows
    assert all(c < 40 + 12 for s in kept for c in s.centre_frames.tolist())  # nothing after the cut is scored
    # calibration runs the same gate, and records it so a changed gate asks for a new threshold
    rec_off, _ = record_scores(ds.train, scorer, EdgeConfig())
    rec_on, _ = record_scores(ds.train, scorer,
                              EdgeConfig(scoring=ScoringConfig(gate_in_view=True, gate_border_px=200.0)))
    assert 0 < len(rec_on.series()) < len(rec_off.series())
    out = tmp_path / "m"
    record = calibrate_model(model_dir, store[0], budget=50.0, config=gated_cfg, out=out, videos=ds.train)
    assert record["scoring"]["gate_in_view"] is True and read_card(out).threshold_calibration == record
