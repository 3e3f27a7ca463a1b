"""A new dataflow over sw.detections: the most people each camera saw, per minute of frames.

Run it with `shrinkwatch flows run flows.examples.people_counter`; it prints one line per
camera and minute to standard output (a real flow would write to Kafka or PostgreSQL).
Messages that break the contract go to sw.dlq, as in every flow that starts with
`detections`.
"""

from __future__ import annotations

from datetime import datetime

import bytewax.operators as op
from bytewax.connectors.stdio import StdOutSink
from bytewax.dataflow import Dataflow

from flows.behaviour.frames import Frame
from flows.kafka_io import detections
from shrinkwatch.settings import Settings


def build_flow(settings: Settings) -> Dataflow:
    """The example flow for these settings."""
    flow = Dataflow("people_counter")
    # (key, frame) pairs, keyed by camera (the key is the camera's state key: read the camera
    # from frame.camera_id); bad messages are dead-lettered for us.
    keyed = detections("detections", flow, settings).frames

    def per_minute(
        state: tuple[datetime, int] | None, frame: Frame
    ) -> tuple[tuple[datetime, int], list[str]]:
        minute = frame.ts.replace(second=0, microsecond=0)
        people = len(frame.people)
        if state is None or state[0] == minute:
            return (minute, max(people, state[1] if state else 0)), []
        # A new minute: report the one that ended.
        return (minute, people), [f"{frame.camera_id} {state[0]:%Y-%m-%dT%H:%M}Z max_people={state[1]}"]

    lines = op.flat_map("lines", op.stateful_map("per_minute", keyed, per_minute), lambda kv: kv[1])
    op.output("print", lines, StdOutSink())
    return flow
