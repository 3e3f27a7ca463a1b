"""Live: medium and high-risk incidents as they arrive, and the newest frame of each camera."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import streamlit as st

from shrinkwatch import wording
from streamlit_app import auth, data, opening, served, text
from warehouse.camera_health import camera_status
from warehouse.incidents import incidents_page
from warehouse.scope import IncidentFilter

CAMERA_BADGES = {"online": "green", "degraded": "orange", "offline": "red"}


@auth.live(run_every=3)
def incoming(page: opening.Opening) -> None:
    """Medium and high-risk incidents of the last 24 hours; a toast for each new high-risk one."""
    today = datetime.now(UTC).date()
    filters = IncidentFilter(levels=("medium", "high"), first_day=today - timedelta(days=1))
    rows, _ = incidents_page(page.conn, page.scope, filters, page_size=20, viewer=page.signed.user.username)
    recent = rows[rows["started_at"] >= datetime.now(UTC) - timedelta(hours=24)] if not rows.empty else rows
    known: set[str] | None = st.session_state.get("live_known")
    ids = set(recent["incident_id"]) if not recent.empty else set()
    if known is not None:
        for row in recent[recent["incident_id"].isin(ids - known)].itertuples():
            if row.risk_level == "high":
                level = wording.level_words(row.risk_level).capitalize()
                what = wording.incident_label(row.incident_type)
                where = wording.where(page.store_names.get(row.store_id, row.store_id), row.camera_id)
                st.toast(
                    f"{level}: {text.markdown(what)} at {text.markdown(where)}",
                    icon=":material/warning:",
                    duration="long",
                )
    st.session_state["live_known"] = (known or set()) | ids
    cols = st.columns(3)
    cols[0].metric("Medium or high, last 24 h", len(recent))
    cols[1].metric("High", int((recent["risk_level"] == "high").sum()) if not recent.empty else 0)
    cols[2].metric("Open now", int((recent["status"] == "open").sum()) if not recent.empty else 0)
    if recent.empty:
        st.info("No medium or high-risk incidents in the last 24 hours. New ones appear here by themselves.")
        return
    view = pd.DataFrame(
        {
            "started": data.local_times(recent, "started_at", page.timezones),
            "type": [wording.incident_label(t) for t in recent["incident_type"]],
            "risk": recent["risk_level"],
            "score": recent["risk_score"],
            "store": [page.store_names.get(s, s) for s in recent["store_id"]],
            "camera": recent["camera_id"],
            "status": recent["status"],
            "review": [wording.review_path(i) for i in recent["incident_id"]],
        }
    )
    st.dataframe(
        view,
        hide_index=True,
        width="stretch",
        column_config={
            "score": st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0, format="%.2f"),
            "review": st.column_config.LinkColumn("review", display_text="open"),
        },
    )


@auth.live(run_every=1)
def cameras(page: opening.Opening) -> None:
    """What each camera analysed now sees, and its health."""
    health = camera_status(page.conn, page.scope).set_index("camera_id")
    frames = data.live_frames(set(health.index), viewer=page.signed.user.username)
    reported = {c for c in health.index if isinstance(health.at[c, "status"], str)}
    shown = [c for c in health.index if c in frames or c in reported]
    if not shown:
        st.info(
            "No camera of your stores is being analysed right now (start `shrinkwatch detect`, "
            "and `shrinkwatch flows run health` for their health)."
        )
        return
    columns = st.columns(min(3, len(shown)))
    for i, camera_id in enumerate(shown):
        with columns[i % len(columns)]:
            tile(page, camera_id, health.loc[camera_id], frames.get(camera_id), camera_id in reported)


def tile(page: opening.Opening, camera_id: str, row: pd.Series, frame: Path | None, reported: bool) -> None:
    """One camera: its name and health, its newest frame, and why it is down."""
    status = str(row["status"]) if reported else None
    colour = CAMERA_BADGES.get(status or "")
    badge = f":{colour}-badge[{status}]" if colour else ":gray-badge[no report]"
    fps = f" · {row['fps_analysed']:.1f} of {row['fps_in']:.1f} fps" if status is not None else ""
    st.markdown(f"**{text.markdown(row['name'])}** {text.code(camera_id)} {badge}{fps}")
    if frame is not None:
        changed = frame.stat().st_mtime
        st.image(  # the server's live route draws the zones and checks the viewer's stores
            data.served_url(served.live_path(camera_id, changed * 1000)),
            caption=f"{time.time() - changed:.0f} s ago · zones outlined",
        )
    if status == "offline":
        since = row["status_since"]
        # Why it is offline names the stream or the file it reads: for admins only.
        why = row["error"] if row["error"] and page.is_admin else None
        st.error(f"Offline since {since:%H:%M:%S} UTC" + (f": {text.markdown(why)}" if why else ""))
    elif status == "degraded":
        st.warning("Degraded: analysing fewer frames than the camera sends (the machine is busy).")


def live() -> None:
    page = opening.start(
        "Live",
        "Medium and high-risk incidents of the last 24 hours as they arrive, and what each camera sees now.",
        no_stores=None,
    )
    st.subheader("Incidents")
    incoming(page)
    st.subheader("Cameras")
    cameras(page)


live()
