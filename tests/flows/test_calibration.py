"""Feedback calibration moves weights the right way, versions them, and flows use them."""

from __future__ import annotations

from typing import Any

import pytest

from flows.behaviour.engine import BehaviourEngine
from flows.behaviour.signals import BUILT_IN_WEIGHTS, ramp
from flows.behaviour.zones import ZoneArea
from flows.calibration import METHOD, calibrate, posterior_weight
from flows.catalog import SiteCatalog
from shrinkwatch.contracts import Signal
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from tests.factories import SITE_YAML, incident, walk
from tests.support import cli_env, record_review, run_cli, stored_incidents
from warehouse.db import connect
from warehouse.incidents import upsert_incidents
from warehouse.site_tables import apply_site_config
from warehouse.weights import latest_weights, weights_history

DWELL = BUILT_IN_WEIGHTS["dwell_high_value_s"]
BAG = BUILT_IN_WEIGHTS["bag_present"]


def test_posterior_moves_with_verdicts() -> None:
    assert posterior_weight(0.5, 0, 0, 10) == 0.5
    assert posterior_weight(0.5, 5, 0, 10) > 0.5 > posterior_weight(0.5, 0, 5, 10)
    assert posterior_weight(0.5, 5, 0, 10) == round(10 / 15, 4)
    # More verdicts move it further; a stronger prior moves it less.
    assert posterior_weight(0.5, 50, 0, 10) > posterior_weight(0.5, 5, 0, 10)
    assert posterior_weight(0.5, 5, 0, 100) < posterior_weight(0.5, 5, 0, 10)
    assert posterior_weight(0.9, 0, 1000, 10) == 0.01  # never out of the explanation


def reviewed(conn: Any, store: str, n: int, confirmed: bool, start: int, signals: list[Signal]) -> None:
    for i in range(start, start + n):
        upsert_incidents(conn, [incident(1, incident_id=f"inc-{store}-{i}", store_id=store, signals=signals)])
        assert record_review(conn, f"inc-{store}-{i}", confirmed=confirmed)
    conn.commit()


def test_confirmed_raise_rejected_lower_and_versions(settings: Settings) -> None:
    with_bag = [
        Signal(name="dwell_high_value_s", value=40.0, contribution=0.53),
        Signal(name="bag_present", value=5.0, contribution=0.1),
    ]
    dwell_only = [Signal(name="dwell_high_value_s", value=40.0, contribution=0.53)]
    with connect(settings.database_dsn) as conn:
        reviewed(conn, "store-a", 6, True, 0, with_bag)  # theft confirmed: dwell and bag up
        reviewed(conn, "store-b", 6, False, 0, dwell_only)  # false alarms: dwell down
        written = calibrate(conn, prior_strength=10, progress=lambda _m: None)
        assert {w.store_id: w.version for w in written} == {"store-a": 1, "store-b": 1}
        weights = latest_weights(conn)
        a, b = weights["store-a"], weights["store-b"]
        assert a.weights["dwell_high_value_s"] > DWELL and a.weights["bag_present"] > BAG
        assert b.weights["dwell_high_value_s"] < DWELL and b.weights["bag_present"] == BAG
        assert a.evidence["dwell_high_value_s"] == {"confirmed": 6, "rejected": 0}
        assert b.evidence["dwell_high_value_s"] == {"confirmed": 0, "rejected": 6}
        assert a.method == METHOD and a.prior_strength == 10 and a.reviews == 6
        assert set(a.weights) >= set(BUILT_IN_WEIGHTS)

        # Nothing new: no new version. A new verdict: a new version for that store only.
        assert calibrate(conn, prior_strength=10, progress=lambda _m: None) == []
        reviewed(conn, "store-b", 4, True, 100, dwell_only)
        assert [(w.store_id, w.version) for w in calibrate(conn, 10, lambda _m: None)] == [("store-b", 2)]
        history = weights_history(conn, "store-b")
        assert [h.version for h in history] == [2, 1]
        assert history[0].weights["dwell_high_value_s"] > history[1].weights["dwell_high_value_s"]
        assert history[0].evidence["dwell_high_value_s"] == {"confirmed": 4, "rejected": 6}

        # Verdicts withdrawn: back to the defaults, as a new version.
        conn.execute("UPDATE incidents SET user_confirmed = NULL WHERE store_id = 'store-a'")
        conn.commit()
        again = calibrate(conn, 10, lambda _m: None)
        assert [(w.store_id, w.version) for w in again] == [("store-a", 2)]
        assert again[0].weights["dwell_high_value_s"] == DWELL


def test_flows_score_with_the_weights_in_force(settings: Settings) -> None:
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(SITE_YAML))
        reviewed(
            conn, "store-001", 8, False, 0, [Signal(name="dwell_high_value_s", value=40.0, contribution=0.5)]
        )
        calibrate(conn, 10, lambda _m: None)
        in_force = latest_weights(conn)["store-001"]
    catalog = SiteCatalog.for_settings(settings)
    catalog.load()
    store = catalog.store("store-001")
    assert store.weights.version == 1
    assert store.weights.of("dwell_high_value_s") == in_force.weights["dwell_high_value_s"] < DWELL

    shelf = ZoneArea("z-shelf", "high_value", ((0.2, 0.5), (0.4, 0.5), (0.4, 1.0), (0.2, 1.0)))
    engine = BehaviourEngine("cam-1", [shelf], store)
    state, out = None, []
    for f in walk("cam-1", 7, [(0, (0.3, 0.8)), (store.thresholds.loiter_s * 2, (0.3, 0.8))]):
        state, incidents = engine.step(state, f)
        out.extend(incidents)
    dwell = next(s for s in out[-1].signals if s.name == "dwell_high_value_s")
    strength = ramp(dwell.value, store.thresholds.loiter_s)
    assert strength > 0.5
    assert dwell.contribution == pytest.approx(in_force.weights["dwell_high_value_s"] * strength, abs=1e-3)


def test_incident_rows_record_the_weights_version(settings: Settings) -> None:
    with connect(settings.database_dsn) as conn:
        upsert_incidents(conn, [(incident(1), 3)])
        upsert_incidents(conn, [(incident(2), 4), (incident(1), 3)])
        assert stored_incidents(conn)[0]["weights_version"] == 4


def test_cli_calibrate(settings: Settings, tmp_path: Any) -> None:
    with connect(settings.database_dsn) as conn:
        reviewed(conn, "store-c", 3, True, 0, [Signal(name="skipped_checkout", value=1.0, contribution=0.55)])
    result = run_cli(["flows", "calibrate"], env=cli_env(settings, tmp_path))
    assert result.returncode == 0, result.stderr
    # (10 x 0.55 + 3) / (10 + 3) = 0.654
    assert "store store-c: weights version 1 from 3 verdicts (skipped_checkout 0.55->0.65)" in result.stderr
    again = run_cli(["flows", "calibrate"], env=cli_env(settings, tmp_path))
    assert "no store's weights changed" in again.stderr
    assert "--schedule" in run_cli(["flows", "calibrate", "--help"]).stdout
