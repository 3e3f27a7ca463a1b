"""The dataflows' Prometheus metrics (flows/metrics.py): a real `shrinkwatch flows run health`
over real Kafka, scraped over HTTP; the consumer lag asked of real Kafka; a taken port."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer
from prometheus_client import REGISTRY

from flows.metrics import FLOW, LagWatch, lag
from shrinkwatch import __version__
from shrinkwatch.metrics import port_for
from shrinkwatch.settings import Settings
from tests.flows.test_health_flow import BROKEN, report, stored
from tests.metrics_support import metrics_base, metrics_url, total, try_scrape, value
from tests.support import cli_env, produce, spawn_cli, wait_for


def test_lag_counts_from_the_position_or_the_oldest_message_kept() -> None:
    assert lag(0, 10, 4) == 6
    assert lag(0, 10, 10) == 0
    assert lag(0, 10, None) == 10  # nothing read yet
    assert lag(0, 10, -2) == 10  # Bytewax's OFFSET_BEGINNING before the first message
    assert lag(5, 10, 2) == 5  # retention deleted what was before the position
    assert lag(0, 0, None) == 0


def test_lag_watch_sets_each_partitions_gauge_from_kafka(settings: Settings) -> None:
    topic = settings.topic("camera-health")
    produce(settings, topic, [report("cam-1", i, "online") for i in range(5)])
    consumer = Consumer({"bootstrap.servers": settings.kafka_servers, "group.id": "t", "log_level": 0})
    watch = LagWatch()
    ends = {p: consumer.get_watermark_offsets(_tp(topic, p), timeout=10)[1] for p in (0, 1)}
    assert sum(ends.values()) == 5
    positions = {0: 1, 1: None}
    for partition in (0, 1):
        watch.watch(topic, partition, lambda p=partition: positions[p])
    try:
        watch.measure(consumer)
    finally:
        consumer.close()

    def gauge(partition: int) -> float | None:
        labels = {"flow": FLOW.name, "topic": topic, "partition": str(partition)}
        return REGISTRY.get_sample_value("shrinkwatch_flow_consumer_lag_messages", labels)

    assert gauge(0) == max(0, ends[0] - 1)
    assert gauge(1) == ends[1]


def _tp(topic: str, partition: int) -> Any:
    from confluent_kafka import TopicPartition

    return TopicPartition(topic, partition)


def _stop(flow: subprocess.Popen[bytes]) -> None:
    flow.send_signal(signal.SIGINT)
    flow.wait(timeout=60)


def test_health_flow_serves_messages_dead_letters_and_lag(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"metrics_port": metrics_base("health")})
    topic = settings.topic("camera-health")
    url = metrics_url(settings, "health")
    first = [report(f"cam-{i % 3}", i, "online") for i in range(6)] + [(b"cam-x", BROKEN), (b"cam-y", b"{")]
    produce(settings, topic, first)
    flow = spawn_cli(
        ["flows", "run", "health", "--snapshot-s", "0.5"], cli_env(settings, tmp_path), tmp_path / "f.log"
    )
    try:

        def caught_up(messages: int) -> Any:
            def check() -> Any:
                s = try_scrape(url)
                if not s:
                    return None
                lags = [
                    value(
                        s, "shrinkwatch_flow_consumer_lag_messages", flow="health", topic=topic, partition=p
                    )
                    for p in ("0", "1")
                ]
                done = value(
                    s, "shrinkwatch_flow_messages_total", flow="health", topic=topic
                ) == messages and lags == [0, 0]
                return s if done else None

            return check

        samples = wait_for(caught_up(len(first)), 120, what=f"{len(first)} messages consumed, lag 0")
        assert value(samples, "shrinkwatch_flow_dead_letters_total", flow="health") == 2
        assert value(samples, "shrinkwatch_build_info", version=__version__, role="health") == 1
        wait_for(lambda: set(stored(settings)) == {"cam-0", "cam-1", "cam-2"}, 60, what="the reports stored")

        more = [report("cam-0", 10 + i, "degraded", fps=1.0) for i in range(3)]
        produce(settings, topic, more)
        samples = wait_for(caught_up(len(first) + len(more)), 120, what="the next 3 consumed, lag 0 again")
        assert value(samples, "shrinkwatch_flow_dead_letters_total", flow="health") == 2
        assert total(samples, "shrinkwatch_flow_consumer_lag_messages", flow="health") == 0
        assert flow.poll() is None
    finally:
        _stop(flow)


def test_a_flow_runs_without_metrics_when_its_port_is_taken(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"metrics_port": metrics_base("health")})
    port = port_for(settings, "health")
    log = tmp_path / "f.log"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        flow = spawn_cli(["flows", "run", "health"], cli_env(settings, tmp_path), log)
        try:
            produce(settings, settings.topic("camera-health"), [report("cam-1", 0, "online")])
            wait_for(lambda: "cam-1" in stored(settings), 120, what="the report stored")
            assert flow.poll() is None
        finally:
            _stop(flow)
    text = log.read_text()
    assert f"cannot listen on 127.0.0.1:{port}" in text
    assert "metrics_port" in text


def lag_partitions(samples: Any) -> list[str]:
    """The partitions whose consumer lag these samples hold."""
    return [
        dict(labels)["partition"] for n, labels in samples if n == "shrinkwatch_flow_consumer_lag_messages"
    ]


def test_each_process_of_a_flow_serves_its_own_partitions(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"metrics_port": metrics_base("health", instances=2)})
    topic = settings.topic("camera-health")
    reports = [report(f"cam-{i}", i, "online") for i in range(12)]
    produce(settings, topic, reports)
    urls = [metrics_url(settings, "health", i) for i in (0, 1)]
    flow = spawn_cli(
        ["flows", "run", "health", "--processes", "2"], cli_env(settings, tmp_path), tmp_path / "f.log"
    )
    try:

        def both() -> Any:
            scraped = [try_scrape(url) for url in urls]
            if not all(scraped):
                return None
            consumed = sum(total(s, "shrinkwatch_flow_messages_total", flow="health") for s in scraped)
            partitions = sorted(p for s in scraped for p in lag_partitions(s))
            return scraped if consumed == len(reports) and partitions == ["0", "1"] else None

        # Each partition's messages and lag come from the one process that reads it.
        scraped = wait_for(both, 180, what="both processes' metrics, every report consumed")
        for s in scraped:
            assert value(s, "shrinkwatch_build_info", version=__version__, role="health") == 1
            assert len(lag_partitions(s)) == 1
    finally:
        _stop(flow)


def test_scheduled_calibration_serves_its_build_and_process_metrics(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"metrics_port": metrics_base("calibration")})
    url = metrics_url(settings, "calibration")
    log = tmp_path / "c.log"
    calibrate = spawn_cli(["flows", "calibrate", "--schedule"], cli_env(settings, tmp_path), log)
    try:
        samples = wait_for(lambda: try_scrape(url), 120, what="calibration's /metrics")
        assert value(samples, "shrinkwatch_build_info", version=__version__, role="calibration") == 1
        assert value(samples, "process_cpu_seconds_total") is not None
    finally:
        calibrate.send_signal(signal.SIGINT)
        assert calibrate.wait(timeout=60) == 0, log.read_text()
