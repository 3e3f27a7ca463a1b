"""Heatmaps: where people are in each camera's view, over the camera frame, with its zones.

The controls and the heatmaps they choose are one fragment: a change reruns them, not the
whole page.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import streamlit as st

from shrinkwatch.site_file import Zone
from streamlit_app import auth, data, opening, text
from streamlit_app.charts import camera_view
from warehouse.analytics import camera_heatmap
from warehouse.scope import QueryError
from warehouse.site_tables import load_zones

MEASURES = {
    "All time in view": ("person_s", "person-seconds"),
    "Standing still (dwell)": ("dwell_s", "seconds still"),
    "Passing through": ("passing", "seconds moving"),
}
NO_CAMERAS = "No cameras to show: apply a site file (`shrinkwatch sites apply`), or ask an admin for access."


@auth.fragment
def heatmaps(page: opening.Opening, cameras: pd.DataFrame) -> None:
    """The controls (cameras, days, hours, measure) and a heatmap per camera chosen."""
    labels = {
        c.id: f"{page.store_names.get(c.store_id, c.store_id)} · {c.name or c.id}"
        for c in cameras.itertuples()
    }
    controls = st.columns([4, 2, 2, 2])
    chosen = controls[0].multiselect(
        "Cameras",
        list(cameras["id"]),
        default=list(cameras["id"])[:2],
        format_func=lambda c: labels[c],
        max_selections=4,
    )
    today = datetime.now(UTC).date()
    days = controls[1].date_input(
        "Days (store time)", (today - timedelta(days=6), today), max_value=today + timedelta(1)
    )
    start, end = controls[2].slider(
        "Hours (store time)", 0, 24, (0, 24), help="Narrower than the whole day: the last 120 days only"
    )
    measure = controls[3].radio("Show", list(MEASURES), index=0)
    if not chosen:
        st.info("Pick one or more cameras.")
        st.stop()
    if not isinstance(days, tuple) or len(days) != 2:
        st.info("Pick the last day of the range too.")
        st.stop()

    zones = load_zones(page.conn, chosen)
    frames = data.live_frames(set(chosen), viewer=page.signed.user.username)
    panels = st.columns(min(2, len(chosen)))
    for index, camera_id in enumerate(chosen):
        with panels[index % len(panels)]:
            st.markdown(f"**{text.markdown(labels[camera_id])}**")
            panel(
                page, camera_id, frames.get(camera_id), zones.get(camera_id, []), days, (start, end), measure
            )


def panel(
    page: opening.Opening,
    camera_id: str,
    frame: Path | None,
    zones: list[Zone],
    days: tuple[date, date],
    hours: tuple[int, int],
    measure: str,
) -> None:
    """One camera's heatmap over its frame and zones, and how many person-hours it holds."""
    column, unit = MEASURES[measure]
    try:
        heat = camera_heatmap(page.conn, page.scope, camera_id, days[0], days[1], hours=hours)
    except QueryError as exc:
        st.error(text.markdown(exc))
        return
    if heat is None:
        st.info("No one seen here in this range (or the rollup has not run since).")
        st.plotly_chart(camera_view(frame, zones), key=f"empty-{camera_id}")
        return
    if column == "passing":
        grid = [
            [max(0.0, p - d) for p, d in zip(prow, drow, strict=True)]
            for prow, drow in zip(heat.person_s, heat.dwell_s, strict=True)
        ]
    else:
        grid = heat.person_s if column == "person_s" else heat.dwell_s
    figure = camera_view(frame, zones, heat=grid, heat_label=unit)
    st.plotly_chart(figure, config={"displayModeBar": False}, key=f"heat-{camera_id}")
    total_h = sum(map(sum, grid)) / 3600
    span = "hours" if hours != (0, 24) else "days"
    st.caption(f"{total_h:,.1f} person-hours over {heat.days} {span} with people seen")


def heatmaps_page() -> None:
    page = opening.start(
        "Heatmaps",
        "Where people stand in each camera's view: time spent per spot, over the camera's frame and zones. "
        "Pick cameras of several stores to compare them side by side.",
        no_stores=None,
    )
    cameras = data.cameras(page.scope)
    if cameras.empty:
        st.info(NO_CAMERAS)
        st.stop()
    heatmaps(page, cameras)


heatmaps_page()
