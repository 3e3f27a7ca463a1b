"""A chain's topology on one machine: 2 camera readers + the incidents flow as 2 processes on a
3-broker Kafka cluster (replication 3) give the incidents of 1 flow process on one broker,
also when a broker is killed mid-run.

The readers (`detect --shard 0/2` and `1/2`) play vtest.avi as four cameras, as fast as they
can, 40 analysed frames each (no evidence clips: the topology is under test); the flow runs
as `flows run incidents --processes 2` beside them. What they published is then read back
from the cluster: every camera's frames once, none lost or twice (the producers are
idempotent, acks=all). The reference is the incidents flow in one process on the single
shared broker over those same frames, read to the end of its topic; the chain's incidents in
PostgreSQL must come to equal it, row for row. (The frames, not the footage, are compared: a
capture time is when a reader read the frame, so two detector runs give other times, and so
other incidents.)
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from infra.kafka_cluster import KafkaCluster, consecutive_free_ports
from shrinkwatch.contracts import Detection, decode
from shrinkwatch.site_file import parse_site_config
from tests.support import (
    VTEST,
    cli_env,
    needs_footage,
    produce,
    read_all,
    spawn_cli,
    stored_incidents,
    wait_for,
)
from warehouse.db import connect
from warehouse.migrate import migrate
from warehouse.site_tables import apply_site_config

pytestmark = [pytest.mark.services, pytest.mark.slow, needs_footage]

CAMERAS = ["cam-a", "cam-b", "cam-d", "cam-e"]  # CRC-32: a, b to reader 0; d, e to reader 1
FRAMES = 40  # per camera: 8 s of the footage at 5 fps
SHELF = [[0.30, 0.30], [0.66, 0.30], [0.66, 0.56], [0.30, 0.56]]


def site() -> str:
    cameras = "".join(
        f"""  - id: {camera}
    store_id: chain-store
    name: {camera}
    stream_url: {VTEST}
    fps: 5
    zones:
      - {{id: z-shelf, name: Shelf, kind: high_value, polygon: {SHELF}}}
"""
        for camera in CAMERAS
    )
    return f"stores: [{{id: chain-store, name: Chain, timezone: Europe/London}}]\ncameras:\n{cameras}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three KRaft nodes (broker + controller each), stopped at the end whatever happens."""
    nodes = KafkaCluster(tmp_path_factory.mktemp("kafka-cluster"), nodes=3)
    try:
        nodes.start(progress=lambda _m: None)
        yield nodes
    finally:
        nodes.stop()


def prepared(settings: Any) -> Any:
    with connect(settings.database_dsn) as conn:
        migrate(conn, progress=lambda _m: None)
        apply_site_config(conn, parse_site_config(site()))
    return settings


def final_rows(settings: Any) -> list[tuple[Any, ...]]:
    """The incidents as the warehouse holds them: all that identifies and describes each."""
    with connect(settings.database_dsn) as conn:
        rows = stored_incidents(conn)
    return sorted(
        (
            r["incident_id"],
            r["version"],
            r["status"],
            r["incident_type"],
            r["camera_id"],
            r["track_id"],
            r["started_at"],
            r["ended_at"],
            tuple(r["zone_ids"]),
            str(r["signals"]),
            r["risk_score"],
        )
        for r in rows
    )


