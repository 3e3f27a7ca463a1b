"""Who is signed in, for the pages: the account and the scope every query takes.

The web server (streamlit_app.server) lets no request in without an open session; the pages
check again on every run, and a part of a page that reruns by itself (`fragment`, `live`)
before each of its own reruns, so a session that ends while a tab is open (sign-out
elsewhere, a disabled account, an expiry) stops showing data at the next refresh. The token
comes from the browser's cookie; a test that drives a page without a browser (Streamlit's
AppTest) puts a real session's token in `st.session_state[TOKEN_KEY]` instead, and it is
checked in PostgreSQL all the same. While PostgreSQL does not answer, no session can be
checked: a page, or a part of one, says so and shows nothing else (streamlit_app.unreachable).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import streamlit as st

from shrinkwatch.wording import as_words
from streamlit_app import data, text, unreachable
from streamlit_app.gate_rules import cookie_name
from warehouse.accounts import scope_of
from warehouse.scope import Scope, User
from warehouse.sessions import end_session, session_user

TOKEN_KEY = "shrinkwatch_token"
SIGNED_IN_KEY = "shrinkwatch_signed_in"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class SignedIn:
    """The signed-in account and what it may see."""

    user: User
    scope: Scope
    token: str


def _token() -> str | None:
    cookie = st.context.cookies.get(cookie_name(data.settings().dashboard_secure_cookie))
    if isinstance(cookie, str) and cookie:  # (AppTest has no browser: a stand-in object)
        return cookie
    token = st.session_state.get(TOKEN_KEY)
    return token if isinstance(token, str) and token else None


def current() -> SignedIn | None:
    """The signed-in account now (asked in PostgreSQL), or None."""
    token = _token()
    if not token:
        return None
    conn = data.connection()
    user = session_user(conn, token)
    if user is None:
        return None
    _note_tab(token)
    return SignedIn(user, scope_of(conn, user), token)


def _note_tab(token: str) -> None:
    """Tell the web server which session this tab runs under: when the session ends, the
    server runs the page once more, so that it says "Signed out" (streamlit_app.sessions)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    from streamlit_app.sessions import STREAMS

    ctx = get_script_run_ctx()
    if ctx is not None:
        STREAMS.note_tab(token, ctx.session_id)


def _signed_out() -> None:
    st.title("Signed out")
    st.write("Your session has ended. Sign in again to go on.")
    st.link_button("Sign in", "/signin", type="primary")
    # Take the browser there (and let the server forget the cookie).
    st.html("<script>window.location.replace('/signout');</script>", unsafe_allow_javascript=True)
    st.stop()


def require() -> SignedIn:
    """The signed-in account, or the page stops with a link to sign in."""
    signed = current()
    if signed is None:
        _signed_out()
        raise AssertionError  # st.stop() does not return
    return signed


def page() -> SignedIn:
    """The account app.py checked for this run (pages call this first)."""
    signed = st.session_state.get(SIGNED_IN_KEY)
    if not isinstance(signed, SignedIn):
        return require()
    return signed


def fragment(fn: F) -> F:
    """`st.fragment` for a part of a page that reruns by itself when one of its widgets
    changes. Such a rerun runs neither app.py nor the rest of the page, so it asks for the
    session first, as app.py does before every full run: a session that has ended goes the
    same way (it says "Signed out" and goes to the sign-in form), and an account that now
    sees other stores than when the page ran gets the whole page run again."""
    return _checked_fragment(fn, None)


def live(run_every: float) -> Callable[[F], F]:
    """A live panel: a `fragment` that also reruns every `run_every` seconds."""
    return lambda fn: _checked_fragment(fn, run_every)


def _checked_fragment(fn: F, run_every: float | None) -> F:
    @functools.wraps(fn)  # (Streamlit tells fragments apart by module and name)
    def checked(*args: Any, **kwargs: Any) -> Any:
        own_rerun = _fragment_rerun()
        with unreachable.said(own_fragment_rerun=own_rerun):
            if own_rerun:
                _check_again()
            return fn(*args, **kwargs)

    return st.fragment(checked, run_every=run_every)  # type: ignore[return-value]


def _fragment_rerun() -> bool:
    """Whether this run is a fragment's own (on a full run app.py has just asked)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)


def _check_again() -> None:
    """app.py's session check, for a fragment's own rerun."""
    before = st.session_state.get(SIGNED_IN_KEY)
    signed = require()
    st.session_state[SIGNED_IN_KEY] = signed
    if not isinstance(before, SignedIn) or (before.user, before.scope) != (signed.user, signed.scope):
        st.rerun()  # the whole page, for the account as it is now


def sign_out(signed: SignedIn) -> None:
    """End the session everywhere, then let the server forget the cookie."""
    end_session(data.connection(), signed.token)
    st.session_state.pop(TOKEN_KEY, None)
    st.html("<script>window.location.replace('/signout');</script>", unsafe_allow_javascript=True)
    st.stop()


def sidebar(signed: SignedIn) -> None:
    """Who is signed in, what they see, and the sign-out button."""
    with st.sidebar:
        user = signed.user
        stores = ", ".join(user.stores) if user.role == "store_manager" else "all stores"
        role = as_words(user.role)
        st.caption(f"Signed in as **{text.markdown(user.label)}** · {role} · {text.markdown(stores)}")
        if st.button("Sign out", icon=":material/logout:", key="sign_out"):
            sign_out(signed)
