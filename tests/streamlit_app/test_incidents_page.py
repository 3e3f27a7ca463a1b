"""The incident list, the review page and the live page, signed in (AppTest, real PostgreSQL):
what each account may see, filters and paging, a verdict in one click, triage."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import cv2
import numpy as np
from streamlit.testing.v1 import AppTest

from shrinkwatch.contracts import Incident
from shrinkwatch.settings import Settings
from tests.factories import incident
from tests.streamlit_app.conftest import sign_in, texts
from warehouse.accounts import disable_user
from warehouse.db import connect
from warehouse.incidents import upsert_incidents
from warehouse.sessions import end_session

Open = Callable[..., AppTest]
NOW = datetime.now(UTC).replace(microsecond=0)


def recent(n: int, **changes: Any) -> Incident:
    """Incident number n, n minutes ago (the list shows the last seven days by default)."""
    values: dict[str, Any] = {"incident_id": f"inc-{n:03d}", "started_at": NOW - timedelta(minutes=n)}
    return incident(1, "closed", **(values | changes))


def write(settings: Settings, *incidents: Incident) -> None:
    with connect(settings.database_dsn) as conn:
        upsert_incidents(conn, list(incidents))


def verdicts(settings: Settings) -> dict[str, tuple[Any, Any]]:
    with connect(settings.database_dsn) as conn:
        rows = conn.execute("SELECT incident_id, user_confirmed, reviewed_by FROM incidents").fetchall()
    return {r["incident_id"]: (r["user_confirmed"], r["reviewed_by"]) for r in rows}


def listed(at: AppTest) -> list[str]:
    table: Any = at.dataframe[0].value
    return list(table["camera"])


def test_without_a_session_nothing_but_the_way_to_sign_in(open_page: Open, two_stores: Settings) -> None:
    write(two_stores, recent(1))
    token = sign_in(two_stores)
    with connect(two_stores.database_dsn) as conn:
        end_session(conn, token)
    at = open_page(two_stores, token=token)
    assert at.title[0].value == "Signed out"
    assert not at.dataframe and not at.metric

    token = sign_in(two_stores, "bea")
    with connect(two_stores.database_dsn) as conn:
        disable_user(conn, "bea")
    assert open_page(two_stores, token=token).title[0].value == "Signed out"


def test_the_list_pages_through_what_matches(open_page: Open, two_stores: Settings) -> None:
    write(two_stores, *(recent(n) for n in range(1, 121)))
    write(two_stores, recent(200, store_id="store-002", camera_id="cam-2", risk_level="high"))
    at = open_page(two_stores)
    assert at.title[0].value == "Incidents"
    assert [m.value for m in at.metric][:2] == ["121", "121"]
    assert len(at.dataframe[0].value) == 50
    older = next(b for b in at.button if b.label == "Older")
    older.click().run()
    assert "Page 2 · 50 per page" in [c.value for c in at.caption]
    first_of_page_2: Any = at.dataframe[0].value
    assert len(first_of_page_2) == 50
    # A filter: high risk only.
    next(m for m in at.multiselect if m.label == "Risk").select("high").run()
    assert [m.value for m in at.metric][0] == "1"
    assert listed(at) == ["cam-2"]


def test_a_store_manager_sees_only_their_stores(open_page: Open, two_stores: Settings) -> None:
    write(two_stores, recent(1), recent(2, store_id="store-002", camera_id="cam-2", incident_id="boston-1"))
    at = open_page(two_stores, user="mo", role="store_manager", stores=("store-001",))
    assert listed(at) == ["cam-1"]
    assert at.multiselect[0].options == ["Leeds (store-001)"]
    # Not even by its address: another store's incident is "no such incident".
    other = open_page(
        two_stores,
        "review/incident.py",
        user="mo",
        role="store_manager",
        stores=("store-001",),
        query={"id": "boston-1"},
    )
    assert "No such incident in your stores" in texts(other)
    assert verdicts(two_stores)["boston-1"] == (None, None)


def test_confirm_records_the_verdict_and_moves_on(open_page: Open, two_stores: Settings) -> None:
    write(two_stores, recent(1, risk_level="high", risk_score=0.9), recent(2))
    at = open_page(two_stores, "review/incident.py")
    assert at.title[0].value == "Loitering high value"  # the newest awaiting a verdict
    assert at.query_params["id"] == "inc-001"
    at.text_input[0].input("took razors").run()
    next(b for b in at.button if b.label == "Confirm").click().run()
    assert verdicts(two_stores)["inc-001"] == (True, "ana")
    assert at.query_params["id"] == "inc-002"
    next(b for b in at.button if b.label == "Reject").click().run()
    assert verdicts(two_stores)["inc-002"] == (False, "ana")
    assert "Nothing left to review" in texts(at)
    with connect(two_stores.database_dsn) as conn:
        note = conn.execute("SELECT review_note FROM incidents WHERE incident_id = 'inc-001'").fetchone()
        seen = conn.execute(
            "SELECT incident_id FROM incident_seen WHERE username = 'ana' ORDER BY 1"
        ).fetchall()
    assert note == {"review_note": "took razors"}
    assert [r["incident_id"] for r in seen] == ["inc-001", "inc-002"]


def test_mark_a_page_seen(open_page: Open, two_stores: Settings) -> None:
    write(two_stores, recent(1), recent(2), recent(3, store_id="store-002", camera_id="cam-2"))
    at = open_page(two_stores, user="mo", role="store_manager", stores=("store-001",))
    assert [m.value for m in at.metric][3] == "2"
    next(b for b in at.button if b.label.startswith("Mark")).click().run()
    assert [m.value for m in at.metric][3] == "0"
    with connect(two_stores.database_dsn) as conn:
        seen = conn.execute("SELECT incident_id FROM incident_seen ORDER BY 1").fetchall()
    assert [r["incident_id"] for r in seen] == ["inc-001", "inc-002"]  # not the Boston one


def test_evidence_inside_the_folder_only(open_page: Open, two_stores: Settings) -> None:
    reference = "cam-1/inc-001.jpg"
    path = two_stores.evidence_dir() / reference
    path.parent.mkdir(parents=True)
    cv2.imwrite(str(path), np.full((48, 64, 3), 120, np.uint8))
    write(two_stores, recent(1, snapshot=reference), recent(2, snapshot="../../etc/passwd"))
    at = open_page(two_stores, "review/incident.py", query={"id": "inc-001"})
    assert len(at.get("plotly_chart")) == 2  # the snapshot with its zones, and the signals
    at = open_page(two_stores, "review/incident.py", query={"id": "inc-002"})
    assert "The snapshot is not saved yet" in texts(at)
    assert len(at.get("plotly_chart")) == 1


def test_live_shows_only_the_cameras_and_incidents_in_scope(open_page: Open, two_stores: Settings) -> None:
    two_stores.live_dir().mkdir(parents=True)
    for camera in ("cam-1", "cam-2"):
        cv2.imwrite(str(two_stores.live_dir() / f"{camera}.jpg"), np.zeros((48, 64, 3), np.uint8))
    write(
        two_stores,
        recent(1, risk_level="high"),
        recent(2, store_id="store-002", camera_id="cam-2", risk_level="high", incident_id="boston-1"),
    )
    with connect(two_stores.database_dsn) as conn:  # what the health flow keeps
        conn.execute(
            """INSERT INTO camera_health (camera_id, store_id, status, status_since, reported_at, fps_in,
                   fps_analysed, error) VALUES
               ('cam-1', 'store-001', 'offline', now(), now(), 0, 0, 'connection refused'),
               ('cam-2', 'store-002', 'online', now(), now(), 10, 5, NULL)"""
        )
        conn.commit()
    at = open_page(two_stores, "monitor/live.py", user="mo", role="store_manager", stores=("store-001",))
    assert at.title[0].value == "Live"
    assert len(at.get("image")) == 1
    assert list(at.dataframe[0].value["camera"]) == ["cam-1"]
    assert ":red-badge[offline]" in texts(at) and "Offline since" in texts(at)
    assert "connection refused" not in texts(at)  # why, in the reader's words: for admins
    assert "cam-2" not in texts(at)
