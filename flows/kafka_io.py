"""Kafka edges shared by the dataflows: the `detections` input chain, and serialising outputs.

Every dataflow over sw.detections starts with `detections(...)`: it reads the topic, parses
each message against the contract, and routes what breaks it to sw.dlq (with the reason,
topic, partition, offset and raw value), so a new flow gets dead-lettering for free.

`DetectionsSource` relies on internals of Bytewax's Kafka connector, pinned at 0.21.1 (its
last release, pyproject.toml): `_KafkaSourcePartition` and its attributes `_consumer` (the
confluent-kafka Consumer), `_batch_size`, `_eof` (tail=False reached the end) and `_offset`
(the next offset, which recovery snapshots). The flow tests (tests/flows/) run through all
of them: reading, stopping at the end of the topic, and resuming from a snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import bytewax.operators as op
from bytewax.connectors.kafka import (
    KafkaSinkMessage,
    KafkaSource,
    _KafkaSourcePartition,
)
from bytewax.connectors.kafka import operators as kop
from bytewax.dataflow import Dataflow, Stream, operator
from bytewax.inputs import StatefulSourcePartition
from confluent_kafka import KafkaError as ConfluentKafkaError

from flows.behaviour.frames import Frame, parse_frame
from flows.progress import COUNTERS
from shrinkwatch.contracts import ContractError, DeadLetter, Incident, encode
from shrinkwatch.settings import Settings


class _DetectionsPartition(StatefulSourcePartition[tuple[str, Frame] | DeadLetter, int | None]):
    """One partition of sw.detections, parsed as it is read (see DetectionsSource)."""

    def __init__(self, inner: _KafkaSourcePartition) -> None:
        # Bytewax's own partition (pinned at 0.21.1, its last release) keeps the consumer,
        # its configuration and the offset that recovery snapshots; only reading differs.
        self._inner = inner

    def next_batch(self) -> list[tuple[str, Frame] | DeadLetter]:
        inner = self._inner
        if inner._eof:
            raise StopIteration
        out: list[tuple[str, Frame] | DeadLetter] = []
        last_offset = None
        parsed = 0
        for msg in inner._consumer.consume(inner._batch_size, 0.001):
            error = msg.error()
            if error is not None and error.code() == ConfluentKafkaError._PARTITION_EOF:
                inner._eof = True  # stop at the next call, after this batch
                break
            value = msg.value()
            last_offset = msg.offset()
            problem = f"kafka: {error}" if error is not None else None
            if problem is None:
                try:
                    frame = parse_frame(value)
                except ContractError as exc:
                    problem = str(exc)
                else:
                    out.append((frame.camera_id, frame))
                    parsed += 1
                    continue
            out.append(
                DeadLetter.for_raw(
                    source_topic=msg.topic() or "",
                    partition=msg.partition(),
                    offset=last_offset,
                    error=problem,
                    raw=value,
                )
            )
        if last_offset is not None:
            inner._offset = last_offset + 1
        COUNTERS.frames += parsed  # for the console, whichever flow reads them
        return out

    def snapshot(self) -> int | None:
        return self._inner.snapshot()

    def close(self) -> None:
        self._inner.close()


class DetectionsSource(KafkaSource):
    """sw.detections as (camera_id, frame) pairs, and dead letters for what breaks the contract.

    Bytewax's KafkaSource with the parsing done where the messages are read: no message
    object per record and no extra step per frame, which is most of a flow's overhead at
    thousands of frames per second. Offsets live in the recovery store, as with KafkaSource.
    """

    def __init__(self, brokers: list[str], topic: str, *, tail: bool = True) -> None:
        super().__init__(brokers, [topic], tail=tail, add_config=dict(CONSUMER_CONFIG), raise_on_errors=False)

    def build_part(  # type: ignore[override]
        self, step_id: str, for_part: str, resume_state: int | None
    ) -> _DetectionsPartition:
        return _DetectionsPartition(super().build_part(step_id, for_part, resume_state))


def dead_letter_message(letter: DeadLetter) -> KafkaSinkMessage[bytes, bytes]:
    """For sw.dlq: key = the source topic."""
    return KafkaSinkMessage(key=letter.source_topic.encode(), value=encode(letter))


def incident_message(incident: Incident) -> KafkaSinkMessage[bytes, bytes]:
    """For sw.incidents: key = incident_id."""
    return KafkaSinkMessage(key=incident.incident_id.encode(), value=encode(incident))


PRODUCER_CONFIG = {"enable.idempotence": "true", "compression.type": "lz4", "log_level": "3"}
CONSUMER_CONFIG = {"log_level": "3"}


@dataclass(frozen=True)
class Detections:
    """The streams of `detections`: frames keyed by camera, and the dead letters."""

    frames: Stream[tuple[str, Frame]]
    dead: Stream[DeadLetter]


@operator
def detections(
    step_id: str, flow: Dataflow, settings: Settings, *, tail: bool = True, dlq: bool = True
) -> Detections:
    """sw.detections as (camera_id, Frame) pairs; what breaks the contract is counted and,
    with `dlq`, published to sw.dlq. `tail=False` stops at the end of the topic.

    A flow that always runs beside the incidents flow may pass `dlq=False` and leave the
    dead letters to it, so that sw.dlq holds each bad message once.
    """
    brokers = [settings.kafka_servers]
    parsed = op.input("read", flow, DetectionsSource(brokers, settings.topic("detections"), tail=tail))
    split = op.branch("split", parsed, lambda item: isinstance(item, tuple))
    dead = op.inspect("count_dead", cast(Stream[DeadLetter], split.falses), COUNTERS.dead_letter)
    if dlq:
        publish_dead_letters("dlq", dead, settings)
    return Detections(cast(Stream[tuple[str, Frame]], split.trues), dead)


def publish_dead_letters(step_id: str, dead: Stream[DeadLetter], settings: Settings) -> None:
    """Publish dead letters to sw.dlq (steps `step_id` and `step_id`_message)."""
    kop.output(
        step_id,
        op.map(f"{step_id}_message", dead, dead_letter_message),
        brokers=[settings.kafka_servers],
        topic=settings.topic("dlq"),
        add_config=PRODUCER_CONFIG,
    )