def leader_of(settings: Any, topic: str, partition: int) -> int:
    """The node id (1-based) leading a partition."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_servers, "log_level": 0})
    return int(admin.list_topics(topic, timeout=10).topics[topic].partitions[partition].leader)


def reference_rows(make_settings: Any, frames: list[Any]) -> list[tuple[Any, ...]]:
    """The incidents of the same frames through the flow in one process on the shared broker,
    read to the end of the topic."""
    from flows.incidents import build_flow
    from flows.run import execute

    settings = prepared(make_settings(loiter_threshold_s=2.0, incident_update_s=2.0))
    produce(settings, settings.topic("detections"), [(m.key(), m.value()) for m in frames])
    execute(build_flow(settings, tail=False), workers=1, snapshot_s=1.0)
    return final_rows(settings)


@pytest.mark.parametrize("kill", [False, True], ids=["all-brokers", "one-broker-killed"])
def test_two_readers_and_two_flow_processes_give_the_one_process_incidents(
    cluster: KafkaCluster, make_settings: Any, tmp_path: Path, kill: bool
) -> None:
    for node in range(cluster.nodes):  # a node killed by an earlier case comes back
        if not cluster.alive(node):
            cluster.start_node(node)
    cluster.wait_brokers(cluster.nodes)
    settings = prepared(
        make_settings(
            kafka_bootstrap=cluster.bootstrap,
            topic_partitions=4,
            topic_replication=3,
            loiter_threshold_s=2.0,
            incident_update_s=2.0,
            flow_cluster_port=consecutive_free_ports(2)[0],
            evidence=False,
        )
    )
    detections = settings.topic("detections")
    admin = AdminClient({"bootstrap.servers": settings.kafka_servers, "log_level": 0})
    partitions = admin.list_topics(detections, timeout=10).topics[detections].partitions
    assert len(partitions) == 4 and all(len(p.replicas) == 3 for p in partitions.values())
    (config,) = admin.describe_configs([ConfigResource("topic", detections)]).values()
    assert config.result()["min.insync.replicas"].value == "2"

    env = cli_env(settings, tmp_path)
    flow = spawn_cli(["flows", "run", "incidents", "--processes", "2"], env, tmp_path / "flow.log")
    readers = [
        spawn_cli(
            ["detect", "--shard", f"{i}/2", "--pace", "fast", "--max-frames", str(FRAMES)],
            env,
            tmp_path / f"reader-{i}.log",
        )
        for i in range(2)
    ]
    try:
        if kill:  # after the first frames are in: the node leading partition 0 dies
            wait_for(
                lambda: sum(_ends(settings, detections).values()) >= len(CAMERAS) * FRAMES // 4,
                300,
                what="a quarter of the frames in the cluster",
            )
            cluster.kill(leader_of(settings, detections, 0) - 1)
        for i, reader in enumerate(readers):
            assert reader.wait(timeout=600) == 0, (tmp_path / f"reader-{i}.log").read_text()[-3000:]
        said = [(tmp_path / f"reader-{i}.log").read_text() for i in range(2)]
        assert "shard 0/2 (by camera) takes 2 of 4 camera(s): cam-a, cam-b" in said[0]
        assert "shard 1/2 (by camera) takes 2 of 4 camera(s): cam-d, cam-e" in said[1]

        frames = read_all(settings, detections)
        published = sorted((f.camera_id, f.frame_id) for f in (decode(m.value(), Detection) for m in frames))
        ids = {c: [i for cam, i in published if cam == c] for c in CAMERAS}
        assert all(len(ids[c]) == FRAMES == len(set(ids[c])) for c in CAMERAS), ids  # once each
        assert sorted(c for c, _ in published) == sorted(c for c in CAMERAS for _ in range(FRAMES))

        reference = reference_rows(make_settings, frames)
        assert len(reference) >= 2 and {r[4] for r in reference} == set(CAMERAS), reference
        got: list[Any] = []

        def caught_up() -> bool:
            got[:] = final_rows(settings)
            return got == reference

        try:
            wait_for(caught_up, 300, what="the chain's incidents to equal the one-process flow's")
        except pytest.fail.Exception:
            assert got == reference  # shows the difference
    finally:
        for proc in [*readers, flow]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*readers, flow]:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    log = (tmp_path / "flow.log").read_text()
    assert "2 processes x 1 worker(s)" in log
    assert "read by one worker and kept by another" not in log  # every camera's state stayed local


def _ends(settings: Any, topic: str) -> dict[int, int]:
    """The end offset of each partition of `topic`."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_servers, "group.id": "chain-ends", "log_level": 0}
    )
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    finally:
        consumer.close()
