"""Incidents: the filtered list, newest first, a page at a time; triage and CSV export."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from shrinkwatch.contracts import INCIDENT_TYPES
from shrinkwatch.wording import incident_label, verdict_word
from streamlit_app import auth, data, served, text
from warehouse.incidents import incident_count, incidents_page
from warehouse.scope import REVIEW_STATES, RISK_LEVELS, STATUSES, Cursor, IncidentFilter, QueryError
from warehouse.seen import mark_seen

PAGE_SIZE = 50
signed = auth.page()
scope = signed.scope

st.title("Incidents")
st.caption(
    "Everything the cameras flagged in your stores, newest first. Select rows to mark them seen "
    "or open one to review it; dates are each store's own calendar days."
)

stores = data.stores(scope)
if stores.empty:
    st.info("No stores to show: apply a site file (`shrinkwatch sites apply`), or ask an admin for access.")
    st.stop()
cameras = data.cameras(scope)
store_names = dict(zip(stores["id"], stores["name"], strict=True))
timezones = dict(zip(stores["id"], stores["timezone"], strict=True))


def label(values: dict[str, str]) -> Any:
    return lambda key: f"{values.get(key, key)} ({key})" if values.get(key) not in (None, key) else key


with st.container(border=True):
    row1 = st.columns([2, 2, 2, 2])
    chosen_stores = row1[0].multiselect(
        "Stores", list(stores["id"]), format_func=label(store_names), placeholder="All stores"
    )
    camera_choices = cameras[cameras["store_id"].isin(chosen_stores)] if chosen_stores else cameras
    chosen_cameras = row1[1].multiselect(
        "Cameras",
        list(camera_choices["id"]),
        format_func=label(dict(zip(cameras["id"], cameras["name"], strict=True))),
        placeholder="All cameras",
    )
    chosen_types = row1[2].multiselect(
        "Types", list(INCIDENT_TYPES), format_func=incident_label, placeholder="All types"
    )
    today = datetime.now(UTC).date()
    days = row1[3].date_input(
        "Days (store time)", (today - timedelta(days=6), today), max_value=today + timedelta(1)
    )
    row2 = st.columns([2, 2, 2, 2])
    chosen_levels = row2[0].multiselect("Risk", list(RISK_LEVELS), placeholder="Any risk")
    chosen_status = row2[1].multiselect("Status", list(STATUSES), placeholder="Open or closed")
    chosen_review = row2[2].multiselect("Review", list(REVIEW_STATES), placeholder="Any verdict")
    min_score = row2[3].slider("Minimum score", 0.0, 1.0, 0.0, 0.05)

first_day: date | None = None
last_day: date | None = None
if isinstance(days, tuple) and len(days) == 2:
    first_day, last_day = days
elif isinstance(days, tuple) and len(days) == 1:
    first_day = last_day = days[0]
filters = IncidentFilter(
    stores=tuple(chosen_stores),
    cameras=tuple(chosen_cameras),
    types=tuple(chosen_types),
    levels=tuple(chosen_levels),
    statuses=tuple(chosen_status),
    review=tuple(chosen_review),
    first_day=first_day,
    last_day=last_day,
    min_score=float(min_score),
)

# Pages: a stack of cursors, reset when the filters change.
if st.session_state.get("incidents_filters") != filters:
    st.session_state["incidents_filters"] = filters
    st.session_state["incidents_cursors"] = [None]
cursors: list[Cursor | None] = st.session_state["incidents_cursors"]

conn = data.connection()
try:
    total = incident_count(conn, scope, filters)
    unreviewed = incident_count(
        conn, scope, IncidentFilter(**{**filters.__dict__, "review": ("unreviewed",)})
    )
    page, next_cursor = incidents_page(
        conn, scope, filters, after=cursors[-1], page_size=PAGE_SIZE, viewer=signed.user.username
    )
except QueryError as exc:
    st.error(text.markdown(exc))
    st.stop()

metrics = st.columns(4)
metrics[0].metric("Matching", f"{total:,}")
metrics[1].metric("Awaiting a verdict", f"{unreviewed:,}")
metrics[2].metric(
    "High risk on this page", int((page["risk_level"] == "high").sum()) if not page.empty else 0
)
metrics[3].metric("Unseen on this page", int((~page["seen"]).sum()) if not page.empty else 0)

if page.empty:
    st.info("No incidents match these filters." if total == 0 else "No more incidents.")
    st.stop()

view = pd.DataFrame(
    {
        "seen": ["" if seen else "●" for seen in page["seen"]],
        "started": data.local_times(page, "started_at", timezones),
        "type": [incident_label(t) for t in page["incident_type"]],
        "risk": page["risk_level"],
        "score": page["risk_score"],
        "store": [store_names.get(s, s) for s in page["store_id"]],
        "camera": page["camera_id"],
        "status": page["status"],
        "verdict": ["—" if v is None or pd.isna(v) else verdict_word(v) for v in page["user_confirmed"]],
        "reviewed by": page["reviewed_by"].fillna(""),
    }
)
picked = st.dataframe(
    view,
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="multi-row",
    key=f"incident_rows_{len(cursors)}",
    column_config={
        "seen": st.column_config.TextColumn("", help="● not seen by you yet", width="small"),
        "score": st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0, format="%.2f"),
    },
)
rows = list(picked.selection.rows) if picked is not None else []
selected = page.iloc[rows]["incident_id"].tolist() if rows else []

actions = st.columns([1.2, 1.6, 1, 1, 2.2])
if actions[0].button(
    "Review",
    icon=":material/fact_check:",
    type="primary",
    disabled=len(selected) != 1,
    help="Open the selected incident",
):
    st.switch_page("review/incident.py", query_params={"id": selected[0]})
if actions[1].button(
    f"Mark {len(selected) or 'page'} seen",
    icon=":material/done_all:",
    help="Triage: mark the selected rows (or the whole page) seen",
):
    marked = mark_seen(conn, scope, signed.user.username, selected or page["incident_id"].tolist())
    st.toast(f"Marked {marked} incident(s) seen")
    st.rerun()
if actions[2].button("Newer", icon=":material/arrow_back:", disabled=len(cursors) == 1):
    cursors.pop()
    st.rerun()
if actions[3].button("Older", icon=":material/arrow_forward:", disabled=next_cursor is None):
    cursors.append(next_cursor)
    st.rerun()
actions[4].link_button(  # the server's export route checks the viewer's stores when it is fetched
    "Export CSV",
    data.served_url(served.export_path(filters)),
    icon=":material/download:",
    help="All matching incidents (up to 100,000), not only this page",
)
st.caption(f"Page {len(cursors)} · {PAGE_SIZE} per page")
