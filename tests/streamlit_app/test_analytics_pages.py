"""The analytics and heatmap pages on rollups of hand-made data, signed in (AppTest, real
PostgreSQL): the figures they show, each account's scope, and ROI assumptions for admins."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from streamlit.testing.v1 import AppTest

from shrinkwatch.settings import Settings
from tests.factories import incident
from tests.streamlit_app.conftest import texts
from tests.support import record_review
from warehouse.db import connect
from warehouse.incidents import upsert_incidents
from warehouse.occupancy import HeatRow, write_occupancy
from warehouse.rollups import run_rollups

Open = Callable[..., AppTest]
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)


def history(settings: Settings) -> None:
    """Leeds: three incidents, two confirmed, one rejected; Boston: one. A heatmap hour each."""
    leeds = [
        incident(1, "closed", incident_id=f"l-{i}", started_at=NOW + timedelta(minutes=i)) for i in range(3)
    ]
    boston = [
        incident(1, "closed", incident_id="b-1", store_id="store-002", camera_id="cam-2", started_at=NOW)
    ]
    with connect(settings.database_dsn) as conn:
        conn.execute(
            """UPDATE stores SET economics = '{"currency": "GBP", "avg_loss_per_incident": 100,
                   "recovery_rate": 0.5, "monthly_cost": 50}' WHERE id = 'store-001'"""
        )
        conn.commit()
        upsert_incidents(conn, [*leeds, *boston])
        record_review(conn, "l-0", confirmed=True)
        record_review(conn, "l-1", confirmed=True)
        record_review(conn, "l-2", confirmed=False)
        conn.commit()
        write_occupancy(
            conn,
            [
                HeatRow("cam-1", NOW, 64, 36, 900, [5, 70], [600.0, 300.0], [400.0, 0.0]),
                HeatRow("cam-2", NOW, 64, 36, 900, [9], [50.0], [0.0]),
            ],
        )
    run_rollups(settings.database_dsn)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_analytics_shows_the_stores_figures(open_page: Open, two_stores: Settings) -> None:
    history(two_stores)
    at = open_page(
        two_stores, "analytics/overview.py", user="mo", role="store_manager", stores=("store-001",)
    )
    shown = metrics(at)
    assert shown["Incidents"] == "3"  # Leeds only: Boston's is not in this account's scope
    assert shown["Confirmation rate"] == "67%"
    assert shown["Prevented loss (GBP)"] == "100"  # 2 confirmed x 100 x 0.5
    assert shown["Net benefit (GBP)"] == "50"
    assert shown["ROI (GBP)"] == "100%"
    assert shown["Payback (GBP)"] == "0.50 months"
    quality: Any = at.dataframe[0].value
    assert quality.set_index("signal").loc["dwell high value", "confirmed"] == 2
    assert "ROI assumptions (admins)" not in [e.label for e in at.expander]


def test_admins_edit_roi_assumptions_and_bad_values_change_nothing(
    open_page: Open, two_stores: Settings
) -> None:
    history(two_stores)
    at = open_page(two_stores, "analytics/overview.py", user="root", role="admin")
    assert metrics(at)["Incidents"] == "4"
    assert "ROI assumptions (admins)" in [e.label for e in at.expander]
    save = next(b for b in at.button if b.label == "Save assumptions")
    save.click().run()
    assert "Saved." in texts(at)


def test_heatmap_of_a_camera_in_scope_only(open_page: Open, two_stores: Settings) -> None:
    history(two_stores)
    at = open_page(
        two_stores, "analytics/heatmaps.py", user="mo", role="store_manager", stores=("store-001",)
    )
    assert at.title[0].value == "Heatmaps"
    assert at.multiselect[0].options == ["Leeds · Aisle"]
    assert len(at.get("plotly_chart")) == 1
    assert "0.2 person-hours over 1 days" in texts(at)  # 900 person-seconds
    at.radio[0].set_value("Standing still (dwell)").run()
    assert "0.1 person-hours" in texts(at)  # 400 s still
