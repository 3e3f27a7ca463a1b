"""A client of the Shrinkwatch API to copy and adapt (docs/API.md): list incidents with filters,
every page; fetch one incident with its evidence links; download its snapshot (or clip);
record a verdict. Python 3.11 or later, the standard library only.

    export SHRINKWATCH_API_TOKEN=swt_...     # from `shrinkwatch tokens add`
    python api_client.py incidents --levels high --review unreviewed --first-day 2026-11-01 > high.jsonl
    python api_client.py incident 9f1c2e7a0b
    python api_client.py snapshot 9f1c2e7a0b --out 9f1c2e7a0b.jpg
    python api_client.py --token-variable REVIEW_TOKEN verdict 9f1c2e7a0b confirmed --note "Seen at the exit."

The token is read from an environment variable, never from the command line (where other
users of the machine, and the shell's history, would see it). What each refusal means, and
what this client does about it (docs/API.md, "Errors"):

    401  the token is missing, wrong, revoked or expired: stop and say so
    403  the token lacks a permission (`review` for a verdict): stop and say which
    404  no such incident, or one outside the token's stores (the API does not tell which)
    422  a parameter the API refused: its message names it
    503  the database is not answering: wait as Retry-After says, try again (--retries times)

Exit status: 0 done; 1 the API refused, or could not be reached; 2 a usage error.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_API = "http://127.0.0.1:8600"
TOKEN_VARIABLE = "SHRINKWATCH_API_TOKEN"
FILTERS = ("stores", "cameras", "types", "levels", "statuses", "review", "first_day", "last_day", "min_score")
RETRY_AFTER_DEFAULT_S = 5.0
RETRY_AFTER_MAX_S = 300.0


class ApiError(Exception):
    """The API refused a request, or could not be reached; the message says why."""


def say(message: str) -> None:
    """Progress and problems go to stderr, so stdout holds only the answers."""
    print(message, file=sys.stderr, flush=True)


def retry_after(value: str | None) -> float:
    """Seconds to wait, from a Retry-After header (seconds, or an HTTP date)."""
    if not value:
        return RETRY_AFTER_DEFAULT_S
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (email.utils.parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return RETRY_AFTER_DEFAULT_S
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)


def problem(error: urllib.error.HTTPError) -> str:
    """The `detail` of the API's error answer (every error is `{"detail": "..."}`)."""
    try:
        detail = json.loads(error.read())["detail"]
    except (ValueError, KeyError, TypeError):
        return str(error.reason)
    return str(detail)


def explain(status: int, detail: str) -> str:
    """What a refusal means to whoever runs this."""
    if status == 401:
        return f"401: the token was refused ({detail}); check it, or make one with `shrinkwatch tokens add`"
    if status == 403:
        return f"403: {detail} (ask for a token with that permission)"
    if status == 404:
        return "404: not found, or not in the token's stores (the API answers the two alike)"
    if status == 422:
        return f"422: the API refused a parameter: {detail}"
    return f"{status}: {detail}"


class Client:
    """The API at `api` with one token; a 503 is retried after its Retry-After."""

    def __init__(self, api: str, token: str, *, retries: int = 3, timeout_s: float = 60.0) -> None:
        self.api = api.rstrip("/")
        self.token = token
        self.retries = retries
        self.timeout_s = timeout_s

    def send(self, method: str, path: str, params: dict[str, str] | None = None, body: Any = None) -> bytes:
        """The answer's body to one request (ApiError for a refusal)."""
        url = f"{self.api}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        retried = 0
        while True:
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    content: bytes = response.read()
                    return content
            except urllib.error.HTTPError as error:
                detail = problem(error)
                if error.code != 503:
                    raise ApiError(explain(error.code, detail)) from None
                if retried == self.retries:
                    msg = f"503: {detail} (still, after {retried} retries)"
                    raise ApiError(msg) from None
                wait = retry_after(error.headers.get("Retry-After"))
                say(f"503: {detail}; trying again in {wait:g} s")
                time.sleep(wait)
                retried += 1
            except urllib.error.URLError as error:
                msg = f"cannot reach the API at {self.api}: {error.reason}"
                raise ApiError(msg) from None

    def json(self, method: str, path: str, params: dict[str, str] | None = None, body: Any = None) -> Any:
        return json.loads(self.send(method, path, params, body))

    def incidents(self, filters: dict[str, str], page_size: int = 500) -> Iterator[dict[str, Any]]:
        """Every incident matching the filters, newest first, page after page (each page's
        `next_cursor` passed back as `cursor` with the same filters, until it is null)."""
        params = {**filters, "limit": str(page_size)}
        while True:
            page = self.json("GET", "/v1/incidents", params)
            yield from page["items"]
            if page["next_cursor"] is None:
                return
            params["cursor"] = page["next_cursor"]

    def incident(self, incident_id: str) -> dict[str, Any]:
        """One incident with its signals, its verdict and links to its evidence files."""
        found: dict[str, Any] = self.json("GET", f"/v1/incidents/{quote(incident_id)}")
        return found

    def evidence(self, incident: dict[str, Any], file: str) -> bytes | None:
        """An evidence file of the incident by its link (None where it has none: not saved
        yet, or purged by the store's retention). Each fetch is in the evidence access log."""
        link = next((e for e in incident["evidence"] if e["file"] == file), None)
        return None if link is None else self.send("GET", link["href"])

    def verdict(self, incident_id: str, verdict: str, note: str | None) -> dict[str, Any]:
        """Record `confirmed` or `rejected` (needs a token with `review`); the incident as it now is."""
        body = {"verdict": verdict} | ({"note": note} if note else {})
        found: dict[str, Any] = self.json("POST", f"/v1/incidents/{quote(incident_id)}/verdict", body=body)
        return found


