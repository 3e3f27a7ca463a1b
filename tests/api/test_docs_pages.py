"""The schema's pages work where there is no internet (a store box, CI): /docs (Swagger UI)
and /redoc (ReDoc) name only files this server serves, and it serves each of them; the
pages carry a policy that keeps the browser on this server. In a real browser against
`shrinkwatch api`, with every request elsewhere refused, each page draws every operation of
the schema, and nothing was asked of anywhere else."""

from __future__ import annotations

import re
import shutil
import signal
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from shrinkwatch.settings import Settings, load_settings
from tests.api.conftest import answers
from tests.support import cli_env, free_port, spawn_cli, wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGES = ("/docs", "/redoc")
# The type each kind of file the pages name is served as.
TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


class _Addresses(HTMLParser):
    """Every address an HTML page names in an attribute (src, href, ReDoc's spec-url)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in ("src", "href", "spec-url") and value]


def addresses(html: str) -> list[str]:
    """The addresses a page names: its attributes', and the schema's that Swagger UI's
    starting script names (`url: '/openapi.json'`)."""
    parser = _Addresses()
    parser.feed(html)
    return parser.found + re.findall(r"\burl: '([^']*)'", html)


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(load_settings(None)))  # nothing connects until a request needs it


@pytest.mark.parametrize("page", PAGES)
def test_a_page_names_only_files_this_server_serves(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert not re.search(r"(https?:)?//", response.text), response.text  # no address elsewhere
    named = addresses(response.text)
    assert "/openapi.json" in named and any(a.endswith(".js") for a in named), named
    for address in named:
        assert address.startswith("/") and urlsplit(address).netloc == "", address
        served = client.get(address)
        assert served.status_code == 200, address
        assert served.headers["content-type"].startswith(TYPES[Path(address).suffix]), address
        assert len(served.content) > 100, address
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy


def test_the_files_need_no_token_and_only_they_are_served(client: TestClient) -> None:
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200  # no Authorization
    assert client.get("/docs-assets/nothing.js").status_code == 404


@pytest.fixture
def api_url(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """`shrinkwatch api` on a free port (its pages need no data)."""
    port = free_port()
    proc = spawn_cli(["api", "--port", str(port)], cli_env(settings, tmp_path), tmp_path / "api.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(url, proc), 90, what="shrinkwatch api")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


@pytest.mark.services
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make install adds it)")
def test_the_pages_draw_every_operation_in_a_browser_with_no_internet(api_url: str) -> None:
    from playwright.sync_api import Route, expect

    from streamlit_app.browser import browser_page

    schema = httpx.get(f"{api_url}/openapi.json", timeout=30).json()
    operations = sum(len(item) for item in schema["paths"].values())
    here = urlsplit(api_url).netloc
    elsewhere: list[str] = []

    def only_here(route: Route) -> None:
        if urlsplit(route.request.url).netloc == here:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    with browser_page() as page:
        page.route("**/*", only_here)
        page.goto(f"{api_url}/docs")
        expect(page.locator(".opblock")).to_have_count(operations, timeout=60_000)
        expect(page.get_by_role("button", name="Authorize")).to_be_visible()
        page.goto(f"{api_url}/redoc")
        expect(page.locator("[data-section-id^='operation/']")).to_have_count(operations, timeout=60_000)
    assert elsewhere == []
