"""``poselift-edge demo`` on a small work folder: first run sets up, the second reuses everything."""

from __future__ import annotations

import json

import pytest

from edge.cli import main

pytest.importorskip("torch")


@pytest.mark.slow
def test_demo_runs_then_reuses_its_setup(tmp_path, capsys):
    work = tmp_path / "demo"
    # a low fixed threshold, so that the replay certainly prints alerts with their whole lifecycle
    cfg = tmp_path / "edge.toml"
    cfg.write_text("[alerting]\nthreshold = 1.0\nmin_duration_s = 0.5\n[transport]\nenabled = false\n")
    rc = main(["demo", "--workdir", str(work), "--epochs", "2", "--no-plots", "--config", str(cfg)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "simulating" in out and "training STG-NF" in out and "calibrating" in out
    summary = json.loads((work / "summary.json").read_text())
    assert summary["alerts"] >= 1
    assert summary["alerts"] == summary["alerts_on_shoplifting"] + summary["false_alarms"]
    assert 0.0 <= summary["auc_roc"] <= 1.0 and summary["threshold"] == 1.0
    assert summary["replay"]["frames"] > 0 and summary["replay"]["windows_scored"] > 0
    assert " NEW " in out and " END " in out and "alerts raised" in out
    alerts = [json.loads(line) for line in (work / "alerts.jsonl").read_text().splitlines()]
    assert len(alerts) == summary["alerts"]
    assert all(a["events"][0] == "new" and a["events"][-1] == "end" for a in alerts)
    assert all(len(a["track"]) == 16 for a in alerts)  # pseudonymous hex ids, not the replay's
    metrics = json.loads((work / "report" / "metrics.json").read_text())
    assert metrics["metrics"]["auc_roc"] == pytest.approx(summary["auc_roc"])
    card = json.loads((work / "model" / "card.json").read_text())
    assert card["threshold"] is not None and card["threshold_calibration"]["split"] == "train"

    rc = main(["demo", "--workdir", str(work), "--epochs", "2", "--no-plots", "--config", str(cfg)])
    again = capsys.readouterr().out
    assert rc == 0, again
    assert "store data: reusing" in again and "model: reusing" in again and "threshold: reusing" in again
    summary2 = json.loads((work / "summary.json").read_text())
    assert summary2["alerts"] == summary["alerts"] and summary2["auc_roc"] == summary["auc_roc"]
    ids = sorted(a["alert_id"] for a in alerts)
    ids2 = sorted(json.loads(line)["alert_id"] for line in (work / "alerts.jsonl").read_text().splitlines())
    assert ids == ids2  # deterministic alert ids for the same replay

    # paced replay (here 1000x real time) processes the same stream in the same order
    rc = main(["demo", "--workdir", str(work), "--epochs", "2", "--no-plots", "--config", str(cfg),
               "--speed", "1000"])
    paced = capsys.readouterr().out
    assert rc == 0 and "1000x real time" in paced
    ids3 = sorted(json.loads(line)["alert_id"] for line in (work / "alerts.jsonl").read_text().splitlines())
    assert ids3 == ids

    # a different training setting trains again, on the data already there
    rc = main(["demo", "--workdir", str(work), "--epochs", "1", "--no-plots", "--config", str(cfg)])
    third = capsys.readouterr().out
    assert rc == 0 and "store data: reusing" in third and "training STG-NF" in third


def test_demo_rejects_bad_arguments(tmp_path, capsys):
    assert main(["demo", "--workdir", str(tmp_path), "--speed", "0"]) == 2
    assert "--speed" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[alerting]\nrelease_ratio = 3\n")
    assert main(["demo", "--workdir", str(tmp_path), "--config", str(bad)]) == 2
    assert "alerting.release_ratio" in capsys.readouterr().err


@pytest.mark.slow
def test_default_demo_alerts_on_shoplifting(tmp_path, capsys):
    """The embedded default as `make demo` runs it (calibrated threshold, default settings): it must raise
    alerts, and more of them on labelled shoplifting than on normal shopping."""
    work = tmp_path / "demo"
    assert main(["demo", "--workdir", str(work), "--no-plots"]) == 0
    capsys.readouterr()
    s = json.loads((work / "summary.json").read_text())
    assert s["calibration"]["budget_per_hour"] == 20.0 and s["threshold"] is not None
    assert s["alerts_on_shoplifting"] >= 2 and s["alerts_on_shoplifting"] > s["false_alarms"], s
    assert s["auc_roc"] > 0.75, s
