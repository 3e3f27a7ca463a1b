"""Kafka edges shared by the dataflows: one input operator for every topic, and serialising outputs.

Every dataflow reads its topic with `read_topic(...)`: it reads the topic, parses each message
with the parser it is given (which raises ContractError, naming the field, for a message that
breaks its contract), and routes what fails to sw.dlq with the contract's error text, the
topic, partition, offset and raw value (one place builds a DeadLetter: here), so a new flow
gets dead-lettering for free, and its Prometheus metrics: messages consumed, dead letters and
each partition's consumer lag (flows.metrics). `detections(...)` is that operator over sw.detections, keyed by
camera: the incidents and occupancy flows start with it; the health flow reads
sw.camera-health with it.

`TopicSource` parses where it reads, which keeps the detections hot path lean: no message
object per record and no extra step per frame. It relies on internals of Bytewax's Kafka
connector, pinned at 0.21.1 (its last release, pyproject.toml): `_KafkaSourcePartition` and
its attributes `_consumer` (the confluent-kafka Consumer), `_batch_size`, `_eof` (tail=False
reached the end) and `_offset` (the next offset, which recovery snapshots). The flow tests
(tests/flows/) run through all of them: reading, stopping at the end of the topic, and
resuming from a snapshot.

Each camera's state lives in the worker that reads its partition (`placed_key`): the detector
keys sw.detections by camera, so a camera's frames are in one partition, and the source gives
each frame a state key that Bytewax routes to the worker reading that partition; no frame
crosses to another worker or process. Bytewax 0.21.1 decides both ends (Rust, pinned):
- the worker that reads an input partition (`calc_primaries` in src/timely.rs): every worker
  lists every Kafka partition; the partition keys ("3-sw.detections"), in string order, go
  each to the worker with the fewest so far, the lowest index among equals (`reader_workers`);
- the worker that keeps a key's state (`stateful_batch`'s partition in src/operators.rs):
  Rust's DefaultHasher (SipHash-1-3, zero keys) of the key string, then a 0xff byte, modulo
  the worker count (`state_worker`).
A key is the camera id where that already routes to the reader (always with one worker, so a
one-worker recovery store is unchanged), else the camera id and `~n`, the first n that does.
tests/flows/test_placement.py runs both decisions in Bytewax and fails if either changes;
a running flow warns once per camera whose frames reach state kept by another worker
(`check_local`): the incidents stay right, only the frames travel.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import bytewax.operators as op
from bytewax.connectors.kafka import (
    KafkaSinkMessage,
    KafkaSource,
    _KafkaSourcePartition,
)
from bytewax.dataflow import Dataflow, Stream, operator
from bytewax.inputs import StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import KafkaError as ConfluentKafkaError
from confluent_kafka import KafkaException, Message, Producer, TopicPartition

from flows.behaviour.frames import Frame, parse_frame
from flows.metrics import DEAD_LETTERS, FLOW, LAG, MESSAGES
from flows.progress import COUNTERS
from flows.sinks import STOPPING
from shrinkwatch.contracts import ContractError, DeadLetter, Incident, encode
from shrinkwatch.outage import Outage
from shrinkwatch.settings import Settings

log = logging.getLogger(__name__)
STALL_CHECK_S = 15.0  # read nothing this long: ask whether the partition has more (see _unstick)
X = TypeVar("X")
Parser = Callable[[bytes | None], X]  # a message's value -> the item; ContractError when it is not one


_MASK = 2**64 - 1


def _rotl(x: int, bits: int) -> int:
    return ((x << bits) | (x >> (64 - bits))) & _MASK


def _sip_round(v0: int, v1: int, v2: int, v3: int) -> tuple[int, int, int, int]:
    v0 = (v0 + v1) & _MASK
    v1 = _rotl(v1, 13) ^ v0
    v0 = _rotl(v0, 32)
    v2 = (v2 + v3) & _MASK
    v3 = _rotl(v3, 16) ^ v2
    v0 = (v0 + v3) & _MASK
    v3 = _rotl(v3, 21) ^ v0
    v2 = (v2 + v1) & _MASK
    v1 = _rotl(v1, 17) ^ v2
    v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def siphash13(data: bytes) -> int:
    """SipHash-1-3 with zero keys: Rust's `DefaultHasher::default()`, as Bytewax hashes state keys."""
    v0, v1, v2, v3 = 0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573
    whole = len(data) - len(data) % 8
    for i in range(0, whole, 8):
        m = int.from_bytes(data[i : i + 8], "little")
        v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3 ^ m)
        v0 ^= m
    last = ((len(data) & 0xFF) << 56) | int.from_bytes(data[whole:], "little")
    v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3 ^ last)
    v0 ^= last
    v2 ^= 0xFF
    for _ in range(3):
        v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


