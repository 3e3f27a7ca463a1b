"""A chain's Kafka and PostgreSQL behind TLS: the product end to end over SASL_SSL (SCRAM) and
sslmode=verify-full with a client certificate, against a second broker and server that
`infra up` starts with TLS on; refusals with the error the user reads; the local CA."""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import stat
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from infra import services
from infra.kafka import KafkaBroker
from infra.tls import LocalTLS, Pem, ensure_local_tls, issue, local_tls, new_ca
from shrinkwatch.contracts import Detection, Incident, decode
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.kafka_admin import client_config, ensure_topics, kafka_healthy
from shrinkwatch.settings import Settings, load_settings
from shrinkwatch.site_file import parse_site_config
from tests.factories import SITE_YAML, T0, frame, walk
from tests.support import TEST_HOME, cli_env, free_port, run_cli, spawn_cli, stored_incidents, wait_for
from warehouse.db import DatabaseUnreachable, connect

USER, PASSWORD = "chain-reader", "Sasl-Pw-7c41e9"


@dataclass(frozen=True)
class Chain:
    """The TLS services: the settings that started them and the local CA's files."""

    managed: Settings
    tls: LocalTLS

    def admin_dsn(self, database: str = "postgres") -> str:
        return psycopg.conninfo.make_conninfo(self.managed.database_dsn, dbname=database)


@pytest.fixture(scope="module")
def chain(base_settings: Settings) -> Iterator[Chain]:
    """A second broker (SASL_SSL, SCRAM-SHA-512) and PostgreSQL (TLS, client certificates) on
    ports of their own, started by `infra up` and stopped at the end whatever happened."""
    # Under the suite's home: the `postgres` user must reach it. base_settings: the jars.
    home = TEST_HOME / f"tls-{uuid.uuid4().hex[:8]}"
    managed = load_settings(
        None,
        home=home,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        postgres_port=free_port(),
        kafka_security_protocol="sasl_ssl",
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,
        database_sslmode="verify-full",
        topic_prefix=f"tls{uuid.uuid4().hex[:6]}.",
    )
    try:
        services.up(managed, progress=lambda _m: None)
        yield Chain(managed, local_tls(managed))
    finally:
        services.down(managed, progress=lambda _m: None)
        shutil.rmtree(home, ignore_errors=True)


def client_settings(chain: Chain, tmp_path: Path, database: str = "postgres", **overrides: Any) -> Settings:
    """What a store's processes set to reach a chain's services: every file and name given."""
    values: dict[str, Any] = {
        "home": tmp_path / "client-home",
        "kafka_bootstrap": chain.managed.kafka_servers,
        "kafka_security_protocol": "sasl_ssl",
        "kafka_sasl_username": USER,
        "kafka_sasl_password": PASSWORD,
        "kafka_ssl_ca": chain.tls.ca,
        "database_url": f"postgresql://shrinkwatch@127.0.0.1:{chain.managed.postgres_port}/{database}",
        "database_sslmode": "verify-full",
        "database_sslrootcert": chain.tls.ca,
        "database_sslcert": chain.tls.client_cert,
        "database_sslkey": chain.tls.client_key,
        "topic_prefix": f"c{uuid.uuid4().hex[:6]}.",
        "topic_partitions": 2,
    }
    return load_settings(None, **{**values, **overrides})


def loiter(track_id: int, stay_s: float) -> list[Detection]:
    """A person at the razor shelf for stay_s, then empty frames (the track ends)."""
    frames = walk("cam-1", track_id, [(0, (0.2, 0.8)), (stay_s, (0.2, 0.8))], t0=T0)
    end = frames[-1].ts
    return frames + [frame("cam-1", 1000 + i, 0.2 * (i + 1), [], t0=end) for i in range(15)]


