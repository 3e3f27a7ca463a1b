"""The dashboard while PostgreSQL does not answer: words, never an error, and back by itself.

Every session check and every page's data comes from PostgreSQL. A page run (app.py) or a
part of a page that reruns by itself (auth.fragment, auth.live) that fails because the
database is down (shrinkwatch.outage.dependency_down: no connection, or one lost) shows
shrinkwatch.wording.DATABASE_UNREACHABLE and stops there: a session that cannot be checked
signs no one in and shows no data. Under the message a small panel asks the database every
RETRY_S seconds and runs the page again once it answers, so the tab recovers by itself. A
fragment's own rerun that meets the outage runs the whole page again, which says so. The
web server's gate and sign-in page say the same (streamlit_app.server).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import streamlit as st

from shrinkwatch.outage import dependency_down
from shrinkwatch.wording import DATABASE_UNREACHABLE
from streamlit_app import data

RETRY_S = 3.0


def is_down(exc: BaseException) -> bool:
    """Whether `exc` says PostgreSQL is down (not a fault of the page)."""
    return dependency_down(exc) == "PostgreSQL"


@contextlib.contextmanager
def said(*, own_fragment_rerun: bool = False) -> Iterator[None]:
    """Run a page (or a fragment) and, if the database is down, say so instead (see above)."""
    try:
        yield
    except Exception as exc:
        if not is_down(exc):
            raise
        if own_fragment_rerun:
            st.rerun()  # the whole page, which says so and waits for the database
        st.error(DATABASE_UNREACHABLE, icon=":material/cloud_off:")
        _retry()
        st.stop()


@st.fragment(run_every=RETRY_S)
def _retry() -> None:
    """Ask the database; once it answers, run the page again."""
    try:
        data.connection().execute("SELECT 1")
    except Exception as exc:
        if not is_down(exc):
            raise
        return
    st.rerun()
