"""Hostile names in the site file (a store named like a Markdown image, a camera like a link,
a zone like HTML, Streamlit directives and math) reach every page as text: the Markdown and
chart labels the pages write hold them escaped (streamlit_app.text), the plain-text widgets
hold them as typed (AppTest, real PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import cv2
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from shrinkwatch.contracts import Signal
from shrinkwatch.settings import Settings
from shrinkwatch.site_file import parse_site_config
from streamlit_app import text
from tests.factories import incident
from tests.support import record_review
from warehouse.db import connect
from warehouse.incidents import upsert_incidents
from warehouse.occupancy import HeatRow, write_occupancy
from warehouse.rollups import run_rollups
from warehouse.site_tables import apply_site_config

Open = Callable[..., AppTest]
STORE = "![x](http://evil.example/a.png)"
CAMERA = "[click](http://evil.example) :red[boom]"
ZONE = "<img src=x onerror=alert(1)> $x^2$"
OTHER_STORE = ":material/home: www.evil.example"
SITE = f"""
stores:
  - {{id: store-001, name: {json.dumps(STORE)}, timezone: Europe/London}}
  - {{id: store-002, name: {json.dumps(OTHER_STORE)}, timezone: America/New_York}}
cameras:
  - id: cam-1
    store_id: store-001
    name: {json.dumps(CAMERA)}
    stream_url: /dev/null
    zones:
      - {{id: z-1, name: {json.dumps(ZONE)}, kind: high_value,
         polygon: [[0.0, 0.5], [0.4, 0.5], [0.4, 1.0], [0.0, 1.0]]}}
  - {{id: cam-2, store_id: store-002, name: Door, stream_url: /dev/null}}
"""
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


@pytest.fixture
def hostile(settings: Settings) -> Settings:
    with connect(settings.database_dsn) as conn:
        apply_site_config(conn, parse_site_config(SITE))
    return settings


def markdown_values(at: AppTest) -> list[str]:
    """What the page wrote as Markdown, as written (not as shown)."""
    kinds = ("title", "markdown", "caption", "info", "warning", "error", "success", "subheader", "toast")
    return [str(e.value) for kind in kinds for e in at.get(kind)]


def chart_labels(at: AppTest) -> list[str]:
    """Every trace name and category label of the page's Plotly charts."""
    labels: list[str] = []
    for chart in at.get("plotly_chart"):
        figure: dict[str, Any] = json.loads(chart.proto.spec)
        for trace in figure["data"]:
            labels += [trace.get("name") or ""] + [str(v) for v in trace.get("y") or [] if isinstance(v, str)]
    return labels


def assert_no_markup(values: list[str]) -> None:
    """No raw link or image, HTML tag, directive or math delimiter in what the page wrote."""
    for value in values:
        for raw in ("](", "<img", ":red[", "$x", ":material/", "www.evil"):
            assert raw not in value, (raw, value)


def test_the_cameras_page(open_page: Open, hostile: Settings) -> None:
    at = open_page(hostile, "setup/cameras.py", user="root", role="admin")
    chooser = next(s for s in at.selectbox if s.label == "Camera")
    assert chooser.format_func("cam-1") == f"{STORE} · {CAMERA} (cam-1)"  # a plain-text widget: as typed
    assert text.chart(f"{ZONE} (high value)") in chart_labels(at)
    assert "&lt;img src=x onerror=alert(1)&gt; $x^2$ (high value)" in chart_labels(at)
    assert_no_markup(markdown_values(at))


def test_the_heatmaps_page(open_page: Open, hostile: Settings) -> None:
    with connect(hostile.database_dsn) as conn:
        write_occupancy(conn, [HeatRow("cam-1", NOW, 64, 36, 900, [5], [600.0], [400.0])])
    run_rollups(hostile.database_dsn)
    at = open_page(hostile, "analytics/heatmaps.py")
    heading = f"**{text.markdown(f'{STORE} · {CAMERA}')}**"
    assert heading in markdown_values(at)
    assert heading.startswith("**\\!\\[x\\]\\(http\\:\u2060\\/\\/evil\u2060\\.example")
    assert text.chart(f"{ZONE} (high value)") in chart_labels(at)
    assert_no_markup(markdown_values(at))


