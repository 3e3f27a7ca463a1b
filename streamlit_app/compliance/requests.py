"""Access requests and erasure (admins): a person's footage found and exported with everyone
else blurred, or erased (privacy.subject, docs/CASES.md).

Requests: record one (received on, who, a description, camera and time window on the store's
clock), see the open ones with their days left (overdue in red), and answer one: the
camera's evidence in the window is shown as key frames with each person's track id, the
admin picks the requester in each, and the export is offered for download once it is built,
registered and the request marked answered, for as long as that request stays selected. A
request answered before (listed with "Show answered requests too") can be exported again: a
new disclosure, registered and logged. Erasure or objection: a camera, a window and the
person (or everyone), blurred for good or deleted; each incident whose erasure failed
part-way is named, with what was done before. Showing a key frame is logged as a view.

The export and the erasure write on a connection of their own (their transactions are this
page's alone, never the dashboard's shared connection).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from privacy.subject import (
    Erased,
    Evidence,
    SubjectError,
    blurs_heads,
    erase,
    export_request,
    find_evidence,
    key_frame,
)
from shrinkwatch import wording
from streamlit_app import data, inline, opening, text
from warehouse.db import Connection, connect
from warehouse.disclosures import access_request, access_requests, camera_incidents, record_request
from warehouse.evidence_log import record
from warehouse.scope import QueryError

NOT_HERE = -1  # the person is not in this incident
ANSWER = "request_answer"  # (request id, file name, ZIP) of the answer built in this session

page = opening.start("Access requests", "A person's own footage, with everyone else blurred; or erased.")
if not page.is_admin:
    st.warning("Access requests and erasure are for admins.")
    st.stop()
root = data.settings().evidence_dir()
client = data.client()  # where the viewer is, for the access log (behind a trusted proxy too)
cameras = data.cameras(page.scope)
camera_store = dict(zip(cameras["id"], cameras["store_id"], strict=True))


@contextmanager
def own_connection() -> Iterator[Connection]:
    """A connection for this page's writes alone (autocommit; each transaction explicit)."""
    with connect(data.settings().database_dsn, autocommit=True) as conn:
        yield conn


def camera_label(camera_id: str) -> str:
    store = camera_store.get(camera_id, "")
    return f"{camera_id} ({page.store_names.get(store, store)})"


def window(key: str, camera_id: str) -> tuple[datetime, datetime]:
    """A day and a span of hours on the camera's store clock, as UTC instants."""
    zone = ZoneInfo(page.timezones.get(camera_store.get(camera_id, ""), "UTC") or "UTC")
    cols = st.columns(3)
    day = cols[0].date_input("Day (store time)", key=f"{key}_day", value=datetime.now(zone).date())
    start = cols[1].time_input("From", key=f"{key}_from", value=time(9, 0))
    end = cols[2].time_input("To", key=f"{key}_to", value=time(10, 0))
    begin = datetime.combine(day, start, tzinfo=zone)
    finish = datetime.combine(day, end, tzinfo=zone)
    if finish <= begin:
        finish += timedelta(days=1)  # a span past midnight
    return begin.astimezone(UTC), finish.astimezone(UTC)


def pick_people(evidence: list[Evidence], key: str, *, purpose: str) -> dict[str, int]:
    """Each incident's key frame with its people's track ids; the person chosen in each."""
    chosen = {}
    for item in evidence:
        tz = item.incident["store_timezone"]
        with st.container(border=True):
            picture, choice = st.columns([3, 2])
            with picture:
                inline.image(
                    key_frame(root, item, blur_heads=blurs_heads(item)), f"key frame of {item.incident_id}"
                )
            record(
                page.conn,
                username=page.signed.user.username,
                action="view",
                incident_id=item.incident_id,
                client=client,
                reason=purpose,
                detail={"file": "key frame"},
                once_per_s=600,
            )
            choice.markdown(
                f"**{text.markdown(wording.incident_title(item.incident['incident_type']))}** · "
                f"{text.markdown(wording.store_time(item.incident['started_at'], tz))} · "
                f"incident {text.code(item.incident_id)}"
            )
            track = choice.selectbox(
                f"The person in {item.incident_id}",
                [NOT_HERE, *item.track_ids()],
                format_func=lambda t: "not in this one" if t == NOT_HERE else f"track {t}",
                key=f"{key}_{item.incident_id}",
            )
            if track != NOT_HERE:
                chosen[item.incident_id] = int(track)
    return chosen