def quote(incident_id: str) -> str:
    return urllib.parse.quote(incident_id, safe="")


# -- the command line ------------------------------------------------------------------------------
def list_incidents(client: Client, args: argparse.Namespace) -> None:
    filters = {name: str(getattr(args, name)) for name in FILTERS if getattr(args, name) is not None}
    count = 0
    for item in client.incidents(filters, args.page_size):
        print(json.dumps(item), flush=True)
        count += 1
    say(f"{count} incident(s)")


def show_incident(client: Client, args: argparse.Namespace) -> None:
    print(json.dumps(client.incident(args.incident_id), indent=2))


def save_evidence(client: Client, args: argparse.Namespace) -> None:
    file = "clip.mp4" if args.clip else "snapshot.jpg"
    content = client.evidence(client.incident(args.incident_id), file)
    if content is None:
        msg = f"{args.incident_id} has no {file} to fetch (not saved yet, or purged by retention)"
        raise ApiError(msg)
    out = args.out or Path(f"{args.incident_id}-{file}")
    out.write_bytes(content)
    print(f"saved {file} of {args.incident_id} to {out} ({len(content)} bytes)")


def record_verdict(client: Client, args: argparse.Namespace) -> None:
    now = client.verdict(args.incident_id, args.verdict, args.note)
    print(f"{now['incident_id']}: {now['review']} by {now['reviewed_by']} at {now['reviewed_at']}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        allow_abbrev=False,  # `--token swt_...` must not be taken for --token-variable
        description="List, fetch and review Shrinkwatch incidents through the API.",
        epilog=f"The token is read from ${TOKEN_VARIABLE} (or the variable --token-variable names).",
    )
    top.add_argument(
        "--api", default=os.environ.get("SHRINKWATCH_API_URL", DEFAULT_API), help="the API's address"
    )
    top.add_argument(
        "--token-variable",
        default=TOKEN_VARIABLE,
        metavar="NAME",
        help=f"the environment variable that holds the token (default {TOKEN_VARIABLE})",
    )
    top.add_argument("--retries", type=int, default=3, help="times to retry a 503 (default 3)")
    commands = top.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("incidents", help="every matching incident, newest first, as JSON lines")
    for name in ("stores", "cameras", "types", "levels", "statuses", "review"):
        listing.add_argument(f"--{name}", metavar="A,B", help="comma-separated")
    listing.add_argument("--first-day", dest="first_day", metavar="YYYY-MM-DD", help="store-local, inclusive")
    listing.add_argument("--last-day", dest="last_day", metavar="YYYY-MM-DD", help="store-local, inclusive")
    listing.add_argument(
        "--min-score", dest="min_score", type=float, metavar="0..1", help="risk score at least"
    )
    listing.add_argument("--page-size", type=int, default=500, help="incidents a page, 1..500 (default 500)")
    listing.set_defaults(run=list_incidents)

    one = commands.add_parser("incident", help="one incident, with its evidence links, as JSON")
    one.add_argument("incident_id")
    one.set_defaults(run=show_incident)

    snapshot = commands.add_parser("snapshot", help="download an incident's snapshot (or its clip)")
    snapshot.add_argument("incident_id")
    snapshot.add_argument("--clip", action="store_true", help="the clip, not the snapshot")
    snapshot.add_argument("--out", type=Path, help="where to save it (default ID-snapshot.jpg)")
    snapshot.set_defaults(run=save_evidence)

    verdict = commands.add_parser("verdict", help="confirm or reject an incident (a token with `review`)")
    verdict.add_argument("incident_id")
    verdict.add_argument("verdict", choices=("confirmed", "rejected"))
    verdict.add_argument("--note", help="why (up to 2,000 characters)")
    verdict.set_defaults(run=record_verdict)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", args.token_variable):  # (a token here would be echoed below)
        say("--token-variable takes the name of an environment variable (REVIEW_TOKEN), not a token")
        return 2
    token = os.environ.get(args.token_variable, "").strip()
    if not token:
        say(f"set {args.token_variable} to an API token (`shrinkwatch tokens add`)")
        return 2
    try:
        args.run(Client(args.api, token, retries=args.retries), args)
    except ApiError as error:
        say(str(error))
        return 1
    except BrokenPipeError:  # the reader stopped reading (`... | head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
