"""Shrinkwatch dashboard: sign-in check and routes; each page lives in its section folder.

Served by streamlit_app/server.py, which admits no request without a session; every page
then reads the signed-in account and its scope from `auth.page()`. While PostgreSQL does
not answer, the page says so instead (streamlit_app.unreachable).
"""

from __future__ import annotations

import base64
from pathlib import Path

import streamlit as st

from shrinkwatch.wording import REVIEW_PAGE
from streamlit_app import auth, unreachable

HERE = Path(__file__).parent

# The tab's icon, drawn here: a Material icon or an emoji as favicon is fetched from another
# site, which the server's Content-Security-Policy refuses (and a store's network may too).
SHIELD = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path fill="#ff4b4b" '
    'd="M12 1 3 5v6c0 5.55 3.84 10.74 9 12 5.16-1.26 9-6.45 9-12V5z"/></svg>'
)
ICON = "data:image/svg+xml;base64," + base64.b64encode(SHIELD.encode()).decode("ascii")
st.set_page_config(page_title="Shrinkwatch", page_icon=ICON, layout="wide")
with unreachable.said():  # PostgreSQL down: the page says so, and recovers by itself
    signed = auth.require()
    st.session_state[auth.SIGNED_IN_KEY] = signed
    auth.sidebar(signed)
    privacy = [
        *(
            [st.Page(HERE / "compliance" / "cases.py", title="Case files", icon=":material/folder_zip:")]
            if signed.user.role in ("admin", "analyst")
            else []
        ),
        *(
            [
                st.Page(
                    HERE / "compliance" / "requests.py",
                    title="Access requests",
                    icon=":material/person_search:",
                    url_path="access-requests",
                ),
                st.Page(
                    HERE / "compliance" / "evidence_log.py",
                    title="Evidence log",
                    icon=":material/policy:",
                    url_path="evidence-log",
                ),
            ]
            if signed.user.is_admin
            else []
        ),
    ]
    page = st.navigation(
        {
            "Review": [
                st.Page(
                    HERE / "review" / "incidents.py",
                    title="Incidents",
                    icon=":material/warning:",
                    default=True,
                ),
                st.Page(
                    HERE / "review" / "incident.py",
                    title="Review",
                    icon=":material/fact_check:",
                    url_path=REVIEW_PAGE,  # where alerts and the Live page link to
                ),
                st.Page(HERE / "review" / "weights.py", title="Risk weights", icon=":material/tune:"),
            ],
            "Analytics": [
                st.Page(
                    HERE / "analytics" / "overview.py",
                    title="Analytics and ROI",
                    icon=":material/insights:",
                    url_path="analytics",
                ),
                st.Page(HERE / "analytics" / "heatmaps.py", title="Heatmaps", icon=":material/blur_on:"),
            ],
            "Monitor": [
                st.Page(HERE / "monitor" / "live.py", title="Live", icon=":material/videocam:"),
            ],
            "Setup": [
                st.Page(
                    HERE / "setup" / "cameras.py",
                    title="Cameras and zones",
                    icon=":material/photo_camera:",
                    url_path="cameras",
                ),
                *(
                    [
                        st.Page(
                            HERE / "setup" / "alerts.py",
                            title="Alert settings",
                            icon=":material/notifications:",
                        )
                    ]
                    if signed.user.is_admin
                    else []
                ),
            ],
            **({"Privacy": privacy} if privacy else {}),
        }
    )
    page.run()
