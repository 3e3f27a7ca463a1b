"""Each camera's state in the worker that reads its partition (flows.kafka_io.placed_key).

The placement relies on two decisions made inside Bytewax's Rust core (pinned at 0.21.1):
which worker reads an input partition, and which worker keeps a state key. The first test
runs both in Bytewax itself, with several workers, and fails if either differs from what
flows.kafka_io computes; the second runs the incidents flow over Kafka with three workers
and checks that every camera's state was kept by the thread that read its frames, and that
the check does see frames cross when the placement is off.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.inputs import (
    DynamicSource,
    FixedPartitionedSource,
    StatefulSourcePartition,
    StatelessSourcePartition,
)

from flows import kafka_io
from flows.kafka_io import placed_key, reader_workers, state_worker

KEYS = [f"cam-{i}" for i in range(60)] + ["", "a", "cam-entrance-1", "store-001~3", "x" * 23]


class _Once(StatelessSourcePartition[Any]):
    def __init__(self) -> None:
        self.done = False

    def next_batch(self) -> list[Any]:
        if self.done:
            raise StopIteration
        self.done = True
        return []


class _Workers(DynamicSource[Any]):
    """Learns which thread is which worker (a dynamic source is told its worker index)."""

    def __init__(self, seen: dict[int, int]) -> None:
        self.seen = seen

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Once:
        self.seen[threading.get_native_id()] = worker_index
        return _Once()


class _Part(StatefulSourcePartition[tuple[str, int], None]):
    def __init__(self, items: list[tuple[str, int]]) -> None:
        self.items: list[tuple[str, int]] | None = items

    def next_batch(self) -> list[tuple[str, int]]:
        if self.items is None:
            raise StopIteration
        items, self.items = self.items, None
        return items

    def snapshot(self) -> None:
        return None


class _Parts(FixedPartitionedSource[tuple[str, int], None]):
    """`count` partitions that every worker lists, as Bytewax's Kafka source does; the first
    one carries KEYS (and placed keys) for the stateful step."""

    def __init__(self, count: int, readers: dict[str, int], extra: list[str]) -> None:
        self.count, self.readers, self.extra = count, readers, extra

    def list_parts(self) -> list[str]:
        return [f"{i}-sw.detections" for i in range(self.count)]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _Part:
        self.readers[for_part] = threading.get_native_id()
        first = for_part == "0-sw.detections"
        return _Part([(k, 1) for k in KEYS + self.extra] if first else [])


@pytest.mark.parametrize(("workers", "partitions"), [(2, 4), (3, 4), (3, 12), (4, 12), (2, 64), (5, 24)])
def test_bytewax_places_partitions_and_keys_as_kafka_io_computes(workers: int, partitions: int) -> None:
    from bytewax._bytewax import cluster_main

    threads: dict[int, int] = {}
    readers: dict[str, int] = {}
    keepers: dict[str, int] = {}
    parts = [f"{i}-sw.detections" for i in range(partitions)]
    expected_readers = reader_workers(parts, workers)
    placed = [placed_key("cam-9", w, workers) for w in range(workers)]

    def keep(_step: str, item: tuple[str, Any]) -> None:
        keepers[item[0]] = threading.get_native_id()

    flow = Dataflow("placement")
    op.inspect("workers", op.input("who", flow, _Workers(threads)))
    items = op.input("read", flow, _Parts(partitions, readers, placed))
    op.inspect("kept", op.stateful_map("state", items, lambda state, value: (state, value)), keep)
    cluster_main(flow, [], 0, epoch_interval=timedelta(seconds=1), worker_count_per_proc=workers)

    assert sorted(threads.values()) == list(range(workers))
    assert {part: threads[t] for part, t in readers.items()} == expected_readers
    kept = {key: threads[t] for key, t in keepers.items()}
    assert kept == {key: state_worker(key, workers) for key in KEYS + placed}
    assert [kept[key] for key in placed] == list(range(workers))


def test_placed_keys() -> None:
    assert placed_key("cam-1", 0, 1) == "cam-1"  # one worker: the camera id, as before placement
    for workers in (2, 3, 7):
        for worker in range(workers):
            key = placed_key("cam-entrance-1", worker, workers)
            assert state_worker(key, workers) == worker
            assert key == "cam-entrance-1" or key.startswith("cam-entrance-1~")
    # Partitions in string order, the fewest first, the lowest index among equals.
    assert reader_workers([f"{i}-t" for i in range(12)], 3) == {
        "0-t": 0, "1-t": 1, "10-t": 2, "11-t": 0, "2-t": 1, "3-t": 2,
        "4-t": 0, "5-t": 1, "6-t": 2, "7-t": 0, "8-t": 1, "9-t": 2,
    }  # fmt: skip


@pytest.mark.services
@pytest.mark.parametrize("local", [True, False])
def test_the_incidents_flow_keeps_each_camera_where_it_is_read(
    make_settings: Any, local: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.behaviour.stores import StoreInfo
    from flows.behaviour.tracks import Thresholds
    from flows.catalog import SiteCatalog
    from flows.incidents import build_flow
    from flows.run import execute
    from shrinkwatch.kafka_admin import ensure_topics
    from tests.factories import frame
    from tests.flows.test_incidents_flow import publish_frames

    settings = make_settings(topic_partitions=4)
    ensure_topics(settings)
    cameras = [f"cam-{i}" for i in range(12)]
    publish_frames(settings, [frame(c, i, i * 0.2, []) for i in range(5) for c in cameras])
    catalog = SiteCatalog.fixed(
        {c: [] for c in cameras}, {"store-001": StoreInfo("store-001", thresholds=Thresholds())}, Thresholds()
    )
    monkeypatch.setattr(kafka_io, "_READERS", {})
    monkeypatch.setattr(kafka_io, "_CROSSED", set())
    monkeypatch.setattr(kafka_io, "PLACEMENT", kafka_io.Placement(local=local))
    kept: dict[str, bool] = {}
    check = kafka_io.check_local

    def record(camera_id: str) -> bool:
        kept[camera_id] = (
            check(camera_id) if local else kafka_io._READERS.get(camera_id) == (threading.get_native_id())
        )
        return True

    monkeypatch.setattr("flows.incidents.check_local", record)
    execute(build_flow(settings, catalog, tail=False), workers=3, snapshot_s=1.0)

    assert sorted(kept) == sorted(cameras)
    if local:
        assert all(kept.values()) and not kafka_io._CROSSED
    else:  # keyed by camera alone, Bytewax's hash sends most cameras to another worker
        assert not all(kept.values())
