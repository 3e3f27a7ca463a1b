"""Kafka as a client sees it: is the broker there, and the contract topics (CONTRACTS §3).

Used by the flows, the detector, the tests and `infra` alike; running a local broker is
`infra.kafka`'s business.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.net import port_open
from shrinkwatch.settings import TOPICS, Settings

Kafka = str | Mapping[str, str | int]  # bootstrap servers, or a client config (Settings.kafka_config)


def client_config(kafka: Kafka, **extra: str | int) -> dict[str, str | int | float | bool]:
    """A confluent-kafka client config from bootstrap servers or a whole config (TLS, SASL)."""
    base: dict[str, str | int | float | bool] = (
        {"bootstrap.servers": kafka} if isinstance(kafka, str) else dict(kafka)
    )
    return {**base, **extra}


def _servers(kafka: Kafka) -> str:
    return kafka if isinstance(kafka, str) else str(kafka["bootstrap.servers"])


def kafka_healthy(kafka: Kafka, timeout_s: float = 3.0) -> tuple[bool, str]:
    """(healthy, detail) from asking the broker for its metadata."""
    bootstrap = _servers(kafka)
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if host in ("127.0.0.1", "localhost") and port.isdigit() and not port_open(int(port)):
        return False, f"nothing listens on {bootstrap}"
    reasons: list[str] = []  # the client's own account (a TLS handshake, SASL), not in the exception
    config = client_config(kafka, **{"socket.connection.setup.timeout.ms": 2000, "log_level": 0})
    admin = AdminClient(config, error_cb=lambda err: reasons.append(err.str()))
    try:
        meta = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        admin.poll(0)  # serve the error callbacks
        return False, _why_not(config, reasons, str(exc.args[0] if exc.args else exc))
    return True, f"{len(meta.brokers)} broker(s), {len(meta.topics)} topic(s)"


def _why_not(config: Mapping[str, object], reasons: list[str], failure: str) -> str:
    """The most telling reason a client got no answer: its own (a TLS handshake, SASL) before
    "brokers are down"; a TLS or SASL listener never answers a plaintext client at all."""
    told = [r for r in reasons if not r.endswith("brokers are down")]
    if told:
        return told[-1]
    detail = reasons[-1] if reasons else failure
    if str(config.get("security.protocol", "PLAINTEXT")).upper() == "PLAINTEXT":
        detail += " (a TLS or SASL listener does not answer a plaintext client: see kafka_security_protocol)"
    return detail


def wait_for_kafka(kafka: Kafka, timeout_s: float, alive: Callable[[], bool] | None = None) -> None:
    """Block until the broker answers; ShrinkwatchError after timeout_s, or once `alive()`
    (the broker process being started, when given) says it died."""
    deadline = time.monotonic() + timeout_s
    detail = ""
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            msg = "the Kafka broker exited during start-up"
            raise ShrinkwatchError(msg)
        ok, detail = kafka_healthy(kafka, timeout_s=2.0)
        if ok:
            return
        time.sleep(0.5)
    msg = f"Kafka at {_servers(kafka)} did not answer within {timeout_s:.0f} s ({detail})"
    raise ShrinkwatchError(msg)


def ensure_topics(
    settings: Settings, names: Iterable[str] = TOPICS, partitions: int | None = None
) -> list[str]:
    """Create the contract topics that are missing; return the names created.

    With topic_replication 3 or more (a chain's cluster) a topic also gets min.insync.replicas
    = 2 (topic_config): the producers ask for acks=all, so a message counts as written once
    two brokers hold it, and one broker lost (killed, or down for an upgrade) loses nothing
    and stops nothing."""
    admin = AdminClient(client_config(settings.kafka_config(), log_level=3))
    wanted = [settings.topic(n) for n in names]
    existing = set(admin.list_topics(timeout=10).topics)
    missing = [t for t in wanted if t not in existing]
    if not missing:
        return []
    count = partitions or settings.topic_partitions
    # Frames are the bulk (every camera, 5 a second): kept for the flows' replay window, not
    # the broker's default week. Set when a topic is created; an existing topic is left as its
    # owner configured it.
    frames = {"retention.ms": str(int(settings.detections_retention_h * 3_600_000))}
    futures = admin.create_topics(
        [
            NewTopic(
                t,
                num_partitions=count,
                replication_factor=settings.topic_replication,
                config=topic_config(settings, frames if t == settings.topic("detections") else {}),
            )
            for t in missing
        ],
        operation_timeout=30,
    )
    created = []
    for topic, future in futures.items():
        try:
            future.result()
            created.append(topic)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                msg = f"could not create topic {topic}: {exc}"
                raise ShrinkwatchError(msg) from None
    _wait_until_served(admin, missing)
    return created


def topic_config(settings: Settings, config: Mapping[str, str]) -> dict[str, str]:
    """A created topic's config: `config`, and min.insync.replicas 2 where topics are
    replicated 3 or more times (with 2 replicas it would stop writes while one is away)."""
    if settings.topic_replication >= 3:
        return {**config, "min.insync.replicas": "2"}
    return dict(config)


def _wait_until_served(admin: AdminClient, topics: list[str], timeout_s: float = 30.0) -> None:
    """Block until every topic's partitions have a leader (a new topic takes a moment)."""
    deadline = time.monotonic() + timeout_s
    while True:
        meta = admin.list_topics(timeout=10)
        ready = all(
            t in meta.topics
            and meta.topics[t].error is None
            and meta.topics[t].partitions
            and all(p.leader >= 0 and p.error is None for p in meta.topics[t].partitions.values())
            for t in topics
        )
        if ready:
            return
        if time.monotonic() > deadline:
            msg = f"topics {', '.join(topics)} were created but are not served after {timeout_s:.0f} s"
            raise ShrinkwatchError(msg)
        time.sleep(0.2)


def topic_lag(kafka: Kafka, topic: str, positions: Callable[[list[int]], dict[int, int]]) -> int:
    """Messages of `topic` not yet read by a reader whose next offset per partition is
    `positions(partitions)` (a negative or missing position: the partition's start)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(client_config(kafka, log_level=0, **{"group.id": "shrinkwatch-lag"}))
    try:
        meta = consumer.list_topics(topic, timeout=5)
        parts = sorted(meta.topics[topic].partitions) if topic in meta.topics else []
        at = positions(parts)
        lag = 0
        for part in parts:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, part), timeout=5)
            position = at.get(part, -1)
            lag += high - (position if position >= low else low)
        return lag
    finally:
        consumer.close()


def group_positions(kafka: Kafka, group: str, topic: str) -> Callable[[list[int]], dict[int, int]]:
    """The committed offsets of consumer group `group` on `topic`, for `topic_lag`."""
    from confluent_kafka import Consumer, TopicPartition

    def positions(parts: list[int]) -> dict[int, int]:
        consumer = Consumer(client_config(kafka, log_level=0, **{"group.id": group}))
        try:
            done = consumer.committed([TopicPartition(topic, p) for p in parts], timeout=5)
            return {tp.partition: tp.offset for tp in done}
        finally:
            consumer.close()

    return positions


def delete_prefixed(kafka: Kafka, prefixes: Iterable[str]) -> list[str]:
    """Delete every topic whose name starts with one of `prefixes` (for tests and benchmarks,
    with prefixes they made up themselves); returns the names deleted."""
    from confluent_kafka import KafkaError

    wanted = tuple(prefixes)
    if not wanted:
        return []
    admin = AdminClient(client_config(kafka, log_level=3))
    topics = sorted(t for t in admin.list_topics(timeout=10).topics if t.startswith(wanted))
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            try:
                future.result()
            except KafkaException as exc:  # gone already is what was wanted
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise
    return topics
