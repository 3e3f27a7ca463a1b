"""Kafka edges shared by the dataflows: parsing with dead letters, and serialising outputs."""

from __future__ import annotations

from bytewax.connectors.kafka import KafkaError, KafkaSinkMessage, KafkaSourceMessage

from shrinkwatch.contracts import ContractError, DeadLetter, Detection, Incident, decode, encode

RawMessage = KafkaSourceMessage[bytes | None, bytes | None]


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


def dead_letter_from_error(err: KafkaError[bytes | None, bytes | None]) -> DeadLetter:
    """A consumer error as a dead letter."""
    msg = err.msg
    return DeadLetter.for_raw(
        source_topic=msg.topic or "",
        partition=msg.partition,
        offset=msg.offset,
        error=f"kafka: {err.err}",
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
