"""The health dataflow: sw.camera-health into `camera_health`, each camera's latest state.

Camera readers report their state every few seconds (detector/health.py); this keeps the
newest report of each camera, and since when its status has held, for the dashboard's camera
tiles. A report that breaks the contract goes to sw.dlq and the flow keeps running. Output is
at-least-once (a restart replays the last snapshot interval): the writer ignores a report
older than, or the same as, the one stored.
"""

from __future__ import annotations

from typing import cast

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaError, KafkaSource, KafkaSourceMessage
from bytewax.dataflow import Dataflow, Stream

from flows.kafka_io import CONSUMER_CONFIG, publish_dead_letters
from flows.progress import COUNTERS
from flows.sinks import PostgresSink
from shrinkwatch.contracts import CameraHealth, ContractError, DeadLetter, decode
from shrinkwatch.settings import Settings
from warehouse.health import write_health


def parse(message: KafkaSourceMessage[bytes | None, bytes | None] | KafkaError) -> CameraHealth | DeadLetter:
    """A report, or the dead letter saying why it is not one (a Kafka error included)."""
    if isinstance(message, KafkaError):
        inner = message.msg
        return DeadLetter.for_raw(
            source_topic=inner.topic or "",
            partition=inner.partition,
            offset=inner.offset,
            error=f"kafka: {message.err}",
            raw=inner.value,
        )
    try:
        return decode(message.value, CameraHealth)
    except ContractError as exc:
        return DeadLetter.for_raw(
            source_topic=message.topic or "",
            partition=message.partition,
            offset=message.offset,
            error=str(exc),
            raw=message.value,
        )


def build_flow(settings: Settings, *, tail: bool = True) -> Dataflow:
    """The health dataflow for these settings (`tail=False` stops at the end of the topic)."""
    flow = Dataflow("health")
    brokers = [settings.kafka_servers]
    source = KafkaSource(
        brokers, [settings.topic("camera-health")], tail=tail, add_config=dict(CONSUMER_CONFIG)
    )
    reports = op.map("parse", op.input("read", flow, source), parse)
    split = op.branch("split", reports, lambda item: isinstance(item, CameraHealth))
    dead = op.inspect("count_dead", cast(Stream[DeadLetter], split.falses), COUNTERS.dead_letter)
    publish_dead_letters("dlq", dead, settings)
    op.output(
        "store", cast(Stream[CameraHealth], split.trues), PostgresSink(settings.database_dsn, write_health)
    )
    return flow
