"""Versioned SQL migrations: `NNNN_name.sql` files applied once each, in order."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from shrinkwatch.errors import ShrinkwatchError
from warehouse.db import Connection

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_ID = 0x5357_4D49  # pg_advisory_lock key: two `migrate` runs never interleave


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """The migrations shipped with the warehouse package, in version order."""
    found = []
    for entry in resources.files("warehouse.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        msg = f"two migrations share a version number: {versions}"
        raise ShrinkwatchError(msg)
    return found


def migrate(conn: Connection, progress: Callable[[str], None] = print, up_to: int | None = None) -> list[int]:
    """Apply every missing migration (up to version `up_to`, if given), each in its own
    transaction; return the versions applied."""
    if not conn.autocommit:
        conn.commit()
        conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
    try:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {row["version"] for row in conn.execute("SELECT version FROM schema_migrations")}
        applied = []
        for migration in available_migrations():
            if migration.version in done or (up_to is not None and migration.version > up_to):
                continue
            with conn.transaction():
                conn.execute(migration.sql.encode("utf-8"))
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            progress(f"applied migration {migration.version:04d}_{migration.name}")
            applied.append(migration.version)
        return applied
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))


def current_version(conn: Connection) -> int:
    """Highest applied migration, or 0 for an empty database."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') AS t").fetchone()
    if not exists or exists["t"] is None:
        return 0
    row = conn.execute("SELECT max(version) AS v FROM schema_migrations").fetchone()
    return int(row["v"] or 0) if row else 0


def require_current_schema(conn: Connection) -> None:
    """ShrinkwatchError, saying what to run, unless every migration has been applied."""
    have = current_version(conn)
    want = available_migrations()[-1].version
    if have < want:
        state = "has no Shrinkwatch schema yet" if have == 0 else f"is at schema version {have}, not {want}"
        msg = f"the database {state}: run `shrinkwatch db migrate` first"
        raise ShrinkwatchError(msg)
