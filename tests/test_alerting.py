"""Alert lifecycle: new / update / end, minimum duration, hysteresis, cooldown, zones, ids."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from edge.alerting import AlertEngine, Zone, ZoneMap
from edge.alerting.engine import REASON_FINISHED, REASON_LEFT_ZONE, REASON_RELEASED, REASON_REMOVED
from edge.config import AlertingConfig, ZoneConfig
from edge.records import AlertPhase, Scores, TrackEvent, TrackEventKind

FPS = 10.0


def cfg(**kw) -> AlertingConfig:
    base = dict(ema_alpha=1.0, min_duration_s=1.0, end_after_s=1.0, cooldown_s=5.0, update_interval_s=2.0,
                release_ratio=0.9, warmup_windows=0)
    base.update(kw)
    return AlertingConfig(**base)


def scores(t, nll, track=1, cam="cam1", anchor=(100.0, 100.0), events=()):
    return Scores(cam, int(round(t * FPS)), t, [track], [int(round(t * FPS)) - 12], [anchor], [nll], events)


def run(engine, series, **kw):
    """Feed ``[(t, nll), ...]``; returns every event."""
    out = []
    for t, x in series:
        out += engine.update(scores(t, x, **kw))
    return out


def ramp(t0, t1, value):
    return [(round(t, 3), value) for t in np.arange(t0, t1, 1 / FPS)]


def phases(events):
    return [e.event for e in events]


def test_fires_only_after_min_duration():
    eng = AlertEngine(cfg(), threshold=5.0)
    assert run(eng, ramp(0.0, 0.95, 6.0)) == []  # 0.9 s above: not yet
    ev = run(eng, [(1.0, 6.0)])
    assert phases(ev) == [AlertPhase.NEW]
    assert ev[0].started_t == 0.0 and ev[0].t == 1.0 and ev[0].threshold == 5.0
    assert ev[0].score == 6.0 and ev[0].peak_score == 6.0 and ev[0].track_id == 1 and ev[0].camera_id == "cam1"
    assert eng.open_alerts == 1


def test_interruption_restarts_min_duration():
    eng = AlertEngine(cfg(), threshold=5.0)
    ev = run(eng, ramp(0.0, 0.8, 6.0) + [(0.8, 4.0)] + ramp(0.9, 1.85, 6.0))
    assert ev == []
    assert phases(run(eng, [(1.9, 6.0)])) == [AlertPhase.NEW]


def test_updates_are_rate_limited_and_carry_the_peak():
    eng = AlertEngine(cfg(update_interval_s=2.0), threshold=5.0)
    series = ramp(0.0, 2.0, 6.0) + ramp(2.0, 3.0, 9.0) + ramp(3.0, 6.95, 7.0)
    ev = run(eng, series)
    assert phases(ev) == [AlertPhase.NEW, AlertPhase.UPDATE, AlertPhase.UPDATE]
    new, up1, up2 = ev
    assert new.t == 1.0
    assert up1.t == pytest.approx(3.0) and up2.t == pytest.approx(5.0)
    assert up1.peak_score == 9.0 and up2.peak_score == 9.0 and up2.score == 7.0
    assert len({e.alert_id for e in ev}) == 1


def test_hysteresis_keeps_alert_between_release_and_threshold():
    eng = AlertEngine(cfg(update_interval_s=100.0), threshold=5.0)  # release level 4.5
    ev = run(eng, ramp(0.0, 1.05, 6.0) + ramp(1.1, 5.0, 4.6))
    assert phases(ev) == [AlertPhase.NEW]  # 4.6 is below threshold but above release: still open
    ev = run(eng, ramp(5.0, 5.95, 4.4))  # below release for 0.9 s: not yet
    assert ev == []
    ev = run(eng, [(6.0, 4.4)])
    assert phases(ev) == [AlertPhase.END] and ev[0].reason == REASON_RELEASED
    assert eng.open_alerts == 0


def test_brief_dip_below_release_does_not_end():
    eng = AlertEngine(cfg(update_interval_s=100.0), threshold=5.0)
    ev = run(eng, ramp(0.0, 1.05, 6.0) + ramp(1.1, 1.6, 3.0) + ramp(1.6, 3.0, 6.0) + ramp(3.0, 3.5, 3.0))
    assert phases(ev) == [AlertPhase.NEW]


def test_cooldown_blocks_new_alert_on_same_track_only():
    eng = AlertEngine(cfg(cooldown_s=5.0, update_interval_s=100.0), threshold=5.0)
    ev = run(eng, ramp(0.0, 1.05, 6.0) + ramp(1.1, 2.15, 1.0))
    assert phases(ev) == [AlertPhase.NEW, AlertPhase.END]
    end_t = ev[1].t
    # high again during the cooldown: nothing for this track ...
    assert run(eng, ramp(2.2, end_t + 5.0 - 0.01, 6.0)) == []
    # ... but another track may alert meanwhile
    other = run(eng, ramp(2.2, 3.25, 6.0), track=2)
    assert phases(other) == [AlertPhase.NEW]
    # after the cooldown, the minimum duration counts afresh
    later = run(eng, ramp(end_t + 5.0, end_t + 6.05, 6.0))
    assert phases(later) == [AlertPhase.NEW]
    assert later[0].started_t == pytest.approx(end_t + 5.0, abs=0.051)
    assert later[0].alert_id != ev[0].alert_id


def test_ema_smooths_a_single_spike():
    eng = AlertEngine(cfg(ema_alpha=0.3, min_duration_s=0.0), threshold=5.0)
    assert run(eng, ramp(0.0, 2.0, 2.0) + [(2.0, 9.0)] + ramp(2.1, 3.0, 2.0)) == []
    eng2 = AlertEngine(cfg(ema_alpha=1.0, min_duration_s=0.0), threshold=5.0)
    assert phases(run(eng2, [(2.0, 9.0)])) == [AlertPhase.NEW]


def test_end_is_emitted_when_track_is_removed():
    eng = AlertEngine(cfg(), threshold=5.0)
    new = run(eng, ramp(0.0, 1.05, 6.0))
    removed = TrackEvent(TrackEventKind.REMOVED, "cam1", 1, 20)
    ev = eng.update(Scores("cam1", 20, 2.0, [], [], np.zeros((0, 2)), [], (removed,)))
    assert phases(ev) == [AlertPhase.END] and ev[0].reason == REASON_REMOVED
    assert ev[0].alert_id == new[0].alert_id and ev[0].frame_index == 20
    assert eng.open_alerts == 0
    # the track's state is gone: a reused id starts from scratch (no cooldown carried over)
    assert phases(run(eng, ramp(2.1, 3.15, 6.0))) == [AlertPhase.NEW]


def test_finish_ends_every_open_alert():
    eng = AlertEngine(cfg(), threshold=5.0)
    run(eng, ramp(0.0, 1.05, 6.0), track=1)
    run(eng, ramp(0.0, 1.05, 6.0), track=2, cam="cam2")
    run(eng, ramp(0.0, 0.5, 6.0), track=3)  # pending, not open: no end for it
    ev = eng.finish(10.0, camera_id="cam2")
    assert [(e.event, e.camera_id, e.track_id) for e in ev] == [(AlertPhase.END, "cam2", 2)]
    ev = eng.finish(11.0)
    assert [(e.event, e.track_id, e.t, e.reason) for e in ev] == [(AlertPhase.END, 1, 11.0, REASON_FINISHED)]
    assert eng.finish(12.0) == [] and eng.open_alerts == 0


def test_every_new_gets_exactly_one_end():
    rng = np.random.default_rng(3)
    eng = AlertEngine(cfg(ema_alpha=0.5, min_duration_s=0.3, cooldown_s=1.0), threshold=5.0)
    events = []
    for k in range(400):
        t = k / FPS
        for tid in range(4):
            events += eng.update(scores(t, float(rng.normal(5.0, 2.0)), track=tid))
        if k == 200:
            events += eng.update(Scores("cam1", k, t, [], [], np.zeros((0, 2)), [],
                                        (TrackEvent(TrackEventKind.REMOVED, "cam1", 0, k),)))
    events += eng.finish(400 / FPS)
    by_id: dict[str, list] = {}
    for e in events:
        by_id.setdefault(e.alert_id, []).append(e.event)
    assert len(by_id) >= 4
    for seq in by_id.values():
        assert seq[0] == AlertPhase.NEW and seq[-1] == AlertPhase.END
        assert seq.count(AlertPhase.NEW) == 1 and seq.count(AlertPhase.END) == 1


def test_non_finite_scores_are_ignored():
    eng = AlertEngine(cfg(min_duration_s=0.0), threshold=5.0)
    assert run(eng, [(0.0, float("nan")), (0.1, float("inf"))]) == []
    assert eng.skipped_scores == 2


def test_negative_threshold_release_lies_below_it():
    eng = AlertEngine(cfg(update_interval_s=100.0), threshold=-2.0)  # release -2.2
    assert eng.release == pytest.approx(-2.2)
    ev = run(eng, ramp(0.0, 1.05, -1.0) + ramp(1.1, 3.0, -2.1))
    assert phases(ev) == [AlertPhase.NEW]
    assert phases(run(eng, ramp(3.0, 4.05, -2.3))) == [AlertPhase.END]


def test_threshold_must_be_finite():
    with pytest.raises(ValueError, match="threshold"):
        AlertEngine(cfg(), threshold=None)
    with pytest.raises(ValueError, match="threshold"):
        AlertEngine(cfg(), threshold=float("nan"))


# ---- zones -----------------------------------------------------------------------------------

SQUARE = [(0, 0), (200, 0), (200, 200), (0, 200)]


def test_zone_point_in_polygon_concave():
    # a U shape: the notch (80..120, 50..200) is outside
    u = Zone("u", [(0, 0), (200, 0), (200, 200), (120, 200), (120, 50), (80, 50), (80, 200), (0, 200)])
    pts = np.array([[40, 100], [100, 100], [160, 100], [100, 20], [250, 100], [np.nan, 10]])
    assert u.contains(pts).tolist() == [True, False, True, True, False, False]


def test_zone_validation_errors_name_the_zone():
    with pytest.raises(ValueError, match="'door'.*at least 3"):
        Zone("door", [(0, 0), (1, 1)])
    with pytest.raises(ValueError, match="'door'.*non-finite"):
        Zone("door", [(0, 0), (1, 1), (np.inf, 0)])
    with pytest.raises(ValueError, match="not a zone"):
        ZoneMap({"cam1": [42]})


def test_zone_map_first_match_and_unrestricted_cameras():
    zm = ZoneMap({"cam1": [ZoneConfig(name="a", polygon=SQUARE),
                           {"name": "b", "polygon": [(100, 0), (300, 0), (300, 200), (100, 200)]}]})
    allowed, names = zm.locate("cam1", np.array([[50, 50], [150, 50], [250, 50], [400, 50]]))
    assert allowed.tolist() == [True, True, True, False]
    assert names == ["a", "a", "b", None]
    allowed, names = zm.locate("cam9", np.array([[5000, 5000]]))
    assert allowed.tolist() == [True] and names == [None]
    assert zm.restricted("cam1") and not zm.restricted("cam9")


def test_alert_fires_only_inside_a_zone_and_reports_it():
    zones = {"cam1": [ZoneConfig(name="aisle-3", polygon=SQUARE)]}
    eng = AlertEngine(cfg(update_interval_s=100.0), threshold=5.0, zones=zones)
    assert run(eng, ramp(0.0, 3.0, 9.0), anchor=(500.0, 100.0)) == []  # outside: never fires
    ev = run(eng, ramp(3.0, 4.05, 9.0), anchor=(100.0, 100.0))
    assert phases(ev) == [AlertPhase.NEW] and ev[0].zone == "aisle-3"
    assert ev[0].started_t == pytest.approx(3.0)
    # leaving the zone ends the alert after end_after_s even while the score stays high
    ev = run(eng, ramp(4.1, 5.15, 9.0), anchor=(500.0, 100.0))
    assert phases(ev) == [AlertPhase.END] and ev[0].reason == REASON_LEFT_ZONE and ev[0].zone == "aisle-3"


def test_camera_without_zones_alerts_anywhere():
    zones = {"cam1": [ZoneConfig(name="aisle-3", polygon=SQUARE)]}
    eng = AlertEngine(cfg(), threshold=5.0, zones=zones)
    ev = run(eng, ramp(0.0, 1.05, 9.0), cam="cam2", anchor=(5000.0, 5000.0))
    assert phases(ev) == [AlertPhase.NEW] and ev[0].zone is None


# ---- ids ----------------------------------------------------------------------------------------

def _ids(engine):
    series = ramp(0.0, 1.05, 6.0) + ramp(1.1, 2.2, 1.0) + ramp(8.0, 9.05, 6.0)
    ev = run(engine, series, track=1) + run(engine, series, track=2, cam="cam2") + engine.finish(20.0)
    return [e.alert_id for e in ev if e.event == AlertPhase.NEW]


def test_deterministic_ids_reproduce_and_depend_on_key():
    a = _ids(AlertEngine(cfg(cooldown_s=1.0), 5.0, id_key="store-1/edge-1/replay"))
    b = _ids(AlertEngine(cfg(cooldown_s=1.0), 5.0, id_key="store-1/edge-1/replay"))
    c = _ids(AlertEngine(cfg(cooldown_s=1.0), 5.0, id_key=b"another key"))
    assert len(a) == 4 and len(set(a)) == 4
    assert a == b
    assert not set(a) & set(c)
    for i in a:
        uuid.UUID(i)


def test_random_ids_by_default():
    a = _ids(AlertEngine(cfg(cooldown_s=1.0), 5.0))
    b = _ids(AlertEngine(cfg(cooldown_s=1.0), 5.0))
    assert len(set(a)) == 4 and not set(a) & set(b)
    assert all(uuid.UUID(i).version == 4 for i in a)


def test_track_silent_too_long_is_forgotten_and_its_alert_ended():
    from edge.alerting.engine import REASON_LOST

    eng = AlertEngine(cfg(lost_after_s=5.0, update_interval_s=100.0), threshold=5.0)
    new = run(eng, ramp(0.0, 1.05, 6.0), track=1)
    assert phases(new) == [AlertPhase.NEW]
    # another track of the same camera keeps the engine running; track 1 sends nothing
    assert run(eng, ramp(1.1, 6.0, 1.0), track=2) == []
    ev = run(eng, ramp(6.1, 7.0, 1.0), track=2)
    assert [(e.event, e.track_id, e.reason) for e in ev] == [(AlertPhase.END, 1, REASON_LOST)]
    assert ev[0].alert_id == new[0].alert_id and eng.open_alerts == 0


def test_track_back_after_long_silence_starts_afresh():
    from edge.alerting.engine import REASON_LOST

    eng = AlertEngine(cfg(lost_after_s=5.0, cooldown_s=100.0, update_interval_s=100.0), threshold=5.0)
    run(eng, ramp(0.0, 1.05, 6.0))
    ev = run(eng, ramp(20.0, 21.05, 6.0))  # no other track ran the sweep: noticed on its return
    assert phases(ev) == [AlertPhase.END, AlertPhase.NEW]  # no cooldown carried over: state was forgotten
    assert ev[0].reason == REASON_LOST


def test_warmup_windows_cannot_fire_but_feed_the_smoothing():
    entering = ramp(0.0, 2.0, 9.0) + ramp(2.0, 6.0, 1.0)  # 20 high windows on entering, then calm
    assert phases(run(AlertEngine(cfg(), threshold=5.0), entering))[:1] == [AlertPhase.NEW]
    assert run(AlertEngine(cfg(warmup_windows=20), threshold=5.0), entering) == []
    # high throughout: the alert comes once the warm-up is over and min_duration has passed after it
    ev = run(AlertEngine(cfg(warmup_windows=20), threshold=5.0), ramp(0.0, 6.0, 9.0))
    assert phases(ev)[:1] == [AlertPhase.NEW] and ev[0].started_t == 2.0 and ev[0].t == 3.0
    # the smoothed score runs through the warm-up: a score that starts high and decays stays smoothed
    eng = AlertEngine(cfg(ema_alpha=0.1, warmup_windows=5), threshold=5.0)
    ev = run(eng, ramp(0.0, 0.5, 20.0) + ramp(0.5, 3.0, 0.0))
    assert phases(ev)[:1] == [AlertPhase.NEW] and ev[0].started_t == 0.5


def test_warmup_restarts_for_a_track_back_after_a_long_silence():
    eng = AlertEngine(cfg(lost_after_s=3.0, warmup_windows=10), threshold=5.0)
    assert run(eng, ramp(0.0, 0.5, 1.0)) == []
    assert run(eng, ramp(10.0, 11.9, 9.0)) == []  # back as a new track: 10 warm-up windows, then 0.9 s above
    assert phases(run(eng, [(12.0, 9.0)])) == [AlertPhase.NEW]
