"""Migrations on the real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Callable

from shrinkwatch.settings import Settings
from warehouse.db import connect
from warehouse.migrate import available_migrations, current_version, migrate


def test_migrate_twice_is_idempotent(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    with connect(settings.database_dsn) as conn:
        assert current_version(conn) == 0
        first = migrate(conn, progress=lambda _m: None)
        second = migrate(conn, progress=lambda _m: None)
        assert first == [m.version for m in available_migrations()]
        assert second == []
        assert current_version(conn) == available_migrations()[-1].version
        columns = {
            r["column_name"]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'incidents'"
            )
        }
    assert {
        "incident_id",
        "version",
        "signals",
        "user_confirmed",
        "reviewed_by",
        "reviewed_at",
        "review_note",
        "snapshot",
        "zone_ids",
    } <= columns


def test_contract_tables_exist(settings: Settings) -> None:
    with connect(settings.database_dsn) as conn:
        tables = {
            r["table_name"]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
    assert {"stores", "cameras", "zones", "incidents", "schema_migrations"} <= tables


def test_empty_hours_written_before_0006_stay_never_after_hours(
    make_settings: Callable[..., Settings],
) -> None:
    # Before 0006, `{}` was what a store without `hours` got, and meant "always open"; now
    # `{}` means closed every day, so the migration turns those into NULL (unknown).
    settings = make_settings()
    with connect(settings.database_dsn) as conn:
        migrate(conn, progress=lambda _m: None, up_to=5)
        conn.execute(
            """INSERT INTO stores (id, name, timezone, hours) VALUES
               ('old', 'Old', 'UTC', DEFAULT), ('set', 'Set', 'UTC', '{"mon": "08:00-20:00"}')"""
        )
        assert migrate(conn, progress=lambda _m: None) == [m.version for m in available_migrations()][5:]
        hours = {r["id"]: r["hours"] for r in conn.execute("SELECT id, hours FROM stores")}
    assert hours == {"old": None, "set": {"mon": "08:00-20:00"}}
