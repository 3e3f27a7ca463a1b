"""docs/examples/api_client.py, the client a data team copies, run as its own process against a
real `shrinkwatch api` on the tests/api seed: it lists every page of the incidents a token may
see, newest first, with the filters it is given; fetches one incident with its evidence links
and downloads its files byte for byte; records a verdict with a reviewing token (read back
from PostgreSQL); and says what each refusal means (401, 403, 404, 422), retrying a 503 as
its Retry-After says before giving up. The token comes from an environment variable only."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shrinkwatch.settings import REPO_ROOT, Settings
from tests.api.conftest import BOSTON, CLIP_BYTES, LEEDS, SNAPSHOT_BYTES, answers, bearer, make_token, seed
from tests.support import cli_env, free_port, spawn_cli, wait_for
from warehouse.db import connect

pytestmark = pytest.mark.services

CLIENT = REPO_ROOT / "docs" / "examples" / "api_client.py"


@dataclass
class Server:
    url: str
    settings: Settings
    tokens: dict[str, str]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Settings], str]]:
    """Start `shrinkwatch api` with these settings on a free port; stopped afterwards."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(settings: Settings) -> str:
        port = free_port()
        log = tmp_path / f"api-{port}.log"
        procs.append(spawn_cli(["api", "--port", str(port)], cli_env(settings, tmp_path), log))
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(url, procs[-1]), 90, what="shrinkwatch api")
        return url

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


@pytest.fixture
def server(settings: Settings, serve: Callable[[Settings], str]) -> Server:
    """The seeded API, with tokens: `all` (ana's, every store, read only), `leeds` (mo's, Leeds,
    read and review), `reader` (mo's, read only)."""
    seed(settings)
    tokens = {
        "all": make_token(settings, "all", username="ana"),
        "leeds": make_token(settings, "leeds", username="mo", permissions=("read", "review")),
        "reader": make_token(settings, "reader", username="mo"),
    }
    return Server(serve(settings), settings, tokens)


