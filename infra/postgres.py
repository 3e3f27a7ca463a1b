"""A local PostgreSQL 15 cluster under SHRINKWATCH_HOME/postgres, on 127.0.0.1.

Without `database_sslmode` (or with `disable`) it trusts connections from 127.0.0.1, as
initdb --auth=trust made it. With any other sslmode it starts with TLS on: ssl=on with the
local CA's server certificate (infra/tls.py), and its own pg_hba (postgres/tls/pg_hba.conf,
in place of initdb's) that refuses every connection without TLS and authenticates the
others by client certificate (`hostssl ... cert`: one from the local CA whose common name is
the role, `shrinkwatch`). The files the server reads are copied to postgres/tls, owned by
the user that runs it, keys 0600.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psycopg

from infra.process import tail
from infra.tls import ensure_local_tls
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.net import port_open
from shrinkwatch.settings import Settings

Progress = Callable[[str], None]
SUPERUSER = "shrinkwatch"
DATABASE = "shrinkwatch"
TLS_HBA = """\
# Written by Shrinkwatch (infra/postgres.py): TLS only, a client certificate from the local CA.
hostnossl all all 0.0.0.0/0 reject
hostnossl all all ::/0 reject
hostssl all all 127.0.0.1/32 cert
"""


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        msg = "running as root needs a `postgres` system user to run the server (useradd postgres)"
        raise ShrinkwatchError(msg) from None
    return "postgres"


class PostgresServer:
    """The local cluster's files and life cycle."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.home / "postgres"
        self.data = self.root / "data"
        self.log = settings.logs_dir() / "postgres.log"
        self.port = settings.postgres_port

    @property
    def address(self) -> str:
        """host:port clients use."""
        return f"127.0.0.1:{self.port}"

    def _bin(self, name: str) -> str:
        path = self.settings.postgres_bin / name
        if not path.exists():
            found = shutil.which(name)
            if found is None:
                msg = (
                    f"PostgreSQL server program {name!r} not found in {self.settings.postgres_bin}; "
                    "install postgresql-15 or set SHRINKWATCH_POSTGRES_BIN"
                )
                raise ShrinkwatchError(msg)
            return found
        return str(path)

    def _run(self, args: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        user = _server_user()
        cmd = ["runuser", "-u", user, "--", *args] if user else list(args)
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd="/")
        if check and result.returncode != 0:
            msg = f"{Path(args[0]).name} failed:\n{result.stdout}{result.stderr}"
            raise ShrinkwatchError(msg)
        return result

    def _check_reachable(self) -> None:
        # As root the server runs as `postgres`, which must reach its data through every parent.
        if _server_user() is None:
            return
        for parent in self.root.parents:
            if parent.exists() and not parent.stat().st_mode & 0o001:
                msg = (
                    f"{parent} is not searchable by the `postgres` user, which runs the local "
                    "server; chmod o+x it or set SHRINKWATCH_HOME elsewhere"
                )
                raise ShrinkwatchError(msg)

    def _prepare_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.settings.logs_dir().mkdir(parents=True, exist_ok=True)
        user = _server_user()
        if user:
            info = pwd.getpwnam(user)
            for path in (self.root, self.data):
                if path.exists():
                    os.chown(path, info.pw_uid, info.pw_gid)
            self.log.touch(exist_ok=True)
            os.chown(self.log, info.pw_uid, info.pw_gid)

    @property
    def tls(self) -> bool:
        """True when the settings ask for TLS (any database_sslmode but disable)."""
        return self.settings.database_sslmode not in (None, "disable")

    def _tls_options(self) -> str:
        """The server options that turn TLS on, its files copied where the server reads them."""
        local = ensure_local_tls(self.settings)
        folder = self.root / "tls"
        folder.mkdir(exist_ok=True)
        folder.chmod(0o700)
        files = {
            "server.crt": local.server_cert.read_bytes(),
            "server.key": local.server_key.read_bytes(),
            "root.crt": local.ca.read_bytes(),
            "pg_hba.conf": TLS_HBA.encode(),
        }
        user = _server_user()
        for name, data in files.items():
            path = folder / name
            path.write_bytes(data)
            path.chmod(0o600)
            if user:
                info = pwd.getpwnam(user)
                os.chown(path, info.pw_uid, info.pw_gid)
        if user:
            info = pwd.getpwnam(user)
            os.chown(folder, info.pw_uid, info.pw_gid)
        settings = {
            "ssl": "on",
            "ssl_cert_file": folder / "server.crt",
            "ssl_key_file": folder / "server.key",
            "ssl_ca_file": folder / "root.crt",
            "hba_file": folder / "pg_hba.conf",
        }
        return "".join(f" -c {name}={shlex.quote(str(value))}" for name, value in settings.items())

    def initialised(self) -> bool:
        """True when the cluster exists."""
        return (self.data / "PG_VERSION").exists()

    def _initdb(self, progress: Progress) -> None:
        progress(f"creating a PostgreSQL cluster in {self.data}")
        self.data.mkdir(parents=True, exist_ok=True)
        self._prepare_dirs()
        self.data.chmod(0o700)
        self._run(
            [
                self._bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-instructions",
            ]
        )

    def running(self) -> bool:
        """True when pg_ctl reports the server as running."""
        if not self.initialised():
            return False
        return self._run([self._bin("pg_ctl"), "status", "-D", str(self.data)], check=False).returncode == 0

    def start(self, progress: Progress = print, timeout_s: float = 60.0) -> bool:
        """Start the server (creating the cluster the first time); True if this call started it."""
        if self.running():
            wait_for_postgres(self.admin_dsn(), timeout_s)
            self._ensure_database()
            return False
        if port_open(self.port):
            msg = (
                f"port {self.port} on 127.0.0.1 is already in use by another program, so the local "
                "PostgreSQL cannot start; stop it, choose another port with "
                "SHRINKWATCH_POSTGRES_PORT, or point SHRINKWATCH_DATABASE_URL at an existing server"
            )
            raise ShrinkwatchError(msg)
        self._check_reachable()
        if not self.initialised():
            self._initdb(progress)
        self._prepare_dirs()
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        if self.tls:
            options += self._tls_options()
        with_tls = " with TLS and client certificates" if self.tls else ""
        progress(f"starting PostgreSQL{with_tls} on {self.address} (log {self.log})")
        result = self._run(
            [
                self._bin("pg_ctl"),
                "start",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                str(int(timeout_s)),
            ],
            check=False,
        )
        if result.returncode != 0:
            msg = f"PostgreSQL did not start:\n{result.stdout}{result.stderr}\n{tail(self.log)}"
            raise ShrinkwatchError(msg)
        wait_for_postgres(self.admin_dsn(), timeout_s)
        self._ensure_database()
        return True

    def stop(self, progress: Progress = print) -> bool:
        """Stop the server (fast shutdown); True if it was running."""
        if not self.running():
            return False
        progress("stopping PostgreSQL")
        self._run([self._bin("pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "60"])
        return True

    def admin_dsn(self) -> str:
        """URL of the maintenance database, for creating databases (over TLS with the
        settings' certificates when it is on)."""
        dsn = f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"
        if not self.tls:
            return dsn
        return psycopg.conninfo.make_conninfo(self.settings.database_dsn, dbname="postgres", user=SUPERUSER)

    def _ensure_database(self) -> None:
        with psycopg.connect(self.admin_dsn(), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')


def postgres_healthy(dsn: str, timeout_s: float = 3.0) -> tuple[bool, str]:
    """(healthy, detail) from a `SELECT version()` round trip."""
    try:
        with psycopg.connect(dsn, connect_timeout=max(1, int(timeout_s))) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as exc:
        return False, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return True, f"PostgreSQL {row[0] if row else '?'}"


def wait_for_postgres(dsn: str, timeout_s: float) -> None:
    """Block until the server accepts connections."""
    deadline = time.monotonic() + timeout_s
    detail = ""
    while time.monotonic() < deadline:
        ok, detail = postgres_healthy(dsn, 2.0)
        if ok:
            return
        time.sleep(0.3)
    msg = f"PostgreSQL did not answer within {timeout_s:.0f} s ({detail})"
    raise ShrinkwatchError(msg)