def request_list() -> pd.DataFrame:
    include = st.checkbox("Show answered requests too")
    listed = access_requests(page.conn, page.scope, datetime.now(UTC).date(), include_answered=include)
    for row in listed[listed["overdue"]].itertuples():
        st.markdown(
            f":red[**Overdue by {-row.days_left} day(s)**: request {row.id} from "
            f"{text.markdown(row.requester)}, due on {row.due_on:%d %b %Y}]"
        )
    if listed.empty:
        st.info("No open access requests.")
        return listed

    def days(row: Any) -> str:
        if row.answered_at is not None and not pd.isna(row.answered_at):
            return "answered"
        return f"overdue by {-row.days_left}" if row.overdue else f"{row.days_left} left"

    table = pd.DataFrame(
        {
            "id": listed["id"],
            "requester": listed["requester"],
            "received": listed["received_on"],
            "due": listed["due_on"],
            "days": [days(r) for r in listed.itertuples()],
            "camera": [camera_label(c) for c in listed["camera_id"]],
            "window (store time)": [
                f"{wording.store_clock(s, page.timezones.get(st_id)):%d %b %Y %H:%M}"
                f"–{wording.store_clock(e, page.timezones.get(st_id)):%H:%M}"
                for s, e, st_id in zip(
                    listed["window_start"], listed["window_end"], listed["store_id"], strict=True
                )
            ],
            "description": listed["description"],
        }
    )
    styled = table.style.apply(
        lambda r: ["color: #d62728; font-weight: 600" if "overdue" in r["days"] else "" for _ in r], axis=1
    )
    st.dataframe(styled, hide_index=True, width="stretch")
    return listed


def new_request() -> None:
    with st.expander("Record a request", icon=":material/add:"):
        received = st.date_input("Received on", value=datetime.now(UTC).date(), key="new_received")
        requester = st.text_input("Requester (name and how to reach them)", key="new_requester")
        description = st.text_area("How to recognise them (clothes, what they did)", key="new_description")
        camera = st.selectbox("Camera", list(cameras["id"]), format_func=camera_label, key="new_camera")
        if camera is None:
            st.info(opening.NO_STORES)
            return
        start, end = window("new", camera)
        if st.button("Record the request", type="primary"):
            try:
                request_id = record_request(
                    page.conn,
                    received_on=received,
                    requester=requester,
                    description=description,
                    store_id=camera_store[camera],
                    camera_id=camera,
                    window_start=start,
                    window_end=end,
                    recorded_by=page.signed.user.username,
                )
            except QueryError as exc:
                st.error(text.markdown(exc))
            else:
                st.success(f"Request {request_id} recorded.")
                st.rerun()


