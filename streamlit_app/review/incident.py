"""Review: one incident's evidence and explanation, and the verdict in one click.

Confirm (Y) or reject (X) records the verdict (the calibration learns from it) and moves
on to the next incident awaiting one; Next (N) skips without a verdict. Opening an incident
marks it seen by you. The verdict box is a fragment: writing the note reruns only the box.

Evidence and privacy: the snapshot drawn here is logged as a view in the evidence access
log (warehouse.evidence_log; the clip and the downloads are logged by the server's evidence
route, streamlit_app.served). Heads are blurred where the store says so; an analyst or admin
may reveal this incident's faces with a reason, which is logged and lasts
settings.reveal_minutes for them alone (the unblurred files are served only while it does).
Analysts and admins place and release a legal hold here, with a reason (logged in the same
transaction, on a connection of the page's own), and add the incident to a case file.
Evidence that retention deleted is said to be so, with the day.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from shrinkwatch import wording
from shrinkwatch.contracts import text_problem
from shrinkwatch.site_file import Privacy
from streamlit_app import auth, data, opening, served, text
from streamlit_app.charts import camera_view
from warehouse import evidence_log
from warehouse.db import connect
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


REASON_MAX = 1000


def reason_problem(reason: str) -> str | None:
    """What is wrong with a reason typed for the evidence log (required, at most REASON_MAX
    characters, text PostgreSQL can keep), or None."""
    reason = reason.strip()
    if not reason:
        return "Give a reason: it is kept in the evidence log."
    if len(reason) > REASON_MAX:
        return f"A reason is at most {REASON_MAX} characters."
    problem = text_problem(reason)
    return None if problem is None else f"The reason {problem}."


def revealed_until(page: opening.Opening, row: dict[str, Any]) -> datetime | None:
    """Until when this incident's faces are revealed to the viewer (None: they are not)."""
    if not served.may_reveal(page.signed.user):
        return None
    minutes = data.settings().reveal_minutes
    return evidence_log.revealed_until(page.conn, page.signed.user.username, row["incident_id"], minutes)


def purged(row: dict[str, Any], marks: dict[str, Any] | None, kind: str) -> str | None:
    """ "Purged on <day> by the store's retention (N days)" when retention deleted the
    incident's `kind` (snapshots or clips), else None."""
    when = (marks or {}).get("snapshot_purged_at" if kind == "snapshots" else "clip_purged_at")
    if when is None:
        return None
    days = getattr(Privacy.model_validate((marks or {}).get("privacy") or {}).retention_days, kind)
    day = wording.store_clock(when, row["store_timezone"])
    return f"purged on {day:%d %b %Y} by the store's retention ({days} days)"


def log_view(page: opening.Opening, row: dict[str, Any], file: str, revealed: bool) -> None:
    """The evidence access log's row for a file this page shows itself (once per
    evidence_log.ONCE_PER_S, as the server's routes do)."""
    evidence_log.record(
        page.conn,
        username=page.signed.user.username,
        action="view",
        incident_id=row["incident_id"],
        client=data.client(),
        detail={"file": file, **({"revealed": True} if revealed else {})},
        once_per_s=evidence_log.ONCE_PER_S,
    )


def evidence_file(row: dict[str, Any], file: served.File, *, revealed: bool = False) -> Path | None:
    """The incident's snapshot or clip (the unblurred one with `revealed`), found as the
    server's evidence route finds it; None when there is none."""
    return served.evidence_on_disk(data.settings().evidence_dir(), row, file, revealed=revealed)


def shown_file(row: dict[str, Any], file: served.File, until: datetime | None) -> tuple[Path | None, bool]:
    """The incident's snapshot or clip to show, and whether it is the unblurred one: that
    one while revealed and kept, else the file as stored."""
    if until is not None and (unblurred := evidence_file(row, file, revealed=True)) is not None:
        return unblurred, True
    return evidence_file(row, file), False


def evidence(page: opening.Opening, row: dict[str, Any], until: datetime | None) -> None:
    """The snapshot with the camera's zones, and the clip (unblurred while revealed)."""
    marks = evidence_log.purge_marks(page.conn, row["incident_id"])
    snapshot, revealed = shown_file(row, "snapshot", until)
    if snapshot is None:
        gone = purged(row, marks, "snapshots")
        if gone is not None:
            st.info(f"The snapshot was {gone}.")
        else:
            st.info(
                "The snapshot is not saved yet: the camera reader that saw the incident saves it within "
                "seconds (none is saved when no reader kept that camera's frames)."
            )
    else:
        log_view(page, row, "snapshot", revealed)
        zones = load_zones(page.conn, [row["camera_id"]]).get(row["camera_id"], [])
        figure = camera_view(snapshot, zones, highlight=row["zone_ids"] or [])
        st.plotly_chart(figure, config={"displayModeBar": False})
        st.caption(
            "Snapshot when the incident opened: the person in red, their path in amber (ring: where it "
            "starts), and the camera's zones (the incident's in red)."
            + (" **Faces revealed** (unblurred)." if revealed else "")
        )
    clip, clip_revealed = shown_file(row, "clip", until)
    if clip is not None:
        if clip.suffix == ".mp4":
            # Served by the server's evidence route, which checks the viewer's stores (and
            # the reveal) when the player asks for it, and logs it (never Streamlit's media store).
            address = served.evidence_path(row["incident_id"], "clip.mp4", revealed=clip_revealed)
            st.video(data.served_url(address))
        clips = data.settings()
        st.caption(f"Clip: about {clips.evidence_before_s:g} s before to {clips.evidence_after_s:g} s after")
    elif (gone := purged(row, marks, "clips")) is not None:
        st.caption(f"The clip was {gone}.")
    files = (("snapshot.jpg", snapshot, revealed), ("clip.mp4", clip, clip_revealed))
    downloads = [(name, unblurred) for name, path, unblurred in files if path is not None]
    if downloads:
        buttons = st.columns(len(downloads))
        for column, (name, unblurred) in zip(buttons, downloads, strict=True):
            column.link_button(
                f"Download {name.split('.')[0]}",
                data.served_url(
                    served.evidence_path(row["incident_id"], name, revealed=unblurred, download=True)
                ),
                icon=":material/download:",
                help="Downloads are logged in the evidence log.",
            )


