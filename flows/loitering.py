"""The loitering dataflow: per-track dwell in `high_value` zones becomes incidents.

sw.detections -> parse (bad messages -> sw.dlq) -> key by camera -> dwell state ->
incidents -> sw.incidents and the `incidents` table.
"""

from __future__ import annotations

from typing import cast

import bytewax.operators as op
from bytewax.connectors.kafka import operators as kop
from bytewax.dataflow import Dataflow, Stream

from flows.catalog import ZoneCatalog
from flows.dwell import CameraState, DwellRules, step
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


def rules_from(settings: Settings) -> DwellRules:
    """The dwell thresholds in force."""
    return DwellRules(
        loiter_threshold_s=settings.loiter_threshold_s,
        zone_exit_grace_s=settings.zone_exit_grace_s,
        track_timeout_s=settings.track_timeout_s,
        incident_update_s=settings.incident_update_s,
    )


def build_flow(settings: Settings, catalog: ZoneCatalog | None = None) -> Dataflow:
    """The loitering dataflow for these settings."""
    catalog = catalog or ZoneCatalog(settings.database_dsn, settings.zones_refresh_s)
    rules = rules_from(settings)
    brokers = [settings.kafka_servers]

    flow = Dataflow("loitering")
    source = kop.input(
        "read", flow, brokers=brokers, topics=[settings.topic("detections")], add_config=CONSUMER_CONFIG
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
        return step(state, frame, catalog.zones(frame.camera_id), rules)

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
