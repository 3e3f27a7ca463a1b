"""Evidence log (admins): every view, download, reveal and export of evidence, and every hold,
release, erasure and purge, from the append-only access log (warehouse.evidence_log); and the
legal holds.

The filters are days on the viewer's own clock (the browser's time zone), users, actions,
stores and an incident id; each row's time is shown on its store's clock. The CSV holds what
is filtered, served by the server's export route (streamlit_app.served: admins only, no cell
a spreadsheet runs as a formula). Anyone but an admin is told so and sees nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import streamlit as st

from shrinkwatch import wording
from streamlit_app import auth, data, served, text
from warehouse.evidence_log import ACTIONS, holds, log_usernames
from warehouse.scope import QueryError

ACTION_WORDS = {
    "view": "viewed",
    "download": "downloaded",
    "reveal": "revealed faces",
    "export": "exported",
    "access_request": "access request",
    "erase": "erased",
    "hold": "legal hold placed",
    "release": "legal hold released",
    "purge": "purged by retention",
}


def viewer_zone() -> ZoneInfo:
    """The viewer's time zone (the browser's), UTC when it is not known."""
    try:
        return ZoneInfo(st.context.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def day_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """From the start of `first` to the start of the day after `last`, on the clock of `zone`."""
    return (
        datetime.combine(first, time(), zone),
        datetime.combine(last + timedelta(days=1), time(), zone),
    )


def label(names: dict[str, str]) -> Callable[[str], str]:
    return lambda key: names.get(key, key)


def filters(store_names: dict[str, str], zone: ZoneInfo) -> served.LogFilter:
    """The filter row."""
    conn = data.connection()
    row = st.columns([3, 2, 2, 2, 2])
    today = datetime.now(zone).date()
    days = row[0].date_input(
        f"Days ({zone.key})", (today - timedelta(days=6), today), max_value=today + timedelta(days=1)
    )
    users = row[1].multiselect("Users", log_usernames(conn), placeholder="Anyone")
    actions = row[2].multiselect(
        "Actions", list(ACTIONS), format_func=label(ACTION_WORDS), placeholder="Any action"
    )
    stores = row[3].multiselect(
        "Stores", list(store_names), format_func=label(store_names), placeholder="All stores"
    )
    incident_id = row[4].text_input("Incident id", placeholder="Any incident").strip()
    since = until = None
    if isinstance(days, tuple) and days:
        since, until = day_bounds(days[0], days[-1], zone)
    return served.LogFilter(
        since=since,
        until=until,
        usernames=tuple(users),
        actions=tuple(actions),
        store_ids=tuple(stores),
        incident_id=incident_id or None,
    )


def log_table(rows: pd.DataFrame, store_names: dict[str, str]) -> pd.DataFrame:
    """The log's rows as the page shows them (plain cells: names are never read as markup)."""
    return pd.DataFrame(
        {
            "when (store time)": rows["store_time"],
            "user": rows["username"],
            "action": [ACTION_WORDS.get(a, a) for a in rows["action"]],
            "store": [store_names.get(s, s) if pd.notna(s) else "" for s in rows["store_id"]],
            "camera": rows["camera_id"].fillna(""),
            "incident": rows["incident_id"].fillna(""),
            # An empty cell for a row without an incident (a live view): a null shows "None".
            "review": [wording.review_path(i) if pd.notna(i) else "" for i in rows["incident_id"]],
            "from": rows["client"].fillna(""),
            "reason": rows["reason"].fillna(""),
            "detail": [", ".join(f"{k} {v}" for k, v in sorted((d or {}).items())) for d in rows["detail"]],
        }
    )


def hold_table(found: pd.DataFrame, zone: ZoneInfo) -> pd.DataFrame:
    """The legal holds as the page shows them, times on the viewer's clock."""

    def clock(moment: datetime | None) -> str:
        if moment is None or pd.isna(moment):
            return ""
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    return pd.DataFrame(
        {
            "incident": found["incident_id"],
            "review": [wording.review_path(i) for i in found["incident_id"]],
            "held by": found["held_by"],
            f"held ({zone.key})": [clock(m) for m in found["held_at"]],
            "reason": found["reason"],
            "released by": found["released_by"].fillna(""),
            f"released ({zone.key})": [clock(m) for m in found["released_at"]],
            "why released": found["release_reason"].fillna(""),
        }
    )


LINKS = {"review": st.column_config.LinkColumn("review", display_text="open")}

signed = auth.page()
st.title("Evidence log")
if not signed.user.is_admin:
    st.warning("Only admins see the evidence log.")
    st.stop()
st.caption(
    "Who viewed, downloaded, revealed or exported which evidence, when and from where, and every "
    "legal hold, erasure and purge. The log is append-only; it keeps its rows "
    f"{data.settings().retention_evidence_access_days} days."
)
zone = viewer_zone()
stores = data.stores(signed.scope)
names = dict(zip(stores["id"], stores["name"], strict=True))
chosen = filters(names, zone)
try:
    chosen.check()
except QueryError as exc:
    st.error(text.markdown(exc))
    st.stop()
rows = served.log_rows(data.connection(), chosen)
if rows.empty:
    st.info("No access to evidence matches these filters.")
else:
    st.dataframe(log_table(rows, names), hide_index=True, width="stretch", column_config=LINKS)
    st.caption(
        f"{len(rows):,} rows, newest first (at most {served.LOG_PAGE_ROWS:,} here: narrow the filters, "
        "or download them all as CSV)."
    )
    st.link_button(
        "Download CSV",
        data.served_url(served.log_export_path(chosen)),
        icon=":material/download:",
        help="The rows under these filters, as CSV.",
    )

st.subheader("Legal holds")
released_too = st.toggle("Show released holds too")
found = holds(data.connection(), include_released=released_too)
if found.empty:
    st.info("No legal hold " + ("placed yet." if released_too else "in force."))
else:
    st.dataframe(hold_table(found, zone), hide_index=True, width="stretch", column_config=LINKS)
st.caption(
    "A hold keeps an incident's evidence past its store's retention until it is released. Holds "
    "are placed and released on the incident's Review page, with a reason."
)
