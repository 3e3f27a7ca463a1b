"""DuckDB for the rollups: in memory, with PostgreSQL attached read-only through the
postgres extension from the offline `duckdb-extension-postgres` wheel (nothing downloads).

On the 2-core machines we run on, DuckDB gets 2 threads and at most 2 PostgreSQL
connections (the extension's default is 64, each one a server process here). Rollups never
count on filter pushdown: they read their sources with `postgres_query`, so the watermark
filter runs inside PostgreSQL and only the rows a refresh needs are copied.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import duckdb
import psycopg

THREADS = 2
PG_CONNECTIONS = 2


def _extension_file() -> Path:
    """The wheel's extension binary under the name DuckDB expects (its entry point is
    derived from the file name, `postgres_scanner`): a symbolic link in a folder of its own
    per binary, so two virtual environments (or a removed one) never share a stale link."""
    import duckdb_extension_postgres

    shipped = Path(duckdb_extension_postgres.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    binary = next(shipped.glob("*.duckdb_extension")).resolve()
    digest = hashlib.sha256(str(binary).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"shrinkwatch-duckdb-{os.getuid()}" / digest
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "postgres_scanner.duckdb_extension"
    if not link.exists():  # missing, or dangling: (re)made atomically
        staging = folder / f".link-{os.getpid()}"
        staging.unlink(missing_ok=True)
        staging.symlink_to(binary)
        staging.replace(link)
    return link


def open_duckdb(dsn: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the PostgreSQL database of `dsn` attached as `pg`, read-only."""
    conn = duckdb.connect(config={"threads": THREADS, "autoinstall_known_extensions": False})
    conn.execute(f"LOAD '{_extension_file()}'")
    conn.execute(f"SET pg_connection_limit = {PG_CONNECTIONS}")
    libpq = psycopg.conninfo.make_conninfo(dsn)  # key=value form, quoted by libpq's rules
    quoted = libpq.replace("'", "''")  # ATTACH takes no parameters: a SQL string literal
    conn.execute(f"ATTACH '{quoted}' AS pg (TYPE postgres, READ_ONLY)")
    return conn