def privacy(page: opening.Opening, row: dict[str, Any], until: datetime | None) -> None:
    """Reveal faces, the legal hold, and the way to a case file (analysts and admins; others
    see the hold in force)."""
    may = served.may_reveal(page.signed.user)
    hold = evidence_log.active_hold(page.conn, row["incident_id"])
    st.subheader("Privacy")
    if hold is not None:
        held = wording.store_clock(hold["held_at"], row["store_timezone"])
        st.warning(
            f"**On legal hold** since {held:%d %b %Y, %H:%M} (store time), placed by "
            f"{text.markdown(hold['held_by'])}: {text.markdown(hold['reason'])}. "
            "Its evidence is kept past the store's retention until the hold is released.",
            icon=":material/gavel:",
        )
    if not may:
        st.caption("Heads are blurred where the store says so; analysts and admins can reveal them.")
        return
    reveal_box(page, row, until)
    hold_box(page, row, hold)
    st.page_link(
        "compliance/cases.py",
        label="Add to a case file",
        icon=":material/folder_zip:",
        query_params={"incidents": row["incident_id"]},
    )


def reveal_box(page: opening.Opening, row: dict[str, Any], until: datetime | None) -> None:
    """ "Reveal faces" with a reason, when this incident has unblurred evidence."""
    if until is not None:
        ends = wording.store_clock(until, row["store_timezone"])
        st.info(
            f"Faces revealed to you until {ends:%H:%M} (store time). Each view and download of the "
            "unblurred evidence is logged.",
            icon=":material/visibility:",
        )
        return
    if evidence_file(row, "snapshot", revealed=True) is None and (
        evidence_file(row, "clip", revealed=True) is None
    ):
        st.caption(
            "Nothing to reveal: no unblurred evidence is kept for this incident (heads are not "
            "blurred in this store's evidence, or retention deleted it)."
        )
        return
    minutes = data.settings().reveal_minutes
    with st.form(f"reveal_{row['incident_id']}", border=True):
        reason = st.text_input(
            "Why do you need to see the faces?",
            key=f"reveal_reason_{row['incident_id']}",
            placeholder="e.g. police request ref. 1234",
            max_chars=REASON_MAX,
        )
        asked = st.form_submit_button("Reveal faces", icon=":material/visibility:")
        st.caption(f"For you alone, for {minutes} minutes; the reason is kept in the evidence log.")
    if asked:
        problem = reason_problem(reason)
        if problem is not None:
            st.error(problem)
            return
        evidence_log.reveal(
            page.conn,
            row["incident_id"],
            by=page.signed.user.username,
            reason=reason,
            minutes=minutes,
            client=data.client(),
        )
        st.rerun()  # the whole page, with the unblurred evidence


def hold_box(page: opening.Opening, row: dict[str, Any], hold: dict[str, Any] | None) -> None:
    """ "Place legal hold" or "Release hold", each with a reason."""
    held = hold is not None
    with st.form(f"hold_{row['incident_id']}", border=True):
        reason = st.text_input(
            "Why release the hold?" if held else "Why keep this evidence past retention?",
            key=f"hold_reason_{row['incident_id']}",
            placeholder="e.g. case closed" if held else "e.g. insurance claim 5678",
            max_chars=REASON_MAX,
        )
        asked = st.form_submit_button("Release hold" if held else "Place legal hold", icon=":material/gavel:")
    if asked:
        problem = reason_problem(reason)
        if problem is not None:
            st.error(problem)
            return
        change = evidence_log.release if held else evidence_log.hold
        # The hold and its log row are one transaction: on a connection of its own, never on
        # the one every session shares (their statements would join it).
        with connect(data.settings().database_dsn, autocommit=True) as own:
            change(own, row["incident_id"], by=page.signed.user.username, reason=reason, client=data.client())
        st.rerun()


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
    until = revealed_until(page, row)
    left, right = st.columns([3, 2])
    with left:
        evidence(page, row, until)
    with right:
        explanation(row)
        privacy(page, row, until)


review()
