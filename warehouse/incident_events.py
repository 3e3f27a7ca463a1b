"""The incident change log (owner of `incident_events` and `incident_events_purged`): what the
API's live stream (GET /v1/events) reads, in an order that never loses a change.

PostgreSQL writes the log itself (migration 0022): a trigger on `incidents` adds one row per
change the API shows (a new incident, a new version, a verdict), in the transaction that makes
the change, with the incident as it then is (`state`), the store, that transaction's id
(`xid`, pg_current_xact_id(), an xid8 that never wraps) and a number from a sequence (`seq`);
and pg_notify('incident_events') wakes listeners when that transaction commits. No writer can
forget it, and a rolled-back change leaves no row.

A position in the log is (xid, seq); the log is read in that order. Why not by `seq` alone (or
by a timestamp): numbers are taken when a row is written, rows become visible when their
transaction commits, and the two orders differ. Transaction A takes seq 7, B takes seq 8 and
commits first; a reader that sees 8 and moves its cursor past it never reads 7, which commits a
moment later. The position fixes that by reading only what can no longer change:

- `horizon` = pg_snapshot_xmin(pg_current_snapshot()), taken in the very statement that reads
  the log: the oldest transaction id still running. Every transaction with a smaller id has
  ended (committed, its rows visible in that statement's snapshot, or rolled back, its rows
  never to be seen), so the rows with xid < horizon are all there are, for good.
- Every transaction running now has an id >= horizon, and every later one is given a larger id
  than any given so far, so >= horizon too: no row can ever appear below the horizon.
- A read returns the rows after the position and below the horizon, in (xid, seq) order. A
  row at or above the horizon waits (`held_back` says one has committed and waits), even if
  committed, until every older transaction has ended; then it is read, in its place in the
  order. So each row is read once, and none is passed over: a reader's position only moves
  over rows that are final. When a read returned everything below the horizon (not cut by its
  limit), the position moves to (horizon, 0): all below it was seen (seqs start at 1), and the
  next read starts there, not at rows of other stores that were already passed over.

The price is latency, never loss: a change is read once every transaction older than it has
ended, so a long writing transaction anywhere on the server (ids are server-wide; a session
that has written nothing has no id and holds nothing back) holds the stream back while it runs.
A read-only transaction holds nothing. The order is the order of xids, which is not quite the
order of commits; a consumer keeps an incident's highest version (CONTRACTS §3).

A new stream starts at `start_position`, now: at (horizon, 0), skipping the changes above the
horizon that had committed already (they are from before now; a change that commits later is
never among them, so none is missed). A resumed one starts after the position it was
given, which must be one this log could have given (`resume_check`: its xid below the next id
to be given).

Retention (`purge_events`): rows older than RETENTION are deleted, cut at a position, so the
log left is whole after it; the position is kept (`incident_events_purged`), and a stream
resumed from before it is told that it missed changes (`ResumeCheck.purged_through`).
Deleting an incident deletes its rows (ON DELETE CASCADE).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg

from warehouse.db import Connection
from warehouse.scope import Scope

CHANNEL = "incident_events"  # pg_notify's channel (payload: the store id)
RETENTION = timedelta(days=7)


@dataclass(frozen=True, order=True)
class Position:
    """A place in the log: after every row whose (xid, seq) is at most this."""

    xid: int
    seq: int


@dataclass(frozen=True)
class IncidentEvent:
    """One change: where it is in the log, and the incident as it left it (the `incidents`
    row's columns, times as ISO text)."""

    position: Position
    incident_id: str
    version: int
    store_id: str
    state: dict[str, Any]


@dataclass(frozen=True)
class Batch:
    """What one read found: the changes in order, the position to read from next, whether more
    are readable now (the read was cut by its limit), and whether a committed change waits for
    an older transaction to end (read again soon)."""

    events: list[IncidentEvent]
    position: Position
    more: bool
    held_back: bool


@dataclass(frozen=True)
class ResumeCheck:
    """Whether a position is one the log could have given, and where retention cut the log when
    that cut is after it (the changes between were deleted), else None."""

    valid: bool
    purged_through: Position | None


@dataclass(frozen=True)
class Start:
    """Where a stream that starts now begins: its position, and the changes after it that had
    committed already (`skip`, by seq: they are from before now; `skip_below_xid` bounds
    their ids, so a position at or past it needs the set no more)."""

    position: Position
    skip: frozenset[int] = frozenset()
    skip_below_xid: int = 0


def start_position(conn: Connection) -> Start:
    """Where a stream that starts now begins: after every change that was final, skipping
    those committed already above the horizon; every change that commits later comes."""
    row = conn.execute(
        """WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS horizon)
           SELECT h.horizon::text AS horizon,
                  (SELECT array_agg(e.seq) FROM incident_events e WHERE e.xid >= h.horizon) AS skip,
                  (SELECT max(e.xid)::text FROM incident_events e WHERE e.xid >= h.horizon) AS top
           FROM h"""
    ).fetchone()
    assert row is not None
    top = int(row["top"]) + 1 if row["top"] is not None else 0
    return Start(Position(int(row["horizon"]), 0), frozenset(row["skip"] or ()), top)


def resume_check(conn: Connection, position: Position) -> ResumeCheck:
    """Whether a stream can resume after `position` (its xid below the next transaction id to be
    given: an id no transaction has had cannot be one this log gave; or, with seq 0, that next
    id itself: the horizon an idle stream has read up to, which its keep-alives carry), and
    whether retention deleted changes after it."""
    row = conn.execute(
        """WITH s AS (SELECT pg_snapshot_xmax(pg_current_snapshot()) AS xmax)
           SELECT (%(xid)s::text::xid8 < s.xmax OR (%(xid)s::text::xid8 = s.xmax AND %(seq)s = 0)) AS valid,
                  p.xid::text AS purged_xid, p.seq AS purged_seq
           FROM s LEFT JOIN incident_events_purged p ON true""",
        {"xid": str(position.xid), "seq": position.seq},
    ).fetchone()
    assert row is not None
    purged = Position(int(row["purged_xid"]), row["purged_seq"]) if row["purged_xid"] is not None else None
    return ResumeCheck(bool(row["valid"]), purged if purged is not None and position < purged else None)


# The horizon and the rows after the position below it, in one statement (one snapshot).
_READ = """
WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS horizon)
SELECT h.horizon::text AS horizon,
       EXISTS (SELECT 1 FROM incident_events w
               WHERE w.xid >= h.horizon AND w.store_id = ANY(%(scope)s)) AS held_back,
       e.xid::text AS xid, e.seq, e.incident_id, e.version, e.store_id, e.state
FROM h LEFT JOIN LATERAL (
    SELECT * FROM incident_events e
    WHERE (e.xid, e.seq) > (%(xid)s::text::xid8, %(seq)s) AND e.xid < h.horizon
      AND e.store_id = ANY(%(scope)s) AND NOT (e.seq = ANY(%(skip)s))
    ORDER BY e.xid, e.seq
    LIMIT %(limit)s
) e ON true
ORDER BY e.xid, e.seq
"""


def read_events(
    conn: Connection, scope: Scope, after: Position, *, limit: int = 200, skip: frozenset[int] = frozenset()
) -> Batch:
    """The changes to incidents of the scope's stores after `after` that are final (see the
    module docstring), at most `limit`, in log order; not those whose seq is in `skip`."""
    if limit < 1:
        msg = f"limit: {limit} is below 1"
        raise ValueError(msg)
    rows = conn.execute(
        _READ,
        {
            "scope": sorted(scope.store_ids),
            "xid": str(after.xid),
            "seq": after.seq,
            "limit": limit,
            "skip": sorted(skip),
        },
    ).fetchall()
    events = [
        IncidentEvent(
            Position(int(row["xid"]), row["seq"]),
            row["incident_id"],
            row["version"],
            row["store_id"],
            row["state"],
        )
        for row in rows
        if row["xid"] is not None
    ]
    more = len(events) == limit
    # Not cut by the limit: everything below the horizon was read.
    position = events[-1].position if more else max(after, Position(int(rows[0]["horizon"]), 0))
    return Batch(events, position, more, bool(rows[0]["held_back"]))


def purge_events(conn: Connection, keep: timedelta = RETENTION) -> int:
    """Delete the log's rows written more than `keep` ago, up to the newest such row that is
    final, and everything before it in log order (so what is left is whole); remember where it
    was cut. Returns the rows deleted. Commits (call it outside a transaction block)."""
    with conn.transaction():
        cut = conn.execute(
            """SELECT xid::text AS xid, seq FROM incident_events
               WHERE created_at < now() - %s::interval
                 AND xid < pg_snapshot_xmin(pg_current_snapshot())
               ORDER BY xid DESC, seq DESC LIMIT 1""",
            (keep,),
        ).fetchone()
        if cut is None:
            return 0
        params = {"xid": cut["xid"], "seq": cut["seq"]}
        deleted = conn.execute(
            "DELETE FROM incident_events WHERE (xid, seq) <= (%(xid)s::text::xid8, %(seq)s)", params
        ).rowcount
        conn.execute(
            """INSERT INTO incident_events_purged AS p (xid, seq) VALUES (%(xid)s::text::xid8, %(seq)s)
               ON CONFLICT (only_row) DO UPDATE SET xid = EXCLUDED.xid, seq = EXCLUDED.seq, purged_at = now()
               WHERE (p.xid, p.seq) < (EXCLUDED.xid, EXCLUDED.seq)""",
            params,
        )
    return deleted


async def listen(dsn: str) -> psycopg.AsyncConnection[Any]:
    """A connection of its own that receives the log's notifications (`notifies()`), one each
    time a transaction that changed incidents commits; the caller closes it."""
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True, connect_timeout=10)
    try:
        await conn.execute(f"LISTEN {CHANNEL}")
    except BaseException:
        await conn.close()
        raise
    return conn
