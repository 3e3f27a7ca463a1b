"""The health dataflow: sw.camera-health into `camera_health`, each camera's latest state.

Camera readers report their state every few seconds (detector/health.py); this keeps the
newest report of each camera, and since when its status has held, for the dashboard's camera
tiles. It reads the topic with the input operator of every flow (flows.kafka_io.read_topic):
a report that breaks the contract, or comes with a Kafka error, goes to sw.dlq and the flow
keeps running. Output is at-least-once (a restart replays the last snapshot interval): the
writer ignores a report older than, or the same as, the one stored.
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from flows.kafka_io import read_topic
from flows.sinks import PostgresSink
from shrinkwatch.contracts import CameraHealth, decode
from shrinkwatch.settings import Settings
from warehouse.camera_health import write_health


def parse_report(raw: bytes | None) -> CameraHealth:
    """A `sw.camera-health` value as a report; ContractError (naming the field) when invalid."""
    return decode(raw, CameraHealth)


def build_flow(settings: Settings, *, tail: bool = True) -> Dataflow:
    """The health dataflow for these settings (`tail=False` stops at the end of the topic)."""
    flow = Dataflow("health")
    reports = read_topic("camera_health", flow, settings, "camera-health", parse_report, tail=tail)
    op.output("store", reports.items, PostgresSink(settings.database_dsn, write_health))
    return flow