def answer(listed: pd.DataFrame) -> None:
    built = st.session_state.get(ANSWER)
    ids = [int(i) for i in listed["id"]]
    if built is not None and built[0] not in ids:
        ids.append(built[0])  # answered here just now: still offered, with its download
    if not ids:
        return
    st.subheader("Answer a request")
    request_id = st.selectbox("Request", ids, format_func=lambda i: f"request {i}", key="answer_request")
    if built is not None and built[0] != request_id:
        del st.session_state[ANSWER]  # another request's answer: never offered under this one
        built = None
    request = access_request(page.conn, int(request_id))
    if request is None:
        return
    if request["answered_at"] is not None:
        first = wording.store_clock(request["answered_at"], page.timezones.get(request["store_id"]))
        st.info(
            text.markdown(
                f"Request {request_id} was answered on {first:%d %b %Y} by {request['answered_by']}. "
                "Exporting again hands over a new copy: it is registered and logged as another disclosure."
            )
        )
    evidence = find_evidence(
        page.conn, root, page.scope, request["camera_id"], request["window_start"], request["window_end"]
    )
    if not evidence:
        st.info(
            "No kept footage of this camera in the request's window: nothing to export "
            "(tell the requester so)."
        )
        return
    chosen = pick_people(evidence, f"answer_{request_id}", purpose=f"subject access request {request_id}")
    if st.button("Export for the requester", type="primary", disabled=not chosen):
        try:
            with own_connection() as own:
                answered = export_request(
                    own, root, page.signed.user, page.scope, int(request_id), chosen, client=client
                )
        except (SubjectError, QueryError) as exc:
            st.error(text.markdown(exc))
        else:
            built = (int(request_id), answered.file_name, answered.data)
            st.session_state[ANSWER] = built
    if built is not None:
        _id, file_name, zipped = built
        st.success(text.markdown(f"Answered, registered and logged: {file_name}"))
        inline.download("Download the answer", zipped, file_name, "application/zip")


def erasure() -> None:
    st.caption(
        "Blur a person whole in every file of the evidence, for good, or delete the evidence. "
        "Incidents under a legal hold are left as they are."
    )
    camera = st.selectbox("Camera", list(cameras["id"]), format_func=camera_label, key="erase_camera")
    if camera is None:
        return
    start, end = window("erase", camera)
    everyone = st.checkbox("Everyone in the window", key="erase_everyone")
    incidents = camera_incidents(page.conn, page.scope, camera, start, end)
    evidence = find_evidence(page.conn, root, page.scope, camera, start, end)
    st.markdown(
        f"{len(incidents)} incident(s) of this camera in the window, {len(evidence)} with footage kept."
    )
    people: dict[str, int] | None = None
    if not everyone:
        people = pick_people(evidence, "erase", purpose="erasure or objection")
    mode = st.radio(
        "What to do",
        ["blur", "delete"],
        format_func=lambda m: "Blur the person whole, for good" if m == "blur" else "Delete the evidence",
        horizontal=True,
        key="erase_mode",
    )
    reason = st.text_input("Reason (the request or objection this answers)", key="erase_reason")
    sure = st.checkbox("I understand that this cannot be undone", key="erase_sure")
    if st.button("Erase", type="primary", disabled=not sure or (people is not None and not people)):
        try:
            with own_connection() as own:
                done = erase(
                    own,
                    root,
                    page.signed.user,
                    page.scope,
                    camera_id=camera,
                    start=start,
                    end=end,
                    people=people,
                    mode="blur" if mode == "blur" else "delete",
                    reason=reason,
                    client=client,
                )
        except (SubjectError, QueryError) as exc:
            st.error(text.markdown(exc))
        else:
            erased_report(done, "blurred" if mode == "blur" else "deleted")


def erased_report(done: list[Erased], done_to: str) -> None:
    """What the erasure did to each incident; each failure named, with what was done before."""
    for item in done:
        if item.failed:
            said = f"failed on {item.failed} ({len(item.files)} file(s) {done_to} before it)"
            if done_to == "deleted":
                said += "; marked deleted, so the purge's next run deletes what is left"
            st.error(f"{text.code(item.incident_id)}: {text.markdown(said)}")
            continue
        said = f"kept: {item.skipped}" if item.skipped else f"{len(item.files)} file(s) {done_to}"
        st.markdown(f"- {text.code(item.incident_id)}: {text.markdown(said)}")
    failed = sum(1 for item in done if item.failed)
    if failed:
        st.warning(
            f"Erasure failed part-way for {failed} of {len(done)} incident(s), named above: each is "
            "logged with what was done and what failed. Erase them again once the cause is fixed."
        )
    else:
        st.success(f"Erasure done and logged ({len(done)} incident(s)).")


requests_tab, erase_tab = st.tabs(["Requests", "Erasure or objection"])
with requests_tab:
    listed = request_list()
    new_request()
    answer(listed)
with erase_tab:
    erasure()
