"""Sign-in throttling (owner of `sign_in_failures`): failed sign-ins per account and per
client address, and single sign-on starts per address.

After FREE_FAILURES failures within FAILURE_WINDOW, the next attempt must wait 30 s, then
twice as long after each further failure, up to the window. A throttled attempt is refused
without looking at the password (so guessing gains nothing). The check and the count are one
step: an attempt is recorded as a failure, under a lock on its account and address, before
its password is looked at (`count_attempt`), and that record is taken back only if it
succeeds (`forget_failures`); so eight guesses sent at once are counted as eight, and only
the first five are checked. Starting single sign-on is limited per address the same way
(FREE_FAILURES["sso"] starts in the window). `warehouse.accounts` checks the passwords.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shrinkwatch.errors import ShrinkwatchError
from warehouse.db import Connection

FAILURE_WINDOW = timedelta(minutes=15)
FREE_FAILURES = {"user": 5, "ip": 20, "sso": 20}
FIRST_WAIT = timedelta(seconds=30)


class AuthError(ShrinkwatchError):
    """A sign-in that did not succeed; the message can be shown as it is."""


class Throttled(AuthError):
    """Too many failed sign-ins: the next attempt may come after `retry_after`."""

    def __init__(self, message: str, retry_after: timedelta) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _wait(conn: Connection, kind: str, value: str) -> timedelta:
    """How long an attempt for this account or address must still wait (0: none)."""
    row = conn.execute(
        """SELECT count(*) AS n, max(at) AS last, now() AS now FROM sign_in_failures
           WHERE key = %s AND at > now() - %s""",
        (f"{kind}:{value}", FAILURE_WINDOW),
    ).fetchone()
    assert row is not None
    failures = int(row["n"])
    if failures < FREE_FAILURES[kind]:
        return timedelta(0)
    wait = min(FAILURE_WINDOW, FIRST_WAIT * 2 ** (failures - FREE_FAILURES[kind]))
    left: timedelta = row["last"] + wait - row["now"]
    return max(left, timedelta(0))


_WHAT = {
    "user": "failed sign-ins for this account",
    "ip": "failed sign-ins for this address",
    "sso": "single sign-on attempts from this address",
}


def count_attempt(conn: Connection, keys: list[tuple[str, str]]) -> list[int]:
    """Throttled if any of these (kind, value) keys must wait; otherwise record this attempt
    against each of them, and return the records' ids. Reading the counts and recording
    the attempt happen in one transaction holding a lock per key, so attempts sent in
    parallel are counted one after another and none slips past the limit. (The caller's
    open transaction is committed first: rolling it back must not undo the count.)"""
    conn.commit()
    with conn.transaction():
        for kind, value in sorted(keys):
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 17))", (f"{kind}:{value}",))
        for kind, value in keys:
            wait = _wait(conn, kind, value)
            if wait > timedelta(0):
                seconds = int(wait.total_seconds()) + 1
                msg = f"Too many {_WHAT[kind]}. Try again in {seconds} s."
                raise Throttled(msg, wait)
        rows = conn.execute(
            "INSERT INTO sign_in_failures (key) SELECT unnest(%s::text[]) RETURNING id",
            ([f"{kind}:{value}" for kind, value in keys],),
        ).fetchall()
    return [r["id"] for r in rows]


def count_sso_start(conn: Connection, *, client: str) -> None:
    """Record that single sign-on was started from this address; Throttled when it has
    started too many lately (each start costs a provider round trip and a stored request)."""
    count_attempt(conn, [("sso", client[:64])])


def take_back_sso_start(conn: Connection, *, client: str) -> None:
    """A single sign-on from this address succeeded: its start no longer counts (so a store's
    staff signing in at a shift change, behind one address, never lock each other out)."""
    with conn.transaction():
        conn.execute(
            """DELETE FROM sign_in_failures WHERE id = (
                   SELECT max(id) FROM sign_in_failures WHERE key = %s)""",
            (f"sso:{client[:64]}",),
        )


def forget_failures(conn: Connection, username: str, attempts: Iterable[int] = ()) -> None:
    """Forget the account's failed sign-ins and these attempts' records (a success, or a new
    password), in the caller's transaction."""
    conn.execute(
        "DELETE FROM sign_in_failures WHERE key = %s OR id = ANY(%s)", (f"user:{username}", list(attempts))
    )


def purge_failures(conn: Connection) -> int:
    """Forget failures past the throttling window; returns how many (in the caller's transaction)."""
    return conn.execute("DELETE FROM sign_in_failures WHERE at < now() - %s", (FAILURE_WINDOW,)).rowcount
