"""Kafka edges shared by the dataflows: one input operator for every topic, and serialising outputs.

Every dataflow reads its topic with `read_topic(...)`: it reads the topic, parses each message
with the parser it is given (which raises ContractError, naming the field, for a message that
breaks its contract), and routes what fails to sw.dlq with the contract's error text, the
topic, partition, offset and raw value (one place builds a DeadLetter: here), so a new flow
gets dead-lettering for free. `detections(...)` is that operator over sw.detections, keyed by
camera: the incidents and occupancy flows start with it; the health flow reads
sw.camera-health with it.

`TopicSource` parses where it reads, which keeps the detections hot path lean: no message
object per record and no extra step per frame. It relies on internals of Bytewax's Kafka
connector, pinned at 0.21.1 (its last release, pyproject.toml): `_KafkaSourcePartition` and
its attributes `_consumer` (the confluent-kafka Consumer), `_batch_size`, `_eof` (tail=False
reached the end) and `_offset` (the next offset, which recovery snapshots). The flow tests
(tests/flows/) run through all of them: reading, stopping at the end of the topic, and
resuming from a snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

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
from confluent_kafka import Message

from flows.behaviour.frames import Frame, parse_frame
from flows.progress import COUNTERS
from shrinkwatch.contracts import ContractError, DeadLetter, Incident, encode
from shrinkwatch.outage import Outage
from shrinkwatch.settings import Settings

log = logging.getLogger(__name__)
X = TypeVar("X")
Parser = Callable[[bytes | None], X]  # a message's value -> the item; ContractError when it is not one


def dead_letter(msg: Message, error: str) -> DeadLetter:
    """The dead letter of a message read from Kafka, saying why (`error`) it went nowhere else."""
    return DeadLetter.for_raw(
        source_topic=msg.topic() or "",
        partition=msg.partition(),
        offset=msg.offset(),
        error=error,
        raw=msg.value(),
    )


class _TopicPartition(StatefulSourcePartition[X | DeadLetter, int | None], Generic[X]):
    """One partition of a topic, parsed as it is read (see TopicSource)."""

    def __init__(
        self, inner: _KafkaSourcePartition, parse: Parser[X], count: Callable[[int], None] | None
    ) -> None:
        # Bytewax's own partition (pinned at 0.21.1, its last release) keeps the consumer,
        # its configuration and the offset that recovery snapshots; only reading differs.
        self._inner, self._parse, self._count = inner, parse, count
        self._outage = Outage("Kafka", log.warning)

    def next_batch(self) -> list[X | DeadLetter]:
        inner = self._inner
        if inner._eof:
            raise StopIteration
        parse = self._parse
        out: list[X | DeadLetter] = []
        last_offset = None
        dead = 0
        for msg in inner._consumer.consume(inner._batch_size, 0.001):
            error = msg.error()
            if error is not None and error.code() == ConfluentKafkaError._PARTITION_EOF:
                inner._eof = True  # stop at the next call, after this batch
                break
            offset = msg.offset()
            if error is not None and (offset is None or offset < 0):
                # Not a message but the client's news (the broker is unreachable, ...): no
                # offset to move past and nothing to dead-letter; librdkafka reconnects.
                self._outage.failed(error.str())
                continue
            last_offset = offset
            if error is None:
                try:
                    out.append(parse(msg.value()))
                    continue
                except ContractError as exc:
                    problem = str(exc)
            else:
                problem = f"kafka: {error}"
            out.append(dead_letter(msg, problem))
            dead += 1
        if last_offset is not None:
            inner._offset = last_offset + 1
            self._outage.back()
        if self._count is not None:
            self._count(len(out) - dead)  # for the console, whichever flow reads them
        return out

    def snapshot(self) -> int | None:
        return self._inner.snapshot()

    def close(self) -> None:
        self._inner.close()


class TopicSource(KafkaSource, Generic[X]):
    """One topic as parsed items (`parse` of each message's value), and dead letters for what
    breaks the contract or comes with a Kafka error.

    Bytewax's KafkaSource with the parsing done where the messages are read: no message
    object per record and no extra step per item, which is most of a flow's overhead at
    thousands of frames per second. Offsets live in the recovery store, as with KafkaSource.
    `count(n)` hears how many items each batch parsed.
    """

    def __init__(
        self,
        brokers: list[str],
        topic: str,
        parse: Parser[X],
        *,
        tail: bool = True,
        count: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(brokers, [topic], tail=tail, add_config=dict(CONSUMER_CONFIG), raise_on_errors=False)
        self._parse, self._count = parse, count

    def build_part(  # type: ignore[override]
        self, step_id: str, for_part: str, resume_state: int | None
    ) -> _TopicPartition[X]:
        return _TopicPartition(super().build_part(step_id, for_part, resume_state), self._parse, self._count)


def dead_letter_message(letter: DeadLetter) -> KafkaSinkMessage[bytes, bytes]:
    """For sw.dlq: key = the source topic."""
    return KafkaSinkMessage(key=letter.source_topic.encode(), value=encode(letter))


def incident_message(incident: Incident) -> KafkaSinkMessage[bytes, bytes]:
    """For sw.incidents: key = incident_id."""
    return KafkaSinkMessage(key=incident.incident_id.encode(), value=encode(incident))


PRODUCER_CONFIG = {"enable.idempotence": "true", "compression.type": "lz4", "log_level": "3"}
CONSUMER_CONFIG = {"log_level": "3"}


@dataclass(frozen=True)
class Parsed(Generic[X]):
    """The streams of `read_topic`: the parsed items, and the dead letters."""

    items: Stream[X]
    dead: Stream[DeadLetter]


@operator
def read_topic(
    step_id: str,
    flow: Dataflow,
    settings: Settings,
    topic: str,
    parse: Parser[X],
    *,
    tail: bool = True,
    dlq: bool = True,
    count: Callable[[int], None] | None = None,
) -> Parsed[X]:
    """The topic `settings.topic(topic)`, each message parsed by `parse` as it is read; what
    breaks the contract (or comes with a Kafka error) is counted and, with `dlq`, published
    to sw.dlq. `tail=False` stops at the end of the topic; `count` as for TopicSource.
    """
    source = TopicSource([settings.kafka_servers], settings.topic(topic), parse, tail=tail, count=count)
    read = op.input("read", flow, source)
    split = op.branch("split", read, lambda item: not isinstance(item, DeadLetter))
    dead = op.inspect("count_dead", cast(Stream[DeadLetter], split.falses), COUNTERS.dead_letter)
    if dlq:
        publish_dead_letters("dlq", dead, settings)
    return Parsed(cast(Stream[X], split.trues), dead)


@dataclass(frozen=True)
class Detections:
    """The streams of `detections`: frames keyed by camera, and the dead letters."""

    frames: Stream[tuple[str, Frame]]
    dead: Stream[DeadLetter]


def keyed_frame(raw: bytes | None) -> tuple[str, Frame]:
    """A `sw.detections` value as (camera_id, frame), keyed for the per-camera steps."""
    frame = parse_frame(raw)
    return frame.camera_id, frame


def detections(
    step_id: str, flow: Dataflow, settings: Settings, *, tail: bool = True, dlq: bool = True
) -> Detections:
    """sw.detections as (camera_id, Frame) pairs (`read_topic` under `step_id`): what breaks
    the contract is counted and, with `dlq`, published to sw.dlq. `tail=False` stops at the
    end of the topic. The frames read are counted for the console (COUNTERS.frames).

    A flow that always runs beside the incidents flow may pass `dlq=False` and leave the
    dead letters to it, so that sw.dlq holds each bad message once.
    """
    read = read_topic(
        step_id, flow, settings, "detections", keyed_frame, tail=tail, dlq=dlq, count=COUNTERS.add_frames
    )
    return Detections(read.items, read.dead)


def publish_dead_letters(step_id: str, dead: Stream[DeadLetter], settings: Settings) -> None:
    """Publish dead letters to sw.dlq (steps `step_id` and `step_id`_message)."""
    kop.output(
        step_id,
        op.map(f"{step_id}_message", dead, dead_letter_message),
        brokers=[settings.kafka_servers],
        topic=settings.topic("dlq"),
        add_config=PRODUCER_CONFIG,
    )