def state_worker(key: str, workers: int) -> int:
    """The worker that keeps the state of `key` in a Bytewax stateful step (Rust hashes a
    string as its bytes and a 0xff byte)."""
    return siphash13(key.encode() + b"\xff") % workers


def reader_workers(parts: list[str], workers: int) -> dict[str, int]:
    """The worker that reads each input partition, when every worker lists them all (Kafka):
    in string order, each to the worker with the fewest so far, the lowest index among equals."""
    counts = [0] * workers
    readers: dict[str, int] = {}
    for part in sorted(parts):
        worker = counts.index(min(counts))
        readers[part] = worker
        counts[worker] += 1
    return readers


def placed_key(key: str, worker: int, workers: int) -> str:
    """A state key for `key` that Bytewax routes to `worker`: the key itself where it already
    does (always with one worker), else `key~n` with the first n that does."""
    if state_worker(key, workers) == worker:
        return key
    n = 1
    while state_worker(f"{key}~{n}", workers) != worker:
        n += 1
    return f"{key}~{n}"


@dataclass
class Placement:
    """How this process's flow places keyed state: `workers`, the cluster's worker count
    (set by flows.run.execute); `local` False keys by the camera alone (Bytewax's hash picks
    the worker, frames cross to it; the benchmark's before)."""

    workers: int = 1
    local: bool = True


PLACEMENT = Placement()
_READERS: dict[str, int] = {}  # camera -> the thread of this process that reads its frames
_CROSSED: set[str] = set()  # cameras whose state is kept by another thread than their reader


def check_local(camera_id: str) -> bool:
    """Whether this thread (a worker keeping the camera's state) also reads the camera's
    frames; warns once per camera when not (Bytewax placed differently than `placed_key`
    expects). Always True with one worker, or for a flow not fed by TopicSource (tests' inputs)."""
    if PLACEMENT.workers <= 1 or not _READERS or not PLACEMENT.local:
        return True
    if _READERS.get(camera_id) == threading.get_native_id():
        return True
    if camera_id not in _CROSSED:
        _CROSSED.add(camera_id)
        log.warning(
            "frames of camera %s are read by one worker and kept by another: Bytewax does not "
            "place state as flows.kafka_io expects (pinned at 0.21.1); incidents stay right, "
            "but the frames cross between workers",
            camera_id,
        )
    return False


