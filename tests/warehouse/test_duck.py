"""DuckDB with the offline postgres extension: loaded by file, never downloaded."""

from __future__ import annotations

from shrinkwatch.settings import Settings
from warehouse.duck import PG_CONNECTIONS, THREADS, _extension_file, open_duckdb


def test_reads_postgres_with_bounded_threads_and_connections(settings: Settings) -> None:
    duck = open_duckdb(settings.database_dsn)
    try:
        count = duck.execute(
            "SELECT * FROM postgres_query('pg', 'SELECT count(*) FROM schema_migrations')"
        ).fetchone()
        limits = duck.execute(
            "SELECT current_setting('threads'), current_setting('pg_connection_limit')"
        ).fetchone()
    finally:
        duck.close()
    assert count is not None and count[0] >= 9
    assert limits == (THREADS, PG_CONNECTIONS)


def test_a_dangling_extension_link_is_made_again() -> None:
    link = _extension_file()
    link.unlink()
    link.symlink_to("/nonexistent/postgres.duckdb_extension")  # its virtual environment was removed
    assert _extension_file() == link and link.resolve().is_file()
