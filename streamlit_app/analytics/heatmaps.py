"""Heatmaps: where people are in each camera's view, over the camera frame, with its zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from streamlit_app import auth, data, text
from streamlit_app.charts import camera_view
from warehouse.analytics import camera_heatmap
from warehouse.scope import QueryError
from warehouse.site_tables import load_zones

MEASURES = {
    "All time in view": ("person_s", "person-seconds"),
    "Standing still (dwell)": ("dwell_s", "seconds still"),
    "Passing through": ("passing", "seconds moving"),
}
signed = auth.page()
scope = signed.scope
conn = data.connection()

st.title("Heatmaps")
st.caption(
    "Where people stand in each camera's view: time spent per spot, over the camera's frame and zones. "
    "Pick cameras of several stores to compare them side by side."
)
stores = data.stores(scope)
cameras = data.cameras(scope)
if cameras.empty:
    st.info("No cameras to show: apply a site file (`shrinkwatch sites apply`), or ask an admin for access.")
    st.stop()
store_names = dict(zip(stores["id"], stores["name"], strict=True))
labels = {c.id: f"{store_names.get(c.store_id, c.store_id)} · {c.name or c.id}" for c in cameras.itertuples()}
store_of = dict(zip(cameras["id"], cameras["store_id"], strict=True))

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
first_day, last_day = days
column, unit = MEASURES[measure]

zones = load_zones(conn, chosen)
frames = data.live_frames(set(chosen))
panels = st.columns(min(2, len(chosen)))
for index, camera_id in enumerate(chosen):
    with panels[index % len(panels)]:
        st.markdown(f"**{text.markdown(labels[camera_id])}**")
        try:
            heat = camera_heatmap(conn, scope, camera_id, first_day, last_day, hours=(start, end))
        except QueryError as exc:
            st.error(text.markdown(exc))
            continue
        if heat is None:
            st.info("No one seen here in this range (or the rollup has not run since).")
            st.plotly_chart(
                camera_view(frames.get(camera_id), zones.get(camera_id, [])), key=f"empty-{camera_id}"
            )
            continue
        if column == "passing":
            grid = [
                [max(0.0, p - d) for p, d in zip(prow, drow, strict=True)]
                for prow, drow in zip(heat.person_s, heat.dwell_s, strict=True)
            ]
        else:
            grid = heat.person_s if column == "person_s" else heat.dwell_s
        figure = camera_view(frames.get(camera_id), zones.get(camera_id, []), heat=grid, heat_label=unit)
        st.plotly_chart(figure, config={"displayModeBar": False}, key=f"heat-{camera_id}")
        total_h = sum(map(sum, grid)) / 3600
        span = "hours" if (start, end) != (0, 24) else "days"
        st.caption(f"{total_h:,.1f} person-hours over {heat.days} {span} with people seen")
