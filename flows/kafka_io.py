"""Kafka edges shared by the dataflows: parsing with dead letters, and serialising outputs."""

from __future__ import annotations

from bytewax.connectors.kafka import (
    KafkaSinkMessage,
    KafkaSource,
    KafkaSourceMessage,
    _KafkaSourcePartition,
)
from bytewax.inputs import StatefulSourcePartition
from confluent_kafka import KafkaError as ConfluentKafkaError

from flows.frames import Frame, parse_frame
from flows.progress import COUNTERS
from shrinkwatch.contracts import ContractError, DeadLetter, Detection, Incident, decode, encode

RawMessage = KafkaSourceMessage[bytes | None, bytes | None]


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


def parse_detection(msg: RawMessage) -> Detection | DeadLetter:
    """A valid detection, or a dead letter that says what was wrong (never raises)."""
    try:
        return decode(msg.value, Detection)
    except ContractError as exc:
        return DeadLetter.for_raw(
            source_topic=msg.topic or "",
            partition=msg.partition,
            offset=msg.offset,
            error=str(exc),
            raw=msg.value,
        )


def dead_letter_message(letter: DeadLetter) -> KafkaSinkMessage[bytes, bytes]:
    """For sw.dlq: key = the source topic."""
    return KafkaSinkMessage(key=letter.source_topic.encode(), value=encode(letter))


def incident_message(incident: Incident) -> KafkaSinkMessage[bytes, bytes]:
    """For sw.incidents: key = incident_id."""
    return KafkaSinkMessage(key=incident.incident_id.encode(), value=encode(incident))


PRODUCER_CONFIG = {"enable.idempotence": "true", "compression.type": "lz4", "log_level": "3"}
CONSUMER_CONFIG = {"log_level": "3"}
