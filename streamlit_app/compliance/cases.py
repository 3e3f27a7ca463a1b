"""Case files (analysts and admins): incidents handed to the police or an insurer as one ZIP,
and the disclosure register (privacy.cases, docs/CASES.md).

The incidents come preselected from the address (`?incidents=a,b`, as the Review page links
here); more are added from the viewer's newest incidents or by id. To whom and why are
required; the unblurred evidence goes only when ticked, and is then logged as a reveal. The
ZIP is built, registered and logged on a connection of its own (its transaction is this
page's alone, never the dashboard's shared connection), then offered for download
(streamlit_app.inline: in the page itself, never through Streamlit's closed media store) for
as long as the incidents, to whom, why and the unblurred box are what it was built from.

The disclosure register below lists case files; admins also see the answers to access
requests, whose recipient is the requester (a name and a way to reach them).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from privacy.cases import CaseError, build_case
from shrinkwatch import wording
from streamlit_app import data, inline, opening, text
from warehouse.db import connect
from warehouse.disclosures import KINDS, disclosures, disclosures_csv
from warehouse.incidents import incidents_page
from warehouse.scope import QueryError

BUILT = "case_built"


def built_for(incidents: list[str], recipient: str, reason: str, unblurred: bool) -> str:
    """What a case file is built from, as one key: its ZIP is shown only while these stay."""
    return hashlib.sha256(json.dumps([incidents, recipient, reason, unblurred]).encode()).hexdigest()


page = opening.start(
    "Case files", "Incidents exported for the police or an insurer; each export is registered."
)
if page.signed.user.role not in ("admin", "analyst"):
    st.warning("Case files are made by analysts and admins.")
    st.stop()

named = [i for i in st.query_params.get("incidents", "").split(",") if i.strip()]
recent, _cursor = incidents_page(page.conn, page.scope, page_size=200)
labels = {
    row.incident_id: (
        f"{row.incident_id} · {wording.incident_label(row.incident_type)} · "
        f"{page.store_names.get(row.store_id, row.store_id)} "
        f"{wording.store_clock(row.started_at, page.timezones.get(row.store_id)):%d %b %H:%M}"
    )
    for row in recent.itertuples()
}
added: list[str] = st.session_state.setdefault("case_added", [])
options = list(dict.fromkeys([*named, *added, *labels]))

chosen = st.multiselect(
    "Incidents",
    options,
    default=list(dict.fromkeys([*named, *added])),
    format_func=lambda i: labels.get(i, i),
    help="Preselected from the Review page; add more from your newest incidents or by id below.",
)
left, right = st.columns([3, 1], vertical_alignment="bottom")
by_id = left.text_input("Add incidents by id", placeholder="comma-separated incident ids")
if right.button("Add", width="stretch") and by_id.strip():
    added.extend(i.strip() for i in by_id.split(",") if i.strip() and i.strip() not in added)
    st.rerun()

recipient = st.text_input("To whom", placeholder="e.g. West Yorkshire Police, PC 1234")
reason = st.text_area("Why", placeholder="e.g. theft reported on 28 Nov, crime reference 13/456789/26")
unblurred = st.checkbox(
    "Include the unblurred snapshots and clips (logged as a reveal)",
    help="Only where the recipient needs faces; the case file always holds the evidence as stored.",
)
key = built_for(chosen, recipient, reason, unblurred)
if BUILT in st.session_state and st.session_state[BUILT][0] != key:
    del st.session_state[BUILT]  # built from other incidents, recipient or reason: not this one
if st.button("Build case file", type="primary", icon=":material/folder_zip:"):
    try:
        with connect(data.settings().database_dsn, autocommit=True) as own:
            case = build_case(
                own,
                data.settings().evidence_dir(),
                page.signed.user,
                page.scope,
                chosen,
                recipient=recipient,
                reason=reason,
                include_unblurred=unblurred,
                client=data.client(),
            )
    except (CaseError, QueryError) as exc:
        st.error(text.markdown(exc))
    else:
        st.session_state[BUILT] = (key, case.file_name, case.data, case.sha256)
built = st.session_state.get(BUILT)
if built:
    _key, file_name, zipped, digest = built
    st.success(text.markdown(f"Built and registered: {file_name} (SHA-256 {digest})"))
    inline.download("Download the case file", zipped, file_name, "application/zip")

st.subheader("Disclosure register")
# An access request's answer names the requester: admins answer them, and only they see it.
kinds = KINDS if page.is_admin else ("case",)
st.caption(
    "Every case file and access-request answer handed over: when, by whom, to whom, why."
    if page.is_admin
    else "Every case file handed over: when, by whom, to whom, why."
)
register = disclosures(page.conn, page.scope, kinds=kinds)
if register.empty:
    st.info("Nothing disclosed yet.")
else:
    shown = register.assign(
        at=[pd.Timestamp(a).tz_convert(UTC).strftime("%Y-%m-%d %H:%M UTC") for a in register["at"]],
        incident_ids=[" ".join(v) for v in register["incident_ids"]],
        store_ids=[" ".join(v) for v in register["store_ids"]],
    )
    st.dataframe(shown, hide_index=True, width="stretch")
    inline.download(
        "Download the register (CSV)",
        disclosures_csv(page.conn, page.scope, kinds=kinds),
        f"disclosures-{datetime.now(UTC):%Y%m%d}.csv",
        "text/csv",
    )
