"""A single-node Apache Kafka 4.x broker in KRaft mode, run from jars that Maven resolves.

With `kafka_security_protocol` plaintext (the default) clients reach it on a PLAINTEXT
listener on 127.0.0.1. Otherwise the client listener speaks that protocol (ssl,
sasl_ssl or sasl_plaintext) and nothing else listens for clients:
- TLS with the local CA's server certificate (infra/tls.py) as a PEM keystore; in `ssl` mode
  a client certificate from that CA is required (the only authentication there is), with
  SASL it is not asked for.
- SASL with the settings' user and mechanism: a SCRAM user is created when the storage is
  formatted (`kafka-storage format --add-scram`), so credentials that differ from those it
  was formatted with are refused with what to do; PLAIN has its user in the JAAS line.
- The broker talks to itself (inter-broker) on the same listener as that user; the KRaft
  controller listener stays PLAINTEXT on 127.0.0.1 (a single node: only it connects there).
No authorizer: every authenticated user may do everything (a chain's cluster has ACLs).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from infra.process import PidFile, pid_alive, spawn, tail, terminate
from infra.tls import ensure_local_tls
from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.kafka_admin import wait_for_kafka
from shrinkwatch.net import port_open
from shrinkwatch.settings import Settings

Progress = Callable[[str], None]

_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = warn
logger.apache.name = org.apache.kafka
logger.apache.level = warn
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = info
"""


def _pom() -> str:
    return resources.files("infra").joinpath("kafka/pom.xml").read_text(encoding="utf-8")


def jars_dir() -> Path:
    """Where the broker's jars are cached, keyed by the pom's content."""
    digest = hashlib.sha256(_pom().encode()).hexdigest()[:12]
    return Path.home() / ".cache" / "shrinkwatch" / f"kafka-{digest}"


def ensure_jars(progress: Progress = print) -> Path:
    """Resolve Kafka and its dependencies from Maven Central once; return the jar folder."""
    target = jars_dir()
    stamp = target / ".complete"
    if stamp.exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        msg = "Maven (`mvn`) is needed once to fetch the Kafka jars; install it (apt-get install maven)"
        raise ShrinkwatchError(msg)
    progress(f"resolving Apache Kafka jars with Maven into {target} (once) ...")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pom_path = staging / "pom.xml"
    pom_path.write_text(_pom(), encoding="utf-8")
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom_path),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging / 'libs'}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        msg = f"Maven could not resolve the Kafka jars:\n{(result.stdout + result.stderr)[-3000:]}"
        raise ShrinkwatchError(msg)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    stamp.write_text("ok\n")
    return target


def new_cluster_id() -> str:
    """A random KRaft cluster id (16 bytes, URL-safe base64 as Kafka writes it), never one
    starting with "-": the storage tool would take it for an option (one id in 64 did, and
    made the broker fail to start). Kafka's own Uuid.randomUuid avoids those too."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


_UNQUOTABLE = ('"', "\\", ",", "[", "]", "=", ";", " ")  # server.properties' JAAS line, --add-scram


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner reads (0600), never readable by others for a moment."""
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    staging.unlink(missing_ok=True)
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    staging.replace(path)


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        msg = "Java 17 or newer is needed to run the Kafka broker; install a JDK (openjdk-17)"
        raise ShrinkwatchError(msg)
    return java