def placed(
    parse: Parser[tuple[str, X]], worker: int, workers: int, *, local: bool = True
) -> Parser[tuple[str, X]]:
    """`parse` of a keyed topic, its key made a state key that routes to `worker` (the one
    reading this partition; see placed_key); `local` False leaves the key as it is. Keys are
    worked out once per camera, and which thread reads the camera is noted (check_local)."""
    keys: dict[str, str] = {}

    def parse_placed(raw: bytes | None) -> tuple[str, X]:
        key, item = parse(raw)
        state_key = keys.get(key)
        if state_key is None:
            state_key = keys[key] = placed_key(key, worker, workers) if local else key
            _READERS[key] = threading.get_native_id()
        return state_key, item

    return parse_placed


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
        self._outage = KAFKA
        self._quiet_since = self._last_call = time.monotonic()
        # Prometheus (flows.metrics): bound once; the lag is asked on LAG's own thread.
        self._messages = MESSAGES.labels(flow=FLOW.name, topic=inner._topic)
        self._dead_letters = DEAD_LETTERS.labels(flow=FLOW.name)
        LAG.watch(inner._topic, inner._part_idx, lambda: inner._offset)

    def next_batch(self) -> list[X | DeadLetter]:
        inner = self._inner
        if inner._eof:
            raise StopIteration
        now = time.monotonic()
        if now - self._last_call > 1.0:
            # The worker was held (a sink waiting out an outage, the process frozen): the
            # quiet since is not the partition's, and its prefetch needs a moment again.
            self._quiet_since = now
        self._last_call = now
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
            self._quiet_since = time.monotonic()
        elif time.monotonic() - self._quiet_since >= STALL_CHECK_S:
            self._unstick()
        if self._count is not None:
            self._count(len(out) - dead)  # for the console, whichever flow reads them
        if out:
            self._messages.inc(len(out))
            if dead:
                self._dead_letters.inc(dead)
        return out

    def _unstick(self) -> None:
        """Quiet for STALL_CHECK_S: if the partition has messages past our position, the
        consumer is stuck (seen after a broker restart: it fetched nothing more, though the
        messages were there), so assign it again at our position. Asked at most every
        STALL_CHECK_S, and never while the broker is away (the question fails)."""
        inner = self._inner
        self._quiet_since = time.monotonic()
        try:
            low, high = inner._consumer.get_watermark_offsets(
                TopicPartition(inner._topic, inner._part_idx), timeout=2.0, cached=False
            )
        except KafkaException:
            return
        self._outage.back()  # the broker answered
        # A position retention has deleted reads from the oldest message left.
        position = max(inner._offset if inner._offset is not None else low, low)
        if high > position:
            log.warning(
                "nothing read from %s[%d] for %.0f s though it has %d message(s) past offset %d; "
                "assigning the partition again",
                inner._topic,
                inner._part_idx,
                STALL_CHECK_S,
                high - position,
                position,
            )
            inner._consumer.assign([TopicPartition(inner._topic, inner._part_idx, position)])

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
    `count(n)` hears how many items each batch parsed. With `place`, items are (key, value)
    pairs whose key is made a state key kept by the worker that reads the partition
    (`placed`, when PLACEMENT says the cluster has more than one worker).
    """

    def __init__(
        self,
        kafka: Mapping[str, str | int],
        topic: str,
        parse: Parser[X],
        *,
        tail: bool = True,
        count: Callable[[int], None] | None = None,
        place: bool = False,
    ) -> None:
        # Bytewax takes the servers apart from the rest of the client's config (TLS, SASL).
        brokers = str(kafka["bootstrap.servers"]).split(",")
        extra = {k: str(v) for k, v in kafka.items() if k != "bootstrap.servers"}
        super().__init__(
            brokers, [topic], tail=tail, add_config={**extra, **CONSUMER_CONFIG}, raise_on_errors=False
        )
        self._parse, self._count, self._place = parse, count, place
        self._parts: list[str] = []

    def list_parts(self) -> list[str]:
        parts = super().list_parts()
        self._parts = parts  # every worker lists them all (Bytewax's Kafka source)
        return parts

    def build_part(  # type: ignore[override]
        self, step_id: str, for_part: str, resume_state: int | None
    ) -> _TopicPartition[X]:
        parse = self._parse
        workers = PLACEMENT.workers
        if self._place and workers > 1:
            worker = reader_workers(self._parts or [for_part], workers)[for_part]
            keyed = cast(Parser[tuple[str, Any]], parse)
            parse = cast(Parser[X], placed(keyed, worker, workers, local=PLACEMENT.local))
        return _TopicPartition(super().build_part(step_id, for_part, resume_state), parse, self._count)


def dead_letter_message(letter: DeadLetter) -> KafkaSinkMessage[bytes, bytes]:
    """For sw.dlq: key = the source topic."""
    return KafkaSinkMessage(key=letter.source_topic.encode(), value=encode(letter))


def incident_message(incident: Incident) -> KafkaSinkMessage[bytes, bytes]:
    """For sw.incidents: key = incident_id."""
    return KafkaSinkMessage(key=incident.incident_id.encode(), value=encode(incident))


# One voice for the broker being away, whoever notices (the flows' consumers and producers):
# said once when it goes, once when a message is read again. librdkafka's own log lines (a
# connection refused every few milliseconds while it is away) are off (log_level 2).
KAFKA = Outage("Kafka", log.warning)
_AWAY = {ConfluentKafkaError._TRANSPORT, ConfluentKafkaError._ALL_BROKERS_DOWN, ConfluentKafkaError._RESOLVE}


def _client_error(error: ConfluentKafkaError) -> None:
    """librdkafka's error callback: an unreachable broker is an outage; the rest is logged."""
    if error.code() in _AWAY:
        KAFKA.failed(error.str())
    else:
        log.warning("Kafka client: %s", error.str())


