"""Incidents: the filtered list, newest first, a page at a time; triage and CSV export.

The filters and the list they choose are one fragment: a filter, a selection or another
page reruns them, not the whole page.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from shrinkwatch.contracts import INCIDENT_TYPES
from shrinkwatch.wording import incident_label, verdict_word
from streamlit_app import auth, data, opening, served, text
from warehouse.incidents import incident_count, incidents_page
from warehouse.scope import REVIEW_STATES, RISK_LEVELS, STATUSES, Cursor, IncidentFilter, QueryError
from warehouse.seen import mark_seen

PAGE_SIZE = 50


def label(values: dict[str, str]) -> Any:
    return lambda key: f"{values.get(key, key)} ({key})" if values.get(key) not in (None, key) else key


def chosen_filters(page: opening.Opening) -> IncidentFilter:
    """The filter box: stores, cameras, types, store-local days, risk, status, verdict, score."""
    cameras = data.cameras(page.scope)
    with st.container(border=True):
        row1 = st.columns([2, 2, 2, 2])
        chosen_stores = row1[0].multiselect(
            "Stores", list(page.stores["id"]), format_func=label(page.store_names), placeholder="All stores"
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
    return IncidentFilter(
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


def cursors_for(filters: IncidentFilter) -> list[Cursor | None]:
    """The pages seen so far, as a stack of cursors, reset when the filters change (the
    review page reads the filters too: its next incident awaiting a verdict is under them)."""
    if st.session_state.get("incidents_filters") != filters:
        st.session_state["incidents_filters"] = filters
        st.session_state["incidents_cursors"] = [None]
    cursors: list[Cursor | None] = st.session_state["incidents_cursors"]
    return cursors


def table(page: opening.Opening, rows: pd.DataFrame, cursors: list[Cursor | None]) -> list[str]:
    """The page of incidents; returns the ids of the rows selected."""
    view = pd.DataFrame(
        {
            "seen": ["" if seen else "●" for seen in rows["seen"]],
            "started": data.local_times(rows, "started_at", page.timezones),
            "type": [incident_label(t) for t in rows["incident_type"]],
            "risk": rows["risk_level"],
            "score": rows["risk_score"],
            "store": [page.store_names.get(s, s) for s in rows["store_id"]],
            "camera": rows["camera_id"],
            "status": rows["status"],
            "verdict": ["—" if v is None or pd.isna(v) else verdict_word(v) for v in rows["user_confirmed"]],
            "reviewed by": rows["reviewed_by"].fillna(""),
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
    chosen = list(picked.selection.rows) if picked is not None else []
    return rows.iloc[chosen]["incident_id"].tolist() if chosen else []


def actions(
    page: opening.Opening,
    filters: IncidentFilter,
    rows: pd.DataFrame,
    selected: list[str],
    cursors: list[Cursor | None],
    next_cursor: Cursor | None,
) -> None:
    """Review one, mark seen, newer and older pages, and the CSV of everything that matches."""
    buttons = st.columns([1.2, 1.6, 1, 1, 2.2])
    if buttons[0].button(
        "Review",
        icon=":material/fact_check:",
        type="primary",
        disabled=len(selected) != 1,
        help="Open the selected incident",
    ):
        st.switch_page("review/incident.py", query_params={"id": selected[0]})
    if buttons[1].button(
        f"Mark {len(selected) or 'page'} seen",
        icon=":material/done_all:",
        help="Triage: mark the selected rows (or the whole page) seen",
    ):
        marked = mark_seen(
            page.conn, page.scope, page.signed.user.username, selected or rows["incident_id"].tolist()
        )
        st.toast(f"Marked {marked} incident(s) seen")
        st.rerun()
    if buttons[2].button("Newer", icon=":material/arrow_back:", disabled=len(cursors) == 1):
        cursors.pop()
        st.rerun()
    if buttons[3].button("Older", icon=":material/arrow_forward:", disabled=next_cursor is None):
        cursors.append(next_cursor)
        st.rerun()
    buttons[4].link_button(  # the server's export route checks the viewer's stores when it is fetched
        "Export CSV",
        data.served_url(served.export_path(filters)),
        icon=":material/download:",
        help="All matching incidents (up to 100,000), not only this page",
    )
    st.caption(f"Page {len(cursors)} · {PAGE_SIZE} per page")


@auth.fragment
def incident_list(page: opening.Opening) -> None:
    """The filters, the counts, a page of incidents and what can be done with them."""
    filters = chosen_filters(page)
    cursors = cursors_for(filters)
    try:
        total = incident_count(page.conn, page.scope, filters)
        unreviewed = incident_count(
            page.conn, page.scope, IncidentFilter(**{**filters.__dict__, "review": ("unreviewed",)})
        )
        rows, next_cursor = incidents_page(
            page.conn,
            page.scope,
            filters,
            after=cursors[-1],
            page_size=PAGE_SIZE,
            viewer=page.signed.user.username,
        )
    except QueryError as exc:
        st.error(text.markdown(exc))
        st.stop()

    metrics = st.columns(4)
    metrics[0].metric("Matching", f"{total:,}")
    metrics[1].metric("Awaiting a verdict", f"{unreviewed:,}")
    metrics[2].metric(
        "High risk on this page", int((rows["risk_level"] == "high").sum()) if not rows.empty else 0
    )
    metrics[3].metric("Unseen on this page", int((~rows["seen"]).sum()) if not rows.empty else 0)
    if rows.empty:
        st.info("No incidents match these filters." if total == 0 else "No more incidents.")
        st.stop()
    selected = table(page, rows, cursors)
    actions(page, filters, rows, selected, cursors, next_cursor)


def incidents() -> None:
    page = opening.start(
        "Incidents",
        "Everything the cameras flagged in your stores, newest first. Select rows to mark them seen "
        "or open one to review it; dates are each store's own calendar days.",
    )
    incident_list(page)


incidents()