def test_the_review_page(open_page: Open, hostile: Settings) -> None:
    reference = "cam-1/inc-1.jpg"
    path = hostile.evidence_dir() / reference
    path.parent.mkdir(parents=True)
    cv2.imwrite(str(path), np.full((48, 64, 3), 120, np.uint8))
    signals = [Signal(name="<b>dwell</b>_s", value=12.0, contribution=0.4)]
    with connect(hostile.database_dsn) as conn:
        upsert_incidents(
            conn,
            [
                incident(
                    1,
                    incident_id="inc-1",
                    started_at=NOW,
                    snapshot=reference,
                    signals=signals,
                    zone_ids=["z-1"],
                )
            ],
        )
        record_review(conn, "inc-1", confirmed=True)
    at = open_page(hostile, "review/incident.py", query={"id": "inc-1"})
    [header] = [v for v in markdown_values(at) if "store time" in v]
    assert f" · {text.markdown(STORE)} · camera `cam-1` · " in header
    assert any(v.startswith("- Zones: z\\-1\n") for v in markdown_values(at))
    assert text.chart(f"{ZONE} (high value)") in chart_labels(at)  # the snapshot's zones
    assert "&lt;b&gt;dwell&lt;/b&gt;" in chart_labels(at)  # a signal's name
    assert_no_markup(markdown_values(at))


def test_the_live_page(open_page: Open, hostile: Settings) -> None:
    hostile.live_dir().mkdir(parents=True)
    cv2.imwrite(str(hostile.live_dir() / "cam-1.jpg"), np.zeros((48, 64, 3), np.uint8))
    problem = "![e](http://evil.example/e.png) cannot open /srv/videos/a.mp4"
    with connect(hostile.database_dsn) as conn:
        conn.execute(
            """INSERT INTO camera_health (camera_id, store_id, status, status_since, reported_at, fps_in,
                   fps_analysed, error) VALUES ('cam-1', 'store-001', 'offline', now(), now(), 0, 0, %s)""",
            (problem,),
        )
        conn.commit()
    at = open_page(hostile, "monitor/live.py", user="root", role="admin")
    heading = f"**{text.markdown(CAMERA)}** `cam-1` :red-badge[offline] · 0.0 of 0.0 fps"
    assert heading in markdown_values(at)
    [offline] = [v for v in markdown_values(at) if v.startswith("Offline since")]
    assert offline.endswith(f": {text.markdown(problem)}")  # admins see why
    # A new high-risk incident: a toast names its store and camera.
    with connect(hostile.database_dsn) as conn:
        upsert_incidents(conn, [incident(1, incident_id="new-1", started_at=NOW, risk_level="high")])
    at.run()
    [toast] = [t.value for t in at.toast]
    assert toast == f"High risk: loitering high value at {text.markdown(f'{STORE} (cam-1)')}"
    assert_no_markup(markdown_values(at))

    at = open_page(hostile, "monitor/live.py", user="mo", role="store_manager", stores=("store-001",))
    assert [v for v in markdown_values(at) if v.startswith("Offline since")][0].endswith(" UTC")
    assert not [v for v in markdown_values(at) if "srv" in v]  # what the reader says: admins only


def test_the_sidebar_shows_a_display_name_as_typed(open_page: Open, hostile: Settings) -> None:
    from warehouse.accounts import add_user
    from warehouse.sessions import start_session

    name = "[Ana](http://evil.example) ![i](http://evil.example/i.png)"
    with connect(hostile.database_dsn) as conn:
        add_user(
            conn, "ana2", "store_manager", password="correct-horse-9", stores=["store-001"], display_name=name
        )
        token = start_session(conn, "ana2", hours=1)
    at = open_page(hostile, token=token)
    [signed_in] = [v for v in markdown_values(at) if v.startswith("Signed in as")]
    assert f"**{text.markdown(name)}**" in signed_in
    assert_no_markup(markdown_values(at))
