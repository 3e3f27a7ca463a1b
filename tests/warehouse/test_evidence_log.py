"""The evidence access log is append-only: PostgreSQL itself refuses to change or remove a row,
except the log's own retention, which removes only rows past it. Holds are logged as they
are put and released; retention's marks on an incident are set once."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from shrinkwatch.settings import Settings
from tests.factories import incident
from warehouse.db import connect
from warehouse.evidence_log import access_log, active_hold, hold, holds, purge_access_log, record, release
from warehouse.incidents import evidence_marks, mark_evidence_gone, upsert_incidents


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
        # The retention's switch does not open the table to changes, only to its deletes.
        (
            "SET LOCAL shrinkwatch.evidence_access_retention = 'on'; UPDATE evidence_access SET reason = 'x'",
            "UPDATE refused",
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