def client(
    url: str, *args: str, token: str | None = None, variable: str = "SHRINKWATCH_API_TOKEN"
) -> subprocess.CompletedProcess[str]:
    """Run the example client with the token in the environment variable `variable`."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"}
    if token is not None:
        env[variable] = token
    return subprocess.run(
        [sys.executable, str(CLIENT), "--api", url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def listed(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line)["incident_id"] for line in result.stdout.splitlines()]


def test_help_names_the_commands_and_the_token_is_never_an_argument() -> None:
    shown = subprocess.run(
        [sys.executable, str(CLIENT), "--help"], capture_output=True, text=True, check=False
    )
    assert shown.returncode == 0, shown.stderr
    for command in ("incidents", "incident", "snapshot", "verdict", "SHRINKWATCH_API_TOKEN"):
        assert command in shown.stdout
    refused = client("http://127.0.0.1:9", "--token", "swt_x", "incidents", token="swt_x")
    assert refused.returncode == 2 and "error: " in refused.stderr  # there is no --token (nor --token-v...)
    pasted = client("http://127.0.0.1:9", "--token-variable", "swt_secret", "incidents")
    assert pasted.returncode == 2 and "swt_secret" not in pasted.stderr + pasted.stdout
    unset = client("http://127.0.0.1:9", "incidents")
    assert unset.returncode == 2 and "set SHRINKWATCH_API_TOKEN" in unset.stderr


def test_it_lists_every_page_in_the_api_s_order_with_filters(server: Server) -> None:
    truth = httpx.get(
        f"{server.url}/v1/incidents?limit=500", headers=bearer(server.tokens["all"]), timeout=30
    )
    expected = [item["incident_id"] for item in truth.json()["items"]]
    assert sorted(expected) == sorted(LEEDS["incidents"] + BOSTON["incidents"])

    every = client(server.url, "incidents", "--page-size", "2", token=server.tokens["all"])
    assert listed(every) == expected  # four pages of two, followed to the end, none twice
    assert "7 incident(s)" in every.stderr

    high = client(
        server.url, "incidents", "--stores", "store-001", "--levels", "high", token=server.tokens["all"]
    )
    assert listed(high) == ["l-0", "l-2", "l-4"]
    leeds = client(server.url, "incidents", "--page-size", "3", token=server.tokens["leeds"])
    assert listed(leeds) == LEEDS["incidents"]  # the token's stores only


def test_it_fetches_an_incident_and_its_files_and_records_a_verdict(server: Server, tmp_path: Path) -> None:
    shown = client(server.url, "incident", "l-0", token=server.tokens["all"])
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["incident_id"] == "l-0" and detail["store_name"] == "Leeds"
    assert [e["href"] for e in detail["evidence"]] == [
        "/v1/incidents/l-0/evidence/snapshot.jpg",
        "/v1/incidents/l-0/evidence/clip.mp4",
    ]

    snapshot, clip = tmp_path / "l-0.jpg", tmp_path / "l-0.mp4"
    saved = client(server.url, "snapshot", "l-0", "--out", str(snapshot), token=server.tokens["all"])
    assert saved.returncode == 0, saved.stderr
    assert snapshot.read_bytes() == SNAPSHOT_BYTES % b"l-0"
    assert f"to {snapshot}" in saved.stdout
    saved = client(server.url, "snapshot", "l-0", "--clip", "--out", str(clip), token=server.tokens["all"])
    assert saved.returncode == 0, saved.stderr
    assert clip.read_bytes() == CLIP_BYTES + b"l-0"
    none = client(server.url, "snapshot", "l-1", "--out", str(tmp_path / "x"), token=server.tokens["all"])
    assert none.returncode == 1 and "l-1 has no snapshot.jpg" in none.stderr

    note = "a shelf restock, not a theft"
    args = ("--token-variable", "REVIEW_TOKEN", "verdict", "l-1", "rejected", "--note", note)
    recorded = client(server.url, *args, token=server.tokens["leeds"], variable="REVIEW_TOKEN")
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stdout.startswith("l-1: rejected by mo at ")
    with connect(server.settings.database_dsn) as conn:
        row = conn.execute(
            "SELECT user_confirmed, reviewed_by, review_note FROM incidents WHERE incident_id = 'l-1'"
        ).fetchone()
    assert row == {"user_confirmed": False, "reviewed_by": "mo", "review_note": note}


def test_it_says_what_each_refusal_means(server: Server) -> None:
    refused = client(server.url, "verdict", "l-2", "confirmed", token=server.tokens["reader"])
    assert refused.returncode == 1
    assert refused.stderr.startswith("403: this token lacks the 'review' permission")
    elsewhere = client(server.url, "incident", "b-0", token=server.tokens["leeds"])
    assert elsewhere.returncode == 1 and elsewhere.stderr.startswith("404: not found, or not in the token's")
    misspelt = client(server.url, "incidents", "--levels", "hgih", token=server.tokens["all"])
    assert misspelt.returncode == 1
    assert misspelt.stderr.startswith("422: the API refused a parameter: levels: unknown value(s) 'hgih'")
    wrong = client(server.url, "incidents", token="swt_" + "x" * 40)
    assert wrong.returncode == 1 and wrong.stderr.startswith("401: the token was refused")
    assert wrong.stdout == ""
    with connect(server.settings.database_dsn) as conn:
        row = conn.execute("SELECT reviewed_by FROM incidents WHERE incident_id = 'l-2'").fetchone()
    assert row == {"reviewed_by": None}  # the 403 recorded nothing


def test_a_503_is_retried_after_its_retry_after_then_given_up(
    settings: Settings, serve: Callable[[Settings], str]
) -> None:
    nowhere = f"postgresql://shrinkwatch@127.0.0.1:{free_port()}/shrinkwatch"  # nothing listens there
    url = serve(settings.model_copy(update={"database_url": nowhere}))
    down = client(url, "--retries", "1", "incidents", token="swt_" + "x" * 40)
    assert down.returncode == 1, down.stderr
    assert down.stderr.splitlines() == [
        "503: the database is not answering; try again shortly; trying again in 5 s",
        "503: the database is not answering; try again shortly (still, after 1 retries)",
    ]
