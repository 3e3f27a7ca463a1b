"""Riding out an outage of something a long-running service depends on (Kafka, PostgreSQL).

The policy, the same for every service: never exit because a dependency went away; wait and
try again with exponential backoff (0.5 s doubling to 10 s, so a restarted server is noticed
within seconds, and a long outage costs one try every 10 s); say so once when it goes away
and once when it is back, with how long it was gone, never once per retry.

    outage = Outage("PostgreSQL", say=log.warning)
    while not stop.is_set():
        try:
            work()
            outage.back()
        except DatabaseUnreachable as exc:
            outage.wait(exc, stop)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from shrinkwatch.logs import scrub

FIRST_WAIT_S = 0.5
LONGEST_WAIT_S = 10.0


class Outage:
    """The state of one dependency as one service sees it: up, or gone since when."""

    def __init__(
        self,
        what: str,
        say: Callable[[str], None],
        *,
        first_wait_s: float = FIRST_WAIT_S,
        longest_wait_s: float = LONGEST_WAIT_S,
    ) -> None:
        self.what, self._say = what, say
        self._first, self._longest = first_wait_s, longest_wait_s
        self._next_wait = first_wait_s
        self.since: float | None = None  # time.monotonic() when it went away; None while up
        self.outages = 0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException | str) -> float:
        """Note a failed try; return how long to wait before the next one. The first failure
        of an outage is said (scrubbed of credentials), the others are not."""
        if self.since is None:
            self.since = time.monotonic()
            self.outages += 1
            detail = " ".join(str(error).split())[:300]
            self._say(f"{self.what} is not reachable ({scrub(detail)}); retrying until it is back")
        wait = self._next_wait
        self._next_wait = min(self._next_wait * 2, self._longest)
        return wait

    def wait(self, error: BaseException | str, stop: threading.Event | None = None) -> None:
        """`failed`, then sleep the backoff (woken early by `stop`)."""
        seconds = self.failed(error)
        if stop is None:
            time.sleep(seconds)
        else:
            stop.wait(seconds)

    def back(self) -> None:
        """Note a successful try; says it is back if it was gone."""
        if self.since is not None:
            gone = time.monotonic() - self.since
            self._say(f"{self.what} is back after {gone:.0f} s")
        self.since = None
        self._next_wait = self._first


# Exceptions that say a dependency is down, by the module and name of their class (or of a
# class they derive from): this package imports neither the warehouse nor the driver.
DEPENDENCY_DOWN = {
    ("warehouse.db", "DatabaseUnreachable"): "PostgreSQL",  # a connection refused or timed out
    ("psycopg", "OperationalError"): "PostgreSQL",  # a connection lost (see _lost_connection)
}


def _lost_connection(exc: BaseException) -> bool:
    """A psycopg OperationalError of a connection, not of a statement: no SQLSTATE (the
    connection broke), class 08 (connection exception) or 57P (the server shutting down or
    starting); not 57014, a statement cancelled or timed out."""
    state = getattr(exc, "sqlstate", None)
    return state is None or state.startswith(("08", "57P"))


def dependency_down(exc: BaseException) -> str | None:
    """Which dependency `exc` says is down ("PostgreSQL"), looking also at what it was raised
    from; None when it is a fault of the run itself."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for cls in type(current).__mro__:
            which = DEPENDENCY_DOWN.get((cls.__module__, cls.__qualname__))
            if which is not None and (cls.__module__ != "psycopg" or _lost_connection(current)):
                return which
        current = current.__cause__ or current.__context__
    return None
