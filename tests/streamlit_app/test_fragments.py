"""A part of a page that reruns by itself (`auth.fragment`, `auth.live`) asks for the session
before each of its own reruns, as app.py does before a full run: an ended session goes to the
sign-in form, and an account that now sees other stores gets the whole page again.

AppTest runs every interaction as a full run, so these run a fragment as its own rerun would
(`auth._fragment_rerun` says so); a real browser's fragment rerun is what
test_dashboard_browser.py's verdict by keyboard goes through."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from shrinkwatch.settings import Settings
from streamlit_app import auth
from tests.streamlit_app.conftest import sign_in
from tests.support import settings_file
from warehouse.accounts import scope_of
from warehouse.db import connect
from warehouse.scope import Scope
from warehouse.sessions import end_session, session_user


def a_page_part() -> None:
    """A page with one fragment, run as that fragment's own rerun would run it."""
    import streamlit as st

    from streamlit_app import auth

    st.session_state["runs"] = st.session_state.get("runs", 0) + 1

    @auth.fragment
    def part() -> None:
        st.write("store data")

    part()


def as_fragment_rerun(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Settings, token: str, before: auth.SignedIn
) -> AppTest:
    monkeypatch.setenv("SHRINKWATCH_SETTINGS_FILE", str(settings_file(settings, tmp_path / "s.yaml")))
    monkeypatch.setattr(auth, "_fragment_rerun", lambda: True)
    st.cache_resource.clear()
    at = AppTest.from_function(a_page_part, default_timeout=30)
    at.session_state[auth.TOKEN_KEY] = token
    at.session_state[auth.SIGNED_IN_KEY] = before
    return at.run()


def signed_in(settings: Settings, token: str) -> auth.SignedIn:
    with connect(settings.database_dsn) as conn:
        user = session_user(conn, token)
        assert user is not None
        return auth.SignedIn(user, scope_of(conn, user), token)


def shown(at: AppTest) -> str:
    return " ".join(str(e.value) for e in [*at.title, *at.markdown])


def test_a_fragment_rerun_of_an_ended_session_goes_to_the_sign_in_form(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, two_stores: Settings
) -> None:
    token = sign_in(two_stores)
    before = signed_in(two_stores, token)
    with connect(two_stores.database_dsn) as conn:
        end_session(conn, token)
    at = as_fragment_rerun(monkeypatch, tmp_path, two_stores, token, before)
    assert not at.exception, at.exception
    assert at.title[0].value == "Signed out"
    assert "store data" not in shown(at)
    assert any("/signout" in str(element.proto) for element in at.get("html"))


def test_a_fragment_rerun_of_an_open_session_runs_the_fragment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, two_stores: Settings
) -> None:
    token = sign_in(two_stores)
    at = as_fragment_rerun(monkeypatch, tmp_path, two_stores, token, signed_in(two_stores, token))
    assert not at.exception, at.exception
    assert "store data" in shown(at) and "Signed out" not in shown(at)
    assert at.session_state["runs"] == 1


def test_an_account_that_sees_other_stores_now_gets_the_whole_page_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, two_stores: Settings
) -> None:
    """(A new store in the chain widens an analyst's scope without ending the session.)"""
    token = sign_in(two_stores)
    now = signed_in(two_stores, token)
    before = auth.SignedIn(now.user, Scope.of("store-001"), token)
    at = as_fragment_rerun(monkeypatch, tmp_path, two_stores, token, before)
    assert not at.exception, at.exception
    assert at.session_state[auth.SIGNED_IN_KEY].scope == now.scope == Scope.of("store-001", "store-002")
    assert at.session_state["runs"] == 2 and "store data" in shown(at)
