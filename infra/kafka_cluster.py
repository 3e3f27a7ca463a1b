"""A local Kafka cluster of several KRaft nodes, for the chain tests and a chain rehearsal on one machine.

Each node is broker and controller at once (combined mode) and every node is a voter of the
KRaft quorum: three nodes keep a quorum and serve every partition with one of them gone.
Clients reach them on PLAINTEXT listeners on 127.0.0.1 (a chain's own cluster is secured as
docs/DEPLOY.md says; this one rehearses the topology, not the security). The brokers default
topics to replication 3 and min.insync.replicas 2, as `ensure_topics` makes them with
topic_replication 3, and fence a broker that stops answering within 6 s, so a killed broker's
partitions get new leaders quickly. Everything lives under one folder (`home`): a node's
config, data and log in `node-N/`. The jars and Java are those of the single local broker
(infra.kafka, read-only). A node is killed with SIGKILL (`kill`), as a machine that dies,
and started again on its data (`start_node`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from infra.kafka import ensure_jars, new_cluster_id
from infra.process import pid_alive, spawn, tail, terminate
from shrinkwatch.errors import ShrinkwatchError

Progress = Callable[[str], None]

_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = STDOUT
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = info
"""


def consecutive_free_ports(count: int) -> list[int]:
    """`count` consecutive TCP ports on 127.0.0.1 that nothing listens on now (as
    `flows run --processes M` wants from flow_cluster_port on)."""
    while True:
        base = free_ports(1)[0]
        wanted = list(range(base, base + count))
        if wanted[-1] <= 65535 and all(_bindable(port) for port in wanted[1:]):
            return wanted


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """`count` TCP ports on 127.0.0.1 that nothing listens on now (the kernel's picks)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class KafkaCluster:
    """`nodes` KRaft nodes under `home`; node i listens for clients on `ports[2i]` and for
    its controller on `ports[2i + 1]` (free ports unless given)."""

    home: Path
    nodes: int = 3
    ports: list[int] = field(default_factory=list)
    heap: str = "256m"
    pids: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.nodes < 1:
            msg = "a cluster needs at least one node"
            raise ShrinkwatchError(msg)
        self.ports = self.ports or free_ports(2 * self.nodes)

    @property
    def bootstrap(self) -> str:
        """Every node's client address, comma-separated (SHRINKWATCH_KAFKA_BOOTSTRAP)."""
        return ",".join(f"127.0.0.1:{self.ports[2 * i]}" for i in range(self.nodes))

    def node_dir(self, node: int) -> Path:
        return self.home / f"node-{node}"

    def _config(self, node: int) -> str:
        voters = ",".join(f"{i + 1}@127.0.0.1:{self.ports[2 * i + 1]}" for i in range(self.nodes))
        port, cport = self.ports[2 * node], self.ports[2 * node + 1]
        replicas = min(self.nodes, 3)
        return "\n".join(
            [
                "process.roles=broker,controller",
                f"node.id={node + 1}",
                f"controller.quorum.voters={voters}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={self.node_dir(node) / 'data'}",
                "num.partitions=1",
                "auto.create.topics.enable=false",
                f"default.replication.factor={replicas}",
                f"min.insync.replicas={min(replicas, 2)}",
                f"offsets.topic.replication.factor={replicas}",
                "offsets.topic.num.partitions=4",
                f"transaction.state.log.replication.factor={replicas}",
                f"transaction.state.log.min.isr={min(replicas, 2)}",
                f"share.coordinator.state.topic.replication.factor={replicas}",
                f"share.coordinator.state.topic.min.isr={min(replicas, 2)}",
                "group.initial.rebalance.delay.ms=0",
                "broker.session.timeout.ms=6000",
                "broker.heartbeat.interval.ms=1000",
                "",
            ]
        )

    def _java(self, jars: Path, main: str, *args: str, jvm: tuple[str, ...] = ()) -> list[str]:
        """The command that runs `main` (a Kafka class) with `args`, and JVM options `jvm`."""
        java = shutil.which("java")
        if java is None:
            msg = "Java 17 or newer is needed to run Kafka; install a JDK (openjdk-17)"
            raise ShrinkwatchError(msg)
        return [java, *jvm, "-cp", f"{jars / 'libs'}/*", main, *args]

    def start(self, progress: Progress = print, timeout_s: float = 180.0) -> None:
        """Write each node's config, format its storage (one cluster id), start every node,
        and wait until all of them serve as brokers."""
        jars = ensure_jars(progress)
        cluster_id = new_cluster_id()
        for node in range(self.nodes):
            folder = self.node_dir(node)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "server.properties").write_text(self._config(node))
            (folder / "log4j2.properties").write_text(_LOG4J2)
            if not (folder / "data" / "meta.properties").exists():
                done = subprocess.run(
                    self._java(
                        jars,
                        "kafka.tools.StorageTool",
                        "format",
                        "-t",
                        cluster_id,
                        "-c",
                        str(folder / "server.properties"),
                        "--ignore-formatted",
                    ),  # fmt: skip
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode != 0:
                    msg = f"formatting node {node}'s storage failed:\n{done.stdout}{done.stderr}"
                    raise ShrinkwatchError(msg)
        for node in range(self.nodes):
            self.start_node(node)
        progress(f"Kafka cluster of {self.nodes} nodes starting on {self.bootstrap}")
        self.wait_brokers(self.nodes, timeout_s)

    def start_node(self, node: int) -> int:
        """Start one node on its formatted storage; returns its pid."""
        folder = self.node_dir(node)
        jvm = (
            f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={folder / 'log4j2.properties'}",
        )  # fmt: skip
        jars = ensure_jars(lambda _m: None)
        args = self._java(jars, "kafka.Kafka", str(folder / "server.properties"), jvm=jvm)
        self.pids[node] = spawn(args, folder / "kafka.log")
        return self.pids[node]

    def kill(self, node: int) -> None:
        """SIGKILL one node, as a machine that dies: no clean shutdown, no leadership handed on."""
        pid = self.pids.pop(node, None)
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)

    def alive(self, node: int) -> bool:
        pid = self.pids.get(node)
        return pid is not None and pid_alive(pid)

    def brokers(self) -> int:
        """How many brokers the cluster's metadata lists now (0 when none answers)."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        try:
            return len(admin.list_topics(timeout=3).brokers)
        except KafkaException:
            return 0

    def wait_brokers(self, count: int, timeout_s: float = 120.0) -> None:
        """Block until `count` brokers serve; ShrinkwatchError with the nodes' logs otherwise."""
        deadline = time.monotonic() + timeout_s
        while self.brokers() < count:
            dead = [n for n in self.pids if not self.alive(n)]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(
                    f"node {n}:\n{tail(self.node_dir(n) / 'kafka.log')}" for n in range(self.nodes)
                )
                why = f"node(s) {dead} exited" if dead else f"not {count} brokers after {timeout_s:.0f} s"
                msg = f"the Kafka cluster did not come up: {why}\n{logs}"
                raise ShrinkwatchError(msg)
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL after 20 s)."""
        for node in list(self.pids):
            terminate(self.pids.pop(node), timeout_s=20)