# An incident message is never given up (message.timeout.ms 0): while the broker is away the
# sink's flush waits, which holds the flow as a PostgreSQL outage does (flows.sinks), and the
# messages go out when it is back.
PRODUCER_CONFIG: dict[str, Any] = {
    "enable.idempotence": "true",
    "compression.type": "lz4",
    "message.timeout.ms": "0",
    "log_level": "2",
    "error_cb": _client_error,
}
# A position that retention has deleted reads from the oldest message left, never from the
# end (librdkafka's default would skip the whole backlog without a word).
CONSUMER_CONFIG: dict[str, Any] = {
    "log_level": "2",
    "error_cb": _client_error,
    "auto.offset.reset": "earliest",
}


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
    place: bool = False,
) -> Parsed[X]:
    """The topic `settings.topic(topic)`, each message parsed by `parse` as it is read; what
    breaks the contract (or comes with a Kafka error) is counted and, with `dlq`, published
    to sw.dlq. `tail=False` stops at the end of the topic; `count` and `place` as for
    TopicSource.
    """
    source = TopicSource(
        settings.kafka_config(), settings.topic(topic), parse, tail=tail, count=count, place=place
    )
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
    """sw.detections as (state key, Frame) pairs (`read_topic` under `step_id`): what breaks
    the contract is counted and, with `dlq`, published to sw.dlq. `tail=False` stops at the
    end of the topic. The frames read are counted for the console (COUNTERS.frames). The key
    is the camera's, placed so that its state is kept by the worker reading it (`placed_key`:
    the camera id, or the camera id and `~n`); steps read the camera from the frame.

    A flow that always runs beside the incidents flow may pass `dlq=False` and leave the
    dead letters to it, so that sw.dlq holds each bad message once.
    """
    read = read_topic(
        step_id,
        flow,
        settings,
        "detections",
        keyed_frame,
        tail=tail,
        dlq=dlq,
        count=COUNTERS.add_frames,
        place=True,
    )
    return Detections(read.items, read.dead)


def publish_dead_letters(step_id: str, dead: Stream[DeadLetter], settings: Settings) -> None:
    """Publish dead letters to sw.dlq (steps `step_id` and `step_id`_message)."""
    publish(step_id, op.map(f"{step_id}_message", dead, dead_letter_message), settings, "dlq")


def publish(
    step_id: str, messages: Stream[KafkaSinkMessage[bytes, bytes]], settings: Settings, topic: str
) -> None:
    """Publish to the topic `settings.topic(topic)` (TopicSink)."""
    op.output(step_id, messages, TopicSink(settings.kafka_config(), settings.topic(topic)))


class _TopicSinkPartition(StatelessSinkPartition[KafkaSinkMessage[bytes, bytes]]):
    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer, self._topic = producer, topic
        self._failed: str | None = None

    def _delivered(self, error: ConfluentKafkaError | None, _msg: Message) -> None:
        if error is not None and self._failed is None:
            self._failed = error.str()

    def write_batch(self, items: list[KafkaSinkMessage[bytes, bytes]]) -> None:
        for item in items:
            while True:
                try:
                    self._producer.produce(self._topic, item.value, item.key, on_delivery=self._delivered)
                    break
                except BufferError:  # the local queue is full: the broker has been away long
                    self._wait_delivered(1)
            self._producer.poll(0)
        self._wait_delivered(0)

    def _wait_delivered(self, left: int) -> None:
        """Until at most `left` messages are undelivered; a stop or a failed delivery raises."""
        while self._producer.flush(1.0) > left:
            if STOPPING.is_set():
                msg = f"stopping with messages to {self._topic} undelivered (the restart sends them again)"
                raise RuntimeError(msg)
        if self._failed is not None:
            msg = f"a message to {self._topic} was not delivered: {self._failed}"
            raise RuntimeError(msg)

    def close(self) -> None:
        self._producer.flush(5.0)


class TopicSink(DynamicSink[KafkaSinkMessage[bytes, bytes]]):
    """Publishes to one topic; each batch is delivered before the flow goes on.

    Bytewax's KafkaSink flushes each batch too, but with no limit and without looking at the
    delivery reports: while the broker is away it cannot be stopped, and a message the client
    gave up on was gone without a word. Here a message is never given up (message.timeout.ms
    0: an incident reaches sw.incidents, or the flow waits, as for a PostgreSQL outage), the
    wait checks for a stop every second (flows.sinks.STOPPING: the restart publishes the
    batch again, at-least-once as always), and a failed delivery (a fatal client error) fails
    the flow, for its supervisor to restart.
    """

    def __init__(self, kafka: Mapping[str, str | int], topic: str) -> None:
        self._kafka, self._topic = dict(kafka), topic

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _TopicSinkPartition:
        producer = Producer({**self._kafka, **PRODUCER_CONFIG})
        return _TopicSinkPartition(producer, self._topic)
