"""The sign-in gate's rules, case by case."""

from __future__ import annotations

import pytest

from streamlit_app.gate_rules import (
    SECURE_COOKIE,
    client_address,
    cookie_name,
    is_closed,
    is_open,
    safe_next,
    same_origin,
    session_cookie,
)


@pytest.mark.parametrize(
    ("path", "answers_signed_out"),
    [
        ("/signin", True),
        ("/signout", True),
        ("/_stcore/health", True),
        ("/static/js/index.js", True),
        ("/", False),
        ("/review", False),
        ("/_stcore/stream", False),
        ("/media/abc.jpg", False),
        ("/_stcore/upload_file/x", False),
        ("/signin/../media/abc.jpg", False),
        ("/staticx", False),
    ],
)
def test_only_sign_in_health_and_the_bundle_answer_signed_out(path: str, answers_signed_out: bool) -> None:
    assert is_open(path) is answers_signed_out


@pytest.mark.parametrize(
    ("path", "closed"),
    [
        ("/media/abc.jpg", True),
        ("/media/", True),
        ("/_stcore/agent/interact", True),
        ("/_stcore/agent/openapi.json", True),
        ("/auth/login", True),
        ("/oauth2callback", True),
        ("/_stcore/metrics", True),
        ("/mediax", False),
        ("/evidence/inc-1/snapshot.jpg", False),
        ("/_stcore/stream", False),
    ],
)
def test_streamlits_media_store_agent_api_login_and_metrics_answer_nobody(path: str, closed: bool) -> None:
    assert is_closed(path) is closed


def test_the_cookie_is_host_prefixed_when_secure() -> None:
    assert cookie_name(secure=True) == SECURE_COOKIE == "__Host-shrinkwatch_session"
    assert cookie_name(secure=False) == "shrinkwatch_session"
    headers = [(b"cookie", b"shrinkwatch_session=plain; __Host-shrinkwatch_session=prefixed")]
    assert session_cookie(headers, SECURE_COOKIE) == "prefixed"
    assert session_cookie(headers) == "plain"


@pytest.mark.parametrize(
    ("value", "goes_to"),
    [
        (None, "/"),
        ("", "/"),
        ("/review?id=inc-1", "/review?id=inc-1"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("review", "/"),
    ],
)
def test_after_sign_in_only_paths_on_this_site(value: str | None, goes_to: str) -> None:
    assert safe_next(value) == goes_to


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        ("10.0.0.5", None, [], "10.0.0.5"),
        ("10.0.0.5", "1.2.3.4", [], "10.0.0.5"),  # not our proxy: its header proves nothing
        ("10.0.0.1", "1.2.3.4", ["10.0.0.1"], "1.2.3.4"),
        ("10.0.0.1", "6.6.6.6, 1.2.3.4", ["10.0.0.1"], "1.2.3.4"),  # the client made up the first
        ("10.0.0.1", "", ["10.0.0.1"], "10.0.0.1"),
    ],
)
def test_client_address_behind_a_proxy(
    peer: str, forwarded: str | None, trusted: list[str], client: str
) -> None:
    assert client_address(peer, forwarded, trusted) == client


def test_same_origin_and_cookie() -> None:
    assert same_origin("http://shop.example:8501", "shop.example:8501")
    assert not same_origin("http://evil.example", "shop.example:8501")
    assert not same_origin("null", "shop.example:8501")
    assert same_origin(None, "shop.example:8501")
    assert session_cookie([(b"cookie", b"a=1; shrinkwatch_session=tok-en; b=2")]) == "tok-en"
    assert session_cookie([(b"cookie", b"shrinkwatch_session=")]) is None
    assert session_cookie([(b"accept", b"text/html")]) is None
