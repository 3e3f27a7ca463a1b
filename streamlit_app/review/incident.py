"""Review: one incident's evidence and explanation, and the verdict in one click.

Confirm (Y) or reject (X) records the verdict (the calibration learns from it) and moves
on to the next incident awaiting one; Next (N) skips without a verdict. Opening an incident
marks it seen by you. The verdict box is a fragment: writing the note reruns only the box.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

from shrinkwatch import wording
from streamlit_app import auth, data, opening, served, text
from streamlit_app.charts import camera_view
from warehouse.incidents import incident_detail, next_unreviewed, record_verdict
from warehouse.scope import IncidentFilter, QueryError
from warehouse.seen import mark_seen
from warehouse.site_tables import load_zones


def next_id(page: opening.Opening, done: str | None = None) -> str | None:
    """The newest incident still awaiting a verdict under the incident list's filters (other
    than those skipped or just done)."""
    filters: IncidentFilter = st.session_state.get("incidents_filters", IncidentFilter())
    skipped: list[str] = st.session_state.setdefault("review_skipped", [])
    return next_unreviewed(page.conn, page.scope, filters, skip=tuple([*skipped, *([done] if done else [])]))


def go_next(page: opening.Opening, done: str | None = None) -> None:
    """Open the next incident awaiting a verdict (or say there is none)."""
    following = next_id(page, done)
    if following is None:
        st.query_params.clear()
    else:
        st.query_params["id"] = following
    st.rerun()


def all_done() -> None:
    skipped: list[str] = st.session_state.setdefault("review_skipped", [])
    st.title("Review")
    st.success("Nothing left to review under the current filters.")
    if skipped and st.button("Start again with the skipped ones"):
        skipped.clear()
        st.rerun()
    st.page_link("review/incidents.py", label="Back to the incident list", icon=":material/list:")
    st.stop()


def incident(page: opening.Opening) -> dict[str, Any]:
    """The incident the address names, else the newest awaiting a verdict (then named in the
    address); the page stops with a message when there is none in the viewer's stores."""
    incident_id = st.query_params.get("id")
    if not incident_id:  # the newest awaiting a verdict, shown in this same run
        try:
            incident_id = next_id(page)
        except QueryError as exc:
            st.error(text.markdown(exc))
            st.stop()
        if incident_id is None:
            all_done()
        st.query_params["id"] = str(incident_id)
    row = incident_detail(page.conn, page.scope, str(incident_id), viewer=page.signed.user.username)
    if row is None:
        st.title("Review")
        st.warning("No such incident in your stores.")
        st.page_link("review/incidents.py", label="Back to the incident list", icon=":material/list:")
        st.stop()
    return row


def heading(row: dict[str, Any]) -> None:
    """What, how risky, where and when."""
    started = wording.store_clock(row["started_at"], row["store_timezone"])
    duration = (row["ended_at"] or row["updated_at"]) - row["started_at"]
    level = row["risk_level"]
    colour = wording.level_colour(level)
    badge = f":{colour}-badge[{wording.level_words(level)}]" if colour else text.markdown(level)
    st.title(text.markdown(wording.incident_title(row["incident_type"])))
    st.markdown(
        f"{badge} · score **{row['risk_score']:.2f}** · {text.markdown(row['store_name'])} · "
        f"camera {text.code(row['camera_id'])} · {started:%a %d %b %Y, %H:%M:%S} store time · "
        f"{duration.total_seconds():.0f} s · {text.markdown(row['status'])}"
    )


