"""No secret at rest in clear, none in a log: whole runs of the services that use secrets,
each secret given as ${VAR} (the site file's webhook secret and Apprise URL; the settings
file's SMTP password, Twilio token and single sign-on client secret) and set only in the
environment of the processes. Each secret does its work (the servers check them); then
everything the commands printed, every file the run wrote (logs, settings and site files)
and a dump of the whole database are searched for each secret's value: none may appear."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import signal
import subprocess
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import yaml

from shrinkwatch.contracts import encode
from shrinkwatch.settings import Settings
from tests.alerts.conftest import PASSWORD, USER, Mailbox
from tests.alerts.local_servers import ACCOUNT_SID, AUTH_TOKEN, twilio_api, webhook_receiver
from tests.factories import incident
from tests.streamlit_app.oidc_provider import CLIENT_ID, CLIENT_SECRET, running_provider
from tests.streamlit_app.test_sso import sign_in_with_sso
from tests.support import cli_env, free_port, produce, run_cli, spawn_cli, wait_for
from warehouse.accounts import add_user
from warehouse.db import connect


def _files(folder: Path) -> dict[str, str]:
    """Every file under `folder` as text."""
    return {str(p): p.read_text(errors="replace") for p in sorted(folder.rglob("*")) if p.is_file()}


def _database(settings: Settings) -> str:
    """The whole database's data as text (pg_dump)."""
    dump = subprocess.run(
        [str(settings.postgres_bin / "pg_dump"), "--data-only", "--dbname", settings.database_dsn],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dump.stdout


def _leaks(searched: dict[str, str], places: dict[str, str]) -> list[str]:
    """'SECRET in PLACE' for each secret's value found somewhere."""
    return [
        f"{name} in {where}"
        for where, text in places.items()
        for name, value in searched.items()
        if value in text
    ]


def _site(hook_url: str) -> str:
    recipients = [
        {
            "id": "ana",
            "name": "Ana",
            "channels": ["email", "sms"],
            "email": "ana@example.com",
            "phone": "+447700900123",
            "stores": ["store-001"],
        },
        {
            "id": "feed",
            "name": "Ops feed",
            "channels": ["webhook"],
            "stores": ["store-001"],
            "webhook_url": f"{hook_url}/in",
            "webhook_secret": "${HOOK_SECRET}",
        },
        {
            "id": "chat",
            "name": "Team chat",
            "channels": ["apprise"],
            "stores": ["store-001"],
            "apprise_url": "${CHAT_URL}",
        },
    ]
    stores = [{"id": "store-001", "name": "Leeds", "timezone": "Europe/London"}]
    return yaml.safe_dump({"stores": stores, "alerts": {"recipients": recipients}}, sort_keys=False)


def _outbox(settings: Settings) -> list[dict[str, object]]:
    with connect(settings.database_dsn) as conn:
        return conn.execute(
            "SELECT recipient_id, channel, reason, status, attempts, last_error FROM alert_outbox ORDER BY id"
        ).fetchall()


def test_a_full_alerts_run_keeps_every_secret_out_of_output_files_and_the_database(
    settings: Settings, certificate: tuple[Path, Path], starttls_server: Mailbox, tmp_path: Path
) -> None:
    hook_secret, chat_token = secrets.token_hex(16), secrets.token_hex(16)
    with twilio_api() as twilio, webhook_receiver() as hook, webhook_receiver() as chat:
        chat_url = f"json://shrinkwatch:{chat_token}@{chat.url.removeprefix('http://')}/chat"
        environment = {
            "HOOK_SECRET": hook_secret,
            "CHAT_URL": chat_url,
            "SMTP_PASS": PASSWORD,
            "TWILIO_TOKEN": AUTH_TOKEN,
            "SSO_SECRET": CLIENT_SECRET,
        }
        searched = {**environment, "CHAT_TOKEN": chat_token}
        ready = settings.model_copy(
            update={
                "smtp_host": "127.0.0.1",
                "smtp_port": starttls_server.port,
                "smtp_security": "starttls",
                "smtp_ca_file": certificate[0],
                "smtp_user": USER,
                "smtp_password": "${SMTP_PASS}",
                "twilio_account_sid": ACCOUNT_SID,
                "twilio_auth_token": "${TWILIO_TOKEN}",
                "twilio_from": "+441130000000",
                "twilio_api_base": twilio.url,
                "sso_issuer": "https://id.example.com",
                "sso_client_id": CLIENT_ID,
                "sso_client_secret": "${SSO_SECRET}",
                "dashboard_public_url": "https://sw.example.com",
                "log_level": "DEBUG",  # the most a log says
            }
        )
        env = {**cli_env(ready, tmp_path), **environment}
        site = tmp_path / "site.yaml"
        site.write_text(_site(hook.url))
        said: dict[str, str] = {}

        def shrinkwatch(*args: str) -> str:
            done = run_cli(list(args), env=env)
            said[" ".join(args)] = done.stdout + done.stderr
            assert done.returncode == 0, done.stdout + done.stderr
            return done.stdout

        shrinkwatch("sites", "apply", str(site))
        assert "2 recipient(s)" not in shrinkwatch("alerts", "run", "--check")  # all three, and no problem
        assert shrinkwatch("alerts", "test", "--recipient", "ana") == "email: sent\nsms: sent\n"
        assert shrinkwatch("alerts", "test", "--recipient", "feed") == "webhook: sent\n"
        assert shrinkwatch("alerts", "test", "--recipient", "chat") == "apprise: sent\n"

        # The dispatcher: the webhook and the chat refuse at first (what is logged and kept of
        # a failure is searched too), then take the messages after the backoff.
        hook.status = chat.status = 500
        log = tmp_path / "alerts-run.log"
        dispatcher = spawn_cli(["alerts", "run"], env, log)
        try:
            produce(
                ready,
                ready.topic("incidents"),
                [
                    (
                        b"i1",
                        encode(
                            incident(1, incident_id="i1", risk_level="high", started_at=datetime.now(UTC))
                        ),
                    )
                ],
            )
            failures = wait_for(
                lambda: (
                    len(rows := [r for r in _outbox(ready) if r["reason"] == "new" and r["last_error"]]) == 2
                    and rows
                ),
                60,
                what="the webhook's and the chat's refusals",
            )
            failed = json.dumps(_outbox(ready), default=str)
            hook.status = chat.status = 200
            wait_for(
                lambda: [r["status"] for r in _outbox(ready) if r["reason"] == "new"] == ["sent"] * 4,
                90,
                what="every alert sent",
            )
        finally:
            dispatcher.send_signal(signal.SIGTERM)
            assert dispatcher.wait(timeout=30) == 0

    # Each secret did its work: the servers check the password, the token, the signature and
    # the chat's login.
    assert [to for to, _message in starttls_server.received] == [["ana@example.com"]] * 2
    assert len(twilio.requests) == 2
    for call in hook.requests:
        signature = "sha256=" + hmac.new(hook_secret.encode(), call["body"], hashlib.sha256).hexdigest()
        assert call["headers"]["X-Shrinkwatch-Signature"] == signature
    login = "Basic " + base64.b64encode(f"shrinkwatch:{chat_token}".encode()).decode()
    assert {call["headers"]["Authorization"] for call in chat.requests} == {login}
    assert {r["recipient_id"] for r in failures} == {"feed", "chat"}
    with connect(ready.database_dsn) as conn:
        stored = conn.execute(
            "SELECT id, webhook_secret, apprise_url FROM alert_recipients ORDER BY id"
        ).fetchall()
    assert [(r["id"], r["webhook_secret"], r["apprise_url"]) for r in stored] == [
        ("ana", None, None),
        ("chat", None, "${CHAT_URL}"),
        ("feed", "${HOOK_SECRET}", None),
    ]

    places = {
        **said,
        "the outbox while failing": failed,
        "the database": _database(ready),
        **_files(tmp_path),
    }
    assert str(log) in places and any("alerts-run" in p for p in places)
    assert _leaks(searched, places) == []


def test_the_sign_in_client_secret_is_read_when_used_and_never_kept(
    settings: Settings, tmp_path: Path
) -> None:
    with running_provider() as provider:
        ready = settings.model_copy(
            update={
                "sso_issuer": provider.url,
                "sso_client_id": CLIENT_ID,
                "sso_client_secret": "${SSO_SECRET}",
                "log_level": "DEBUG",
            }
        )
        with connect(ready.database_dsn) as conn:
            add_user(conn, "ana", "analyst", password=None, email="ana@example.com")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = tmp_path / "app.log"
        env = {**cli_env(ready, tmp_path), "SSO_SECRET": CLIENT_SECRET}
        app = spawn_cli(["app", "--port", str(port)], env, log)
        try:
            wait_for(lambda: _healthy(url), 90, what="the dashboard")
            # The whole round trip: the provider's token endpoint checks the client secret.
            done = sign_in_with_sso(url)
            assert done.url == f"{url}/review" and done.status_code == 200
        finally:
            app.send_signal(signal.SIGTERM)
            app.wait(timeout=20)
    places = {"the database": _database(ready), **_files(tmp_path)}
    assert str(log) in places
    assert _leaks({"SSO_SECRET": CLIENT_SECRET}, places) == []


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
