"""Local stand-ins for outside services the alert tests talk to: an HTTP server that answers
like Twilio's Messages API (used through the real `twilio` client), and a webhook receiver."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from tests.support import QuietHandler, serving

ACCOUNT_SID, AUTH_TOKEN = "AC" + "0" * 32, "test-auth-token"


@dataclass
class Recorded:
    """What a local server received, and what it answers next."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


def _twilio_handler(state: Recorded) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                self.send_json(401, {"code": 20003, "message": "Authenticate", "status": 401})
                return
            if self.path != f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json":
                self.send_json(
                    404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
                )
                return
            form = {
                k: v[0]
                for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()
            }
            if not form.get("To", "").startswith("+"):
                self.send_json(
                    400,
                    {
                        "code": 21211,
                        "message": f"The 'To' number {form.get('To')} is not a valid phone number.",
                        "status": 400,
                    },
                )
                return
            if state.status >= 500:
                self.send_json(
                    state.status, {"code": 20500, "message": "Internal Server Error", "status": state.status}
                )
                return
            state.requests.append(form)
            sid = "SM" + secrets.token_hex(16)
            self.send_json(
                201,
                {
                    "sid": sid,
                    "account_sid": ACCOUNT_SID,
                    "to": form["To"],
                    "from": form.get("From"),
                    "body": form["Body"],
                    "status": "queued",
                    "num_segments": "1",
                    "direction": "outbound-api",
                    "api_version": "2010-04-01",
                    "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
                },
            )

    return Handler


def _webhook_handler(state: Recorded) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@contextmanager
def twilio_api() -> Iterator[Recorded]:
    """A server answering like Twilio's Messages API (status 201 JSON, its error codes)."""
    state = Recorded()
    with serving(_twilio_handler(state)) as state.url:
        yield state


@contextmanager
def webhook_receiver() -> Iterator[Recorded]:
    """A receiver that records every POST and answers `status`."""
    state = Recorded()
    with serving(_webhook_handler(state)) as state.url:
        yield state
