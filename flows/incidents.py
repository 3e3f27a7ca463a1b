"""The incidents dataflow: detections become per-track behaviour, then incidents.

sw.detections -> parse (bad messages -> sw.dlq) -> key by camera -> behaviour state
(flows.behaviour) -> incidents -> sw.incidents and the `incidents` table.
"""

from __future__ import annotations

from typing import cast

import bytewax.operators as op
from bytewax.connectors.kafka import operators as kop
from bytewax.dataflow import Dataflow, Stream

from flows.behaviour import BehaviourEngine, CameraState, Thresholds
from flows.catalog import SiteCatalog
from flows.kafka_io import (
    CONSUMER_CONFIG,
    PRODUCER_CONFIG,
    dead_letter_from_error,
    dead_letter_message,
    incident_message,
    parse_detection,
)
from flows.progress import COUNTERS
from flows.sinks import IncidentSink
from shrinkwatch.contracts import DeadLetter, Detection, Incident
from shrinkwatch.settings import Settings


def thresholds_from(settings: Settings) -> Thresholds:
    """Default thresholds (a store's own, from the site configuration, override them)."""
    return Thresholds(
        loiter_s=settings.loiter_threshold_s,
        zone_exit_grace_s=settings.zone_exit_grace_s,
        track_timeout_s=settings.track_timeout_s,
        incident_update_s=settings.incident_update_s,
    )


def build_flow(settings: Settings, catalog: SiteCatalog | None = None, *, tail: bool = True) -> Dataflow:
    """The incidents dataflow for these settings (`tail=False` stops at the end of the topic)."""
    catalog = catalog or SiteCatalog(
        settings.database_dsn, thresholds_from(settings), settings.zones_refresh_s
    )
    brokers = [settings.kafka_servers]

    flow = Dataflow("incidents")
    source = kop.input(
        "read",
        flow,
        brokers=brokers,
        topics=[settings.topic("detections")],
        tail=tail,
        add_config=CONSUMER_CONFIG,
    )
    parsed = op.map("parse", source.oks, parse_detection)
    split = op.branch("split", parsed, lambda item: isinstance(item, Detection))
    frames = op.inspect("count_frames", cast(Stream[Detection], split.trues), COUNTERS.frame)
    dead = op.merge(
        "dead",
        cast(Stream[DeadLetter], split.falses),
        op.map("kafka_errors", source.errs, dead_letter_from_error),
    )
    dead = op.inspect("count_dead", dead, COUNTERS.dead_letter)
    kop.output(
        "dlq",
        op.map("dlq_message", dead, dead_letter_message),
        brokers=brokers,
        topic=settings.topic("dlq"),
        add_config=PRODUCER_CONFIG,
    )

    def advance(state: CameraState | None, frame: Detection) -> tuple[CameraState, list[Incident]]:
        engine = BehaviourEngine(
            frame.camera_id, catalog.zones(frame.camera_id), catalog.store(frame.store_id)
        )
        return engine.step(state, frame)

    keyed = op.key_on("key_by_camera", frames, lambda frame: frame.camera_id)
    changes = op.stateful_map("dwell", keyed, advance)
    incidents = op.flat_map("incidents", changes, lambda keyed_list: keyed_list[1])
    incidents = op.inspect("count_incidents", incidents, COUNTERS.incident)
    op.output("store", incidents, IncidentSink(settings.database_dsn))
    kop.output(
        "publish",
        op.map("incident_message", incidents, incident_message),
        brokers=brokers,
        topic=settings.topic("incidents"),
        add_config=PRODUCER_CONFIG,
    )
    return flow
