"""`shrinkwatch infra up | down | status`: the local broker and database together.

What runs locally is what the settings leave unset (no kafka_bootstrap, no database_url),
started the way the settings say to reach it: with `kafka_security_protocol` other than
plaintext the broker gets that listener, with a `database_sslmode` other than disable
PostgreSQL requires TLS and a client certificate, both from the local CA in HOME/tls
(infra/tls.py, infra/kafka.py, infra/postgres.py). `up` then checks Kafka answers as the
settings connect (a TLS or SASL refusal named) and creates the contract topics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from infra.kafka import KafkaBroker
from infra.postgres import PostgresServer, postgres_healthy
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.kafka_admin import ensure_topics, kafka_healthy
from shrinkwatch.logs import scrub
from shrinkwatch.settings import Settings

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ServiceStatus:
    """One service as `infra status` reports it."""

    name: str
    address: str
    managed: bool
    healthy: bool
    detail: str

    def line(self) -> str:
        """A one-line human summary."""
        state = "healthy" if self.healthy else "DOWN"
        where = "local" if self.managed else "external"
        return f"{self.name:<10} {state:<8} {self.address:<48} ({where}; {self.detail})"


def up(settings: Settings, progress: Progress = print) -> list[str]:
    """Start what is local and missing, create the contract topics; return the services started."""
    started: list[str] = []
    settings.home.mkdir(parents=True, exist_ok=True)
    try:
        if settings.postgres_managed:
            if PostgresServer(settings).start(progress):
                started.append("postgres")
            else:
                progress(f"PostgreSQL already running on 127.0.0.1:{settings.postgres_port}")
        if settings.kafka_managed:
            if KafkaBroker(settings).start(progress):
                started.append("kafka")
            else:
                progress(f"Kafka already running on {settings.kafka_servers}")
        ok, detail = kafka_healthy(settings.kafka_config(), timeout_s=10.0)
        if not ok:  # what the client was told (TLS, SASL), not a bare metadata timeout
            msg = f"Kafka at {settings.kafka_servers} did not answer: {detail}"
            raise ShrinkwatchError(msg)
        created = ensure_topics(settings)
    except BaseException:
        # All or nothing: a failed `up` leaves nothing running that it started.
        down(settings, progress, only=set(started))
        raise
    if created:
        progress(f"created topics: {', '.join(created)}")
    return started


def down(settings: Settings, progress: Progress = print, only: set[str] | None = None) -> list[str]:
    """Stop the local services (all, or those named in `only`); return those stopped."""
    stopped = []
    wanted = {"kafka", "postgres"} if only is None else only
    if settings.kafka_managed and "kafka" in wanted and KafkaBroker(settings).stop(progress):
        stopped.append("kafka")
    if settings.postgres_managed and "postgres" in wanted and PostgresServer(settings).stop(progress):
        stopped.append("postgres")
    return stopped


def status(settings: Settings) -> list[ServiceStatus]:
    """Health of both services, whether local or external."""
    k_ok, k_detail = kafka_healthy(settings.kafka_config())
    p_ok, p_detail = postgres_healthy(settings.database_dsn)
    return [
        ServiceStatus("kafka", settings.kafka_servers, settings.kafka_managed, k_ok, k_detail),
        ServiceStatus("postgres", scrub(settings.database_dsn), settings.postgres_managed, p_ok, p_detail),
    ]