def read_incidents(settings: Settings) -> list[Incident]:
    """Every message of sw.incidents, read over the settings' TLS and SASL."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    topic = settings.topic("incidents")
    consumer = Consumer(
        client_config(settings.kafka_config(), log_level=3, **{"group.id": f"t-{uuid.uuid4()}"})
    )
    try:
        parts = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        return [decode(m.value(), Incident) for m in consumer.consume(100, timeout=5) if m.error() is None]
    finally:
        consumer.close()


def test_the_product_end_to_end_over_tls(chain: Chain, tmp_path: Path) -> None:
    from alerts.digest import start_scheduler
    from detector.publisher import Publisher
    from warehouse.migrate import migrate
    from warehouse.rollups import RISK_PATTERN, run_rollups
    from warehouse.site_tables import apply_site_config

    database = f"sw_tls_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(chain.admin_dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    settings = client_settings(
        chain,
        tmp_path,
        database,
        loiter_threshold_s=3.0,
        track_timeout_s=1.0,
        zone_exit_grace_s=0.5,
        incident_update_s=2.0,
    )
    assert "sslmode=verify-full" in settings.database_dsn and "sslcert=" in settings.database_dsn
    topics = ("detections", "camera-health", "incidents", "dlq")
    assert ensure_topics(settings) == [settings.topic(t) for t in topics]
    with connect(settings.database_dsn) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == {
            "ssl": True
        }
        migrate(conn, progress=lambda _m: None)
        apply_site_config(conn, parse_site_config(SITE_YAML))

    # The flow is a child process: the settings file it reads holds no password (its environment does).
    env = cli_env(settings, tmp_path)
    assert PASSWORD not in Path(env["SHRINKWATCH_SETTINGS_FILE"]).read_text()
    flow = spawn_cli(["flows", "run", "incidents", "--snapshot-s", "0.5"], env, tmp_path / "flow.log")
    try:
        publisher = Publisher(settings)
        frames = loiter(7, 6.0)
        for detection in frames:
            publisher.publish(detection)
        assert publisher.close() == 0 and publisher.delivered == len(frames) and publisher.failed == 0

        def closed() -> list[dict[str, Any]]:
            with connect(settings.database_dsn) as conn:
                return [r for r in stored_incidents(conn) if r["status"] == "closed"]

        rows = wait_for(closed, 120, what="the incident row, written over verify-full")
        assert [(r["track_id"], r["camera_id"], r["incident_type"]) for r in rows] == [
            (7, "cam-1", "loitering_high_value")
        ]
        published = wait_for(
            lambda: [i for i in read_incidents(settings) if i.status == "closed"], 60, what="the incident"
        )
        assert {i.incident_id for i in published} == {rows[0]["incident_id"]}
    finally:
        flow.send_signal(signal.SIGTERM)
        code = flow.wait(timeout=60)
    assert code == 0, (tmp_path / "flow.log").read_text()[-3000:]

    # The rollups read PostgreSQL through DuckDB's ATTACH, with the same TLS parameters.
    [refreshed] = run_rollups(settings.database_dsn, only=[RISK_PATTERN.name], progress=lambda _m: None)
    assert refreshed.rows == 1
    with connect(settings.database_dsn) as conn:
        rolled = conn.execute(f"SELECT store_id, incidents FROM {RISK_PATTERN.table}").fetchall()
    assert rolled == [{"store_id": "store-001", "incidents": 1}]

    # The digest scheduler's SQLAlchemy job store gets them too (alerts/digest.py).
    scheduler = start_scheduler(settings.database_dsn, every_s=3600)
    try:
        with connect(settings.database_dsn) as conn:
            assert conn.execute("SELECT id FROM apscheduler_jobs").fetchall() == [
                {"id": "shrinkwatch-digests"}
            ]
    finally:
        scheduler.shutdown(wait=False)


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA the services' certificates do not come from."""
    path = tmp_path_factory.mktemp("other-ca") / "ca.crt"
    path.write_bytes(new_ca("Someone else's CA").cert)
    return path


@pytest.mark.parametrize(
    ("overrides", "told"),
    [
        pytest.param(
            {"kafka_sasl_password": "not-the-password"},
            "SASL authentication error: Authentication failed during authentication due to invalid "
            "credentials with SASL mechanism SCRAM-SHA-512",
            id="wrong-password",
        ),
        pytest.param({"kafka_ssl_ca": "OTHER_CA"}, "certificate verify failed", id="untrusted-ca"),
        pytest.param(
            {
                "kafka_security_protocol": "plaintext",
                "kafka_sasl_username": None,
                "kafka_sasl_password": None,
                "kafka_ssl_ca": None,
            },
            "a TLS or SASL listener does not answer a plaintext client: see kafka_security_protocol",
            id="plaintext",
        ),
    ],
)
def test_kafka_refusals_say_why(
    chain: Chain, tmp_path: Path, other_ca: Path, overrides: dict[str, Any], told: str
) -> None:
    values = {k: (other_ca if v == "OTHER_CA" else v) for k, v in overrides.items()}
    settings = client_settings(chain, tmp_path, **values)
    with pytest.raises(ShrinkwatchError) as refused:
        services.up(settings, progress=lambda _m: None)
    assert f"Kafka at {chain.managed.kafka_servers} did not answer:" in str(refused.value)
    assert told in str(refused.value)
    assert "not-the-password" not in str(refused.value)
    assert not (tmp_path / "client-home" / "kafka").exists()  # nothing local was started