class KafkaBroker:
    """The local broker's files under SHRINKWATCH_HOME/kafka and its life cycle."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.home / "kafka"
        self.data = self.root / "data"
        self.config = self.root / "server.properties"
        self.log = settings.logs_dir() / "kafka.log"
        self.pidfile = PidFile(self.root / "kafka.pid", marker=str(self.config))

    @property
    def address(self) -> str:
        """host:port that clients use."""
        return f"127.0.0.1:{self.settings.kafka_port}"

    @property
    def protocol(self) -> str:
        """The client listener's security protocol, as Kafka names it (PLAINTEXT, SASL_SSL, ...)."""
        return self.settings.kafka_security_protocol.upper()

    def client_config(self) -> dict[str, str | int]:
        """How a client reaches this broker: the settings' Kafka config at its address."""
        return {**self.settings.kafka_config(), "bootstrap.servers": self.address}

    def _security_lines(self) -> list[str]:
        """server.properties lines for the client listener's TLS and SASL (none in plaintext)."""
        protocol, lines = self.protocol, []
        if protocol.endswith("SSL"):
            tls = ensure_local_tls(self.settings)
            keystore = self.root / "keystore.pem"  # key and chain in one file, as PEM keystores are
            _write_private(keystore, tls.server_key.read_text() + tls.server_cert.read_text())
            lines += [
                "ssl.keystore.type=PEM",
                f"ssl.keystore.location={keystore}",
                "ssl.truststore.type=PEM",
                f"ssl.truststore.location={tls.ca}",
                "ssl.endpoint.identification.algorithm=https",
                f"ssl.client.auth={'required' if protocol == 'SSL' else 'none'}",
            ]
        if protocol.startswith("SASL"):
            mechanism = self.settings.kafka_sasl_mechanism
            user, password = self._sasl_user()
            module = "plain.PlainLoginModule" if mechanism == "PLAIN" else "scram.ScramLoginModule"
            users = f' user_{user}="{password}"' if mechanism == "PLAIN" else ""
            lines += [
                f"sasl.enabled.mechanisms={mechanism}",
                f"sasl.mechanism.inter.broker.protocol={mechanism}",
                f"listener.name.{protocol.lower()}.{mechanism.lower()}.sasl.jaas.config="
                f"org.apache.kafka.common.security.{module} required "
                f'username="{user}" password="{password}"{users};',
            ]
        return lines

    def _sasl_user(self) -> tuple[str, str]:
        """The SASL user and password the local broker is made for; refused when they hold
        what its configuration syntax cannot carry."""
        user = self.settings.kafka_sasl_username or ""
        password = self.settings.secret("kafka_sasl_password") or ""
        for name, value in (("kafka_sasl_username", user), ("kafka_sasl_password", password)):
            if not value or any(c in value for c in _UNQUOTABLE):
                msg = (
                    f"{name}: the local broker's SASL user needs a value without any of "
                    f"{' '.join(_UNQUOTABLE)} (a chain's cluster takes any: docs/SECURITY.md)"
                )
                raise ShrinkwatchError(msg)
        return user, password

    def _write_config(self) -> None:
        port, cport = self.settings.kafka_port, self.settings.kafka_controller_port
        listener = self.protocol
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "log4j2.properties").write_text(_LOG4J2)
        _write_private(
            self.config,  # 0600: with SASL it holds the broker's own password
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{cport}",
                    f"listeners={listener}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
                    f"advertised.listeners={listener}://127.0.0.1:{port}",
                    "controller.listener.names=CONTROLLER",
                    f"listener.security.protocol.map={listener}:{listener},CONTROLLER:PLAINTEXT",
                    f"inter.broker.listener.name={listener}",
                    *self._security_lines(),
                    f"log.dirs={self.data}",
                    "num.partitions=1",
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "log.retention.hours=168",
                    "",
                ]
            ),
        )

    def _classpath(self, jars: Path) -> str:
        return f"{jars / 'libs'}/*"

    def _scram_users(self) -> str:
        """What the storage must be formatted with for the settings' SCRAM user: a digest of
        mechanism, user and password ("" with no SCRAM user), kept beside it to compare."""
        if not self.protocol.startswith("SASL") or self.settings.kafka_sasl_mechanism == "PLAIN":
            return ""
        user, password = self._sasl_user()
        mechanism = self.settings.kafka_sasl_mechanism
        return hashlib.sha256(f"{mechanism}\0{user}\0{password}".encode()).hexdigest()

    def _format(self, jars: Path, progress: Progress) -> None:
        marker = self.root / "scram-users.sha256"
        wanted = self._scram_users()
        if (self.data / "meta.properties").exists():
            had = marker.read_text().strip() if marker.exists() else ""
            if had != wanted:
                msg = (
                    f"the local Kafka storage in {self.data} was formatted with other SASL/SCRAM "
                    "credentials than kafka_sasl_username / kafka_sasl_password (a SCRAM user is made "
                    "when the storage is formatted): use those it was made with, or stop the broker "
                    f"and remove {self.data} (its topics go with it) to format it again"
                )
                raise ShrinkwatchError(msg)
            return
        cluster_id = new_cluster_id()
        progress(f"formatting Kafka storage in {self.data}")
        scram: list[str] = []
        password = ""
        if wanted:
            user, password = self._sasl_user()
            mechanism = self.settings.kafka_sasl_mechanism
            # On the command line for the moment the tool runs: the storage tool reads it nowhere else.
            scram = ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
        result = subprocess.run(
            [
                _java(),
                "-cp",
                self._classpath(jars),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.config),
                "--ignore-formatted",
                *scram,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            said = f"{result.stdout}{result.stderr}"
            if password:  # the tool may repeat its arguments
                said = said.replace(password, "***")
            msg = f"formatting Kafka storage failed:\n{said}"
            raise ShrinkwatchError(msg)
        _write_private(marker, wanted + "\n")

    def running_pid(self) -> int | None:
        """Pid of our broker if it runs."""
        return self.pidfile.read()

    def start(self, progress: Progress = print, timeout_s: float = 90.0) -> bool:
        """Start the broker unless it already runs; True if this call started it."""
        if self.running_pid() is not None:
            wait_for_kafka(self.client_config(), timeout_s)
            return False
        for port in (self.settings.kafka_port, self.settings.kafka_controller_port):
            if port_open(port):
                msg = (
                    f"port {port} on 127.0.0.1 is already in use by another program, so the local "
                    "Kafka broker cannot start; stop that program, choose other ports with "
                    "SHRINKWATCH_KAFKA_PORT / SHRINKWATCH_KAFKA_CONTROLLER_PORT, or point "
                    "SHRINKWATCH_KAFKA_BOOTSTRAP at an existing broker"
                )
                raise ShrinkwatchError(msg)
        jars = ensure_jars(progress)
        self._write_config()
        self._format(jars, progress)
        heap = self.settings.kafka_heap
        args = [
            _java(),
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.root / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.settings.logs_dir()}",
            "-cp",
            self._classpath(jars),
            "kafka.Kafka",
            str(self.config),
        ]
        pid = spawn(args, self.log)
        self.pidfile.write(pid)
        progress(f"starting Kafka on {self.address} (pid {pid}, log {self.log})")
        try:
            wait_for_kafka(self.client_config(), timeout_s, alive=lambda: pid_alive(pid))
        except ShrinkwatchError as exc:
            terminate(pid, 10)
            self.pidfile.clear()
            msg = f"{exc}\nlast lines of {self.log}:\n{tail(self.log)}"
            raise ShrinkwatchError(msg) from None
        return True

    def stop(self, progress: Progress = print) -> bool:
        """Stop the broker if it runs; True if it was running."""
        pid = self.running_pid()
        if pid is None:
            return False
        progress(f"stopping Kafka (pid {pid})")
        terminate(pid, timeout_s=60)
        self.pidfile.clear()
        return True
