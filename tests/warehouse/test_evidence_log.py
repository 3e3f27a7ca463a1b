"""The evidence access log is append-only: PostgreSQL itself refuses to change or remove a row,
except the log's own retention, which removes only rows past it and never one younger than
90 days, whoever sets its switch. The same access is one row per ten minutes only from the
same address. Holds are logged as they are put and released, and lock their incident as the
purge does; retention's marks on an incident are set once."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pydantic
import pytest

from shrinkwatch.settings import Settings
from tests.factories import incident
from warehouse.db import connect
from warehouse.evidence_log import (
    KEEP_AT_LEAST,
    ONCE_PER_S,
    access_log,
    active_hold,
    hold,
    holds,
    purge_access_log,
    record,
    release,
)
from warehouse.incidents import evidence_marks, lock_incident, mark_evidence_gone, upsert_incidents


def _rows(settings: Settings) -> list[tuple[str, str]]:
    with connect(settings.database_dsn) as conn:
        rows = conn.execute("SELECT username, action FROM evidence_access ORDER BY id").fetchall()
    return [(r["username"], r["action"]) for r in rows]


def _two_rows(settings: Settings) -> None:
    """A view 800 days ago and one 10 days ago (as the owner wrote them then)."""
    with connect(settings.database_dsn) as conn:
        for user, days in (("old", 800), ("recent", 10)):
            conn.execute(
                "INSERT INTO evidence_access (at, username, action) VALUES (now() - %s, %s, 'view')",
                (timedelta(days=days), user),
            )


@pytest.mark.parametrize(
    ("statement", "refused"),
    [
        ("UPDATE evidence_access SET username = 'someone else'", "UPDATE refused"),
        ("DELETE FROM evidence_access WHERE username = 'old'", "DELETE refused"),
        ("DELETE FROM evidence_access", "DELETE refused"),
        ("TRUNCATE evidence_access", "TRUNCATE refused"),
        # The retention's switch does not open the table to changes, only to its deletes ...
        (
            "SET LOCAL shrinkwatch.evidence_access_retention = 'on'; UPDATE evidence_access SET reason = 'x'",
            "UPDATE refused",
        ),
        # ... and those only of rows older than 90 days: any session can set the switch.
        (
            "SET LOCAL shrinkwatch.evidence_access_retention = 'on'; "
            "DELETE FROM evidence_access WHERE username = 'recent'",
            "DELETE refused: a row is kept at least 90 days",
        ),
        (
            "SET LOCAL shrinkwatch.evidence_access_retention = 'on'; DELETE FROM evidence_access",
            "DELETE refused: a row is kept at least 90 days",
        ),
    ],
)
def test_the_log_refuses_changes(settings: Settings, statement: str, refused: str) -> None:
    _two_rows(settings)
    with connect(settings.database_dsn) as conn, pytest.raises(psycopg.errors.RaiseException, match=refused):
        for part in statement.split("; "):
            conn.execute(part)
    assert _rows(settings) == [("old", "view"), ("recent", "view")]


def test_its_retention_deletes_only_rows_past_it(settings: Settings) -> None:
    _two_rows(settings)
    with connect(settings.database_dsn) as conn:
        assert purge_access_log(conn, timedelta(days=730)) == 1
        assert purge_access_log(conn, timedelta(days=730)) == 0
    assert _rows(settings) == [("recent", "view")]
    # ... and the switch it used was local to its transaction.
    with connect(settings.database_dsn) as conn, pytest.raises(psycopg.errors.RaiseException):
        conn.execute("DELETE FROM evidence_access")


def test_its_retention_keeps_at_least_90_days_as_the_settings_do(settings: Settings) -> None:
    with connect(settings.database_dsn) as conn:
        for user, days in (("a", 91), ("b", 89)):
            conn.execute(
                "INSERT INTO evidence_access (at, username, action) VALUES (now() - %s, %s, 'view')",
                (timedelta(days=days), user),
            )
    assert timedelta(days=90) == KEEP_AT_LEAST
    with connect(settings.database_dsn) as conn, pytest.raises(ValueError, match="at least 90 days"):
        purge_access_log(conn, timedelta(days=30))
    assert _rows(settings) == [("a", "view"), ("b", "view")]
    with connect(settings.database_dsn) as conn:
        assert purge_access_log(conn, KEEP_AT_LEAST) == 1
    assert _rows(settings) == [("b", "view")]
    with pytest.raises(pydantic.ValidationError, match="retention_evidence_access_days"):
        Settings(retention_evidence_access_days=89)
    assert Settings(retention_evidence_access_days=90).retention_evidence_access_days == 90


def test_the_same_access_from_another_address_is_a_row_of_its_own(settings: Settings) -> None:
    with connect(settings.database_dsn, autocommit=True) as conn:
        upsert_incidents(conn, [incident(1)])

        def view(client: str | None) -> bool:
            return record(
                conn,
                username="ana",
                action="view",
                incident_id="inc-1",
                client=client,
                detail={"file": "clip"},
                once_per_s=ONCE_PER_S,
            )

        # Ana watches from her desk; her cookie, stolen, is used from elsewhere minutes later.
        assert [view(c) for c in ("10.0.0.5", "10.0.0.5", "203.0.113.9", "203.0.113.9", "10.0.0.5")] == [
            True,
            False,
            True,
            False,
            False,
        ]
        assert [view(None), view(None)] == [True, False]  # no address is an address of its own
        log = access_log(conn)
    assert log["client"].fillna("none").tolist()[::-1] == ["10.0.0.5", "203.0.113.9", "none"]


def test_holds_are_logged_as_they_are_put_and_released(settings: Settings) -> None:
    with connect(settings.database_dsn, autocommit=True) as conn:
        upsert_incidents(conn, [incident(1)])
        assert hold(conn, "inc-1", by="ana", reason=" police request 42 ", client="cli")
        assert not hold(conn, "inc-1", by="bob", reason="again")  # one hold at a time
        assert (active_hold(conn, "inc-1") or {})["held_by"] == "ana"
        with pytest.raises(ValueError, match="needs a reason"):
            release(conn, "inc-1", by="ana", reason="  ")
        assert release(conn, "inc-1", by="ana", reason="case closed")
        assert not release(conn, "inc-1", by="ana", reason="twice")
        assert active_hold(conn, "inc-1") is None
        assert holds(conn).empty
        history = holds(conn, include_released=True)
        assert history[["held_by", "reason", "release_reason"]].values.tolist() == [
            ["ana", "police request 42", "case closed"]
        ]
        log = access_log(conn)
    assert log[["username", "action", "store_id", "camera_id", "reason"]].values.tolist() == [
        ["ana", "release", "store-001", "cam-1", "case closed"],
        ["ana", "hold", "store-001", "cam-1", "police request 42"],
    ]


def test_a_hold_locks_its_incident_as_the_purge_does(settings: Settings) -> None:
    with connect(settings.database_dsn, autocommit=True) as conn:
        upsert_incidents(conn, [incident(1), incident(1, incident_id="inc-2")])
    with connect(settings.database_dsn) as holder, connect(settings.database_dsn) as purger:
        holder.execute("SELECT 1")  # a transaction is open: the hold is not committed yet
        assert hold(holder, "inc-1", by="ana", reason="police request 42")
        # What the purge does before it marks: lock the row. The hold has it until it commits
        # (the purge would wait; here it gives up at once) ...
        purger.execute("SET lock_timeout = '100ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            lock_incident(purger, "inc-1")
        purger.rollback()
        assert lock_incident(purger, "inc-2")  # (another incident is not locked)
        assert not lock_incident(purger, "nope")
        purger.rollback()
        holder.commit()
        # ... and once it has, the purge's next statement sees the hold.
        assert lock_incident(purger, "inc-1")
        assert (active_hold(purger, "inc-1") or {})["reason"] == "police request 42"


def test_retention_marks_each_kind_once_and_clears_the_reference(settings: Settings) -> None:
    with connect(settings.database_dsn, autocommit=True) as conn:
        upsert_incidents(conn, [incident(1, snapshot="cam-1/inc-1.jpg")])
        with pytest.raises(ValueError, match="unknown evidence kinds"):
            mark_evidence_gone(conn, "inc-1", ["live"])
        assert not mark_evidence_gone(conn, "nope", ["clips"])

        assert mark_evidence_gone(conn, "inc-1", ["clips"])
        first = conn.execute("SELECT * FROM incidents WHERE incident_id = 'inc-1'").fetchone()
        assert first is not None and first["snapshot"] == "cam-1/inc-1.jpg"
        assert first["clip_purged_at"] is not None and first["snapshot_purged_at"] is None
        assert evidence_marks(conn, ["inc-1", "nope"])["inc-1"].gone == ("clips",)

        assert mark_evidence_gone(conn, "inc-1", ["snapshots", "clips"])
        then = conn.execute("SELECT * FROM incidents WHERE incident_id = 'inc-1'").fetchone()
        assert then is not None and then["snapshot"] is None and then["snapshot_purged_at"] is not None
        assert then["clip_purged_at"] == first["clip_purged_at"]  # when it first went
        assert set(evidence_marks(conn, ["inc-1", "nope"])) == {"inc-1"}

        record(conn, username="retention", action="purge", incident_id="inc-1", detail={"files": 0})
        assert access_log(conn, actions=["purge"])["store_id"].tolist() == ["store-001"]