def test_a_refusal_on_the_command_line_names_it_without_a_traceback_or_the_password(
    chain: Chain, tmp_path: Path
) -> None:
    settings = client_settings(chain, tmp_path, kafka_sasl_password="not-the-password")
    result = run_cli(["infra", "up"], env=cli_env(settings, tmp_path), timeout=120)
    assert result.returncode == 2
    assert "SASL authentication error: Authentication failed" in result.stderr
    assert "Traceback" not in result.stderr and "not-the-password" not in result.stdout + result.stderr


@pytest.fixture
def elsewhere(chain: Chain, tmp_path: Path) -> Iterator[str]:
    """A TLS server whose certificate the chain's CA signed, for elsewhere.example only."""
    ca = Pem(chain.tls.ca_key.read_bytes(), chain.tls.ca.read_bytes())
    leaf = issue(ca, "elsewhere", ["elsewhere.example"])
    chain_file = tmp_path / "elsewhere.pem"
    chain_file.write_bytes(leaf.cert + leaf.key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain_file)
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)  # to see `stop`
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                context.wrap_socket(conn, server_side=True).close()
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        server.close()
        thread.join(timeout=10)


def test_kafka_checks_the_broker_name_against_its_certificate(
    chain: Chain, tmp_path: Path, elsewhere: str
) -> None:
    # Signed by the CA the client trusts: only the name (127.0.0.1, not elsewhere.example) is wrong.
    settings = client_settings(chain, tmp_path, kafka_bootstrap=elsewhere)
    assert settings.kafka_config()["ssl.endpoint.identification.algorithm"] == "https"
    with pytest.raises(ShrinkwatchError, match="certificate verify failed"):
        services.up(settings, progress=lambda _m: None)


@pytest.mark.parametrize(
    ("overrides", "told"),
    [
        pytest.param(
            {"database_sslrootcert": "OTHER_CA"}, "SSL error: certificate verify failed", id="untrusted"
        ),
        pytest.param(
            {"database_url": "postgresql://shrinkwatch@wrong.example:PORT/postgres?hostaddr=127.0.0.1"},
            'server certificate for "127.0.0.1" (and 1 other name) does not match host name "wrong.example"',
            id="host-name",
        ),
        pytest.param(
            {"database_sslcert": None, "database_sslkey": None},
            "FATAL:  connection requires a valid client certificate",
            id="no-client-cert",
        ),
        pytest.param(
            {
                "database_sslmode": "disable",
                "database_sslrootcert": None,
                "database_sslcert": None,
                "database_sslkey": None,
            },
            'pg_hba.conf rejects connection for host "127.0.0.1", user "shrinkwatch", database "postgres", '
            "no encryption",
            id="plaintext",
        ),
    ],
)
def test_postgres_refusals_say_why(
    chain: Chain, tmp_path: Path, other_ca: Path, overrides: dict[str, Any], told: str
) -> None:
    port = str(chain.managed.postgres_port)
    values = {
        k: other_ca if v == "OTHER_CA" else (v.replace("PORT", port) if isinstance(v, str) else v)
        for k, v in overrides.items()
    }
    settings = client_settings(chain, tmp_path, **values)
    with pytest.raises(DatabaseUnreachable) as refused:
        connect(settings.database_dsn)
    assert told in str(refused.value)