@auth.fragment
def verdict(page: opening.Opening, row: dict[str, Any]) -> None:
    """The verdict box: the verdict so far, a note, Confirm / Reject / Next."""
    with st.container(border=True):
        if row["user_confirmed"] is None:
            st.markdown("**Awaiting a verdict.** Is this a real loss-prevention event?")
        else:
            said = wording.verdict_word(row["user_confirmed"])
            when = wording.store_clock(row["reviewed_at"], row["store_timezone"])
            st.markdown(
                f"**{said.capitalize()}** by {text.markdown(row['reviewed_by'])} on {when:%d %b %Y, %H:%M}. "
                "You can change it."
            )
        note = st.text_input(
            "Note (optional)",
            value=row["review_note"] or "",
            key=f"note_{row['incident_id']}",
            placeholder="What did you see?",
        )
        buttons = st.columns([1, 1, 1, 3])
        confirm = buttons[0].button(
            "Confirm", icon=":material/check:", type="primary", shortcut="Y", width="stretch"
        )
        reject = buttons[1].button("Reject", icon=":material/close:", shortcut="X", width="stretch")
        skip = buttons[2].button(
            "Next", icon=":material/skip_next:", shortcut="N", width="stretch", help="Next awaiting a verdict"
        )
        buttons[3].caption(
            "Keys: **Y** confirm · **X** reject · **N** next. A verdict moves on to the next incident."
        )
    if confirm or reject:
        if record_verdict(
            page.conn,
            page.scope,
            row["incident_id"],
            confirmed=bool(confirm),
            reviewer=page.signed.user.username,
            note=note,
        ):
            kind = text.markdown(wording.incident_label(row["incident_type"]))
            st.toast(wording.verdict_word(bool(confirm)).capitalize() + f": {kind}")
        go_next(page, done=row["incident_id"])
    if skip:
        st.session_state.setdefault("review_skipped", []).append(row["incident_id"])
        go_next(page)


def evidence(page: opening.Opening, row: dict[str, Any]) -> None:
    """The snapshot with the camera's zones, and the clip."""
    snapshot = data.evidence_file(row["snapshot"])
    if snapshot is None:
        st.info(
            "The snapshot is not saved yet: the camera reader that saw the incident saves it within "
            "seconds (none is saved when no reader kept that camera's frames)."
        )
    else:
        zones = load_zones(page.conn, [row["camera_id"]]).get(row["camera_id"], [])
        figure = camera_view(snapshot, zones, highlight=row["zone_ids"] or [])
        st.plotly_chart(figure, config={"displayModeBar": False})
        st.caption(
            "Snapshot when the incident opened: the person in red, their path in amber (ring: where it "
            "starts), and the camera's zones (the incident's in red)."
        )
    if data.evidence_file(row["snapshot"], ".mp4") is not None:
        # Served by the server's evidence route, which checks the viewer's stores when the
        # player asks for it (never through Streamlit's media store).
        st.video(data.served_url(served.evidence_path(row["incident_id"], "clip.mp4")))
        clips = data.settings()
        st.caption(f"Clip: about {clips.evidence_before_s:g} s before to {clips.evidence_after_s:g} s after")


def explanation(row: dict[str, Any]) -> None:
    """Why this score (each signal's contribution), and the details."""
    st.subheader("Why this score")
    signals: list[dict[str, Any]] = sorted(row["signals"] or [], key=lambda s: s.get("contribution", 0.0))
    if not signals:
        st.caption("No signals recorded.")
    else:
        bars = go.Figure(
            go.Bar(
                x=[s["contribution"] for s in signals],
                y=[text.chart(wording.signal_label(s["name"])) for s in signals],
                orientation="h",
                text=[f"{s['contribution']:.2f}" for s in signals],
                hovertext=[f"value {wording.signal_value(s['value'])}" for s in signals],
                marker_color="#ff4b4b",
            )
        )
        bars.update_layout(
            height=80 + 36 * len(signals),
            margin={"l": 0, "r": 10, "t": 10, "b": 30},
            xaxis_title="contribution to the risk score",
        )
        st.plotly_chart(bars, config={"displayModeBar": False})
        st.caption(
            "Each signal adds weight × strength to the score; the weights are learnt from "
            f"verdicts like yours (weights version {row['weights_version'] or 0})."
        )
    updated = wording.store_clock(row["updated_at"], row["store_timezone"])
    st.subheader("Details")
    st.markdown(
        f"- Zones: {text.markdown(', '.join(row['zone_ids'] or [])) or '—'}\n"
        f"- Track: {row['track_id'] if row['track_id'] is not None else '— (a group)'}\n"
        f"- Version {row['version']}, last updated {updated:%H:%M:%S}\n"
        f"- Incident id {text.code(row['incident_id'])}"
    )


def review() -> None:
    page = opening.start(None, no_stores=None)
    row = incident(page)
    if not row["seen"]:
        mark_seen(page.conn, page.scope, page.signed.user.username, [row["incident_id"]])
    heading(row)
    verdict(page, row)
    left, right = st.columns([3, 2])
    with left:
        evidence(page, row)
    with right:
        explanation(row)


review()