def test_the_local_ca(tmp_path: Path) -> None:
    settings = load_settings(None, home=tmp_path / "home")
    files = ensure_local_tls(settings)
    assert files.ca == settings.local_tls_file("ca.crt") and files.ca.parent == tmp_path / "home" / "tls"
    assert stat.S_IMODE(files.ca.parent.stat().st_mode) == 0o700
    for key in (files.ca_key, files.server_key, files.client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, no passphrase
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    client = x509.load_pem_x509_certificate(files.client_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    client.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n) for n in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert client.subject.rfc4514_string() == "CN=shrinkwatch"  # the PostgreSQL role it maps to

    # Kept as they are; a leaf no longer signed by the CA there is made again.
    before = {p: p.read_bytes() for p in (files.ca, files.server_cert, files.client_cert)}
    assert ensure_local_tls(settings) == files
    assert {p: p.read_bytes() for p in before} == before
    other = new_ca()
    files.ca.write_bytes(other.cert)
    files.ca_key.write_bytes(other.key)
    ensure_local_tls(settings)
    x509.load_pem_x509_certificate(files.server_cert.read_bytes()).verify_directly_issued_by(
        x509.load_pem_x509_certificate(other.cert)
    )
    assert files.client_cert.read_bytes() != before[files.client_cert]

    # A key beside a certificate it is not the key of (a crash between writing the two) is
    # made again with its certificate, the CA's as a leaf's.
    files.ca_key.write_bytes(new_ca().key)
    files.server_key.write_bytes(new_ca().key)
    ensure_local_tls(settings)
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    assert ca.public_key() == load_pem_private_key(files.ca_key.read_bytes(), None).public_key()
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    assert server.public_key() == load_pem_private_key(files.server_key.read_bytes(), None).public_key()
    server.verify_directly_issued_by(ca)


def broker_config(tmp_path: Path, **overrides: Any) -> list[str]:
    broker = KafkaBroker(load_settings(None, home=tmp_path / "home", **overrides))
    broker._write_config()
    assert stat.S_IMODE(broker.config.stat().st_mode) == 0o600  # with SASL it holds a password
    return broker.config.read_text().splitlines()


def test_a_plaintext_broker_is_configured_as_before(tmp_path: Path) -> None:
    lines = broker_config(tmp_path, kafka_port=1234, kafka_controller_port=1235)
    assert "listeners=PLAINTEXT://127.0.0.1:1234,CONTROLLER://127.0.0.1:1235" in lines
    assert "inter.broker.listener.name=PLAINTEXT" in lines
    assert not [line for line in lines if line.startswith(("ssl.", "sasl.", "listener.name."))]
    assert not (tmp_path / "home" / "tls").exists()


@pytest.mark.parametrize(
    ("protocol", "expected", "absent"),
    [
        ("ssl", ["ssl.keystore.type=PEM", "ssl.client.auth=required"], "sasl."),
        ("sasl_ssl", ["ssl.client.auth=none", "sasl.enabled.mechanisms=SCRAM-SHA-512"], "PLAINTEXT://"),
        ("sasl_plaintext", ["sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512"], "ssl."),
    ],
)
def test_a_broker_listens_as_the_settings_connect(
    tmp_path: Path, protocol: str, expected: list[str], absent: str
) -> None:
    sasl = {"kafka_sasl_username": USER, "kafka_sasl_password": PASSWORD} if "sasl" in protocol else {}
    lines = broker_config(tmp_path, kafka_port=1234, kafka_security_protocol=protocol, **sasl)
    name = protocol.upper()
    assert f"listeners={name}://127.0.0.1:1234,CONTROLLER://127.0.0.1:19093" in lines
    assert f"listener.security.protocol.map={name}:{name},CONTROLLER:PLAINTEXT" in lines
    assert set(expected) <= set(lines)
    assert not [line for line in lines if line.startswith(absent) or f"={absent}" in line]


def test_a_storage_formatted_for_other_credentials_is_refused(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        home=tmp_path / "home",
        kafka_security_protocol="sasl_ssl",
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,
    )
    broker = KafkaBroker(settings)
    broker.data.mkdir(parents=True)
    (broker.data / "meta.properties").write_text("formatted, without a SCRAM user\n")
    with pytest.raises(ShrinkwatchError, match="formatted with other SASL/SCRAM credentials"):
        broker._format(tmp_path, progress=lambda _m: None)


@pytest.mark.parametrize("password", ['pa"ss', "a,b", "x]y"])
def test_a_local_sasl_password_the_config_cannot_carry_is_refused(tmp_path: Path, password: str) -> None:
    with pytest.raises(ShrinkwatchError, match="kafka_sasl_password: the local broker's SASL user"):
        broker_config(
            tmp_path,
            kafka_security_protocol="sasl_ssl",
            kafka_sasl_username=USER,
            kafka_sasl_password=password,
        )


@pytest.mark.parametrize(
    ("protocol", "without", "told"),
    [
        # ssl: a client certificate from the local CA is the authentication; none, no answer.
        ("ssl", {"ssl.certificate.location": None, "ssl.key.location": None}, "alert bad certificate"),
        ("sasl_plaintext", {"sasl.password": "not-the-password"}, "SASL authentication error"),
    ],
)
@pytest.mark.usefixtures("base_settings")  # the jars are resolved once, by the session
def test_the_local_broker_in_its_other_modes(
    protocol: str, without: dict[str, str | None], told: str
) -> None:
    home = TEST_HOME / f"tls-{protocol}-{uuid.uuid4().hex[:8]}"
    sasl = {"kafka_sasl_username": USER, "kafka_sasl_password": PASSWORD} if "sasl" in protocol else {}
    settings = load_settings(
        None,
        home=home,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        kafka_security_protocol=protocol,
        topic_prefix="m.",
        **sasl,
    )
    broker = KafkaBroker(settings)
    try:
        broker.start(progress=lambda _m: None)
        assert len(ensure_topics(settings)) == 4  # with the settings' defaults for a local broker
        config = settings.kafka_config()
        refused = {k: v for k, v in {**config, **without}.items() if v is not None}
        ok, detail = kafka_healthy(refused)
        assert not ok and told in detail
    finally:
        broker.stop(progress=lambda _m: None)
        shutil.rmtree(home, ignore_errors=True)
