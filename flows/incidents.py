"""The incidents dataflow: detections become per-track behaviour, then incidents.

sw.detections, parsed as read (bad messages -> sw.dlq) -> by camera -> behaviour state
(flows.behaviour.engine) -> incidents -> sw.incidents and the `incidents` table.

Every frame of every camera passes through here, so the hot path is lean: messages are
parsed by the source itself (flows.kafka_io.TopicSource, flows.behaviour.frames), and each
camera's frames of a batch go through its behaviour engine in one call (`stateful_batch`),
whose state is snapshotted as pickled bytes (flows.snapshots: an immutable copy, cheaper
than the deep copy of `stateful_map`). A camera's state is kept by the worker that reads its
partition (flows.kafka_io.placed_key), so in a cluster of processes no frame crosses between
them.
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulBatchLogic

from flows import snapshots
from flows.behaviour.engine import BehaviourEngine
from flows.behaviour.frames import Frame
from flows.behaviour.tracks import CameraState
from flows.catalog import SiteCatalog
from flows.kafka_io import check_local, detections, incident_message, publish
from flows.progress import COUNTERS
from flows.sinks import IncidentSink
from shrinkwatch.contracts import Incident
from shrinkwatch.settings import Settings

ScoredIncident = tuple[Incident, int]  # an incident state and the weights version that scored it


class CameraBehaviour(StatefulBatchLogic[Frame, ScoredIncident, bytes]):
    """One camera's behaviour state; frames in, incident versions out."""

    def __init__(self, catalog: SiteCatalog, resume: bytes | None) -> None:
        self.catalog = catalog
        self.state: CameraState | None = snapshots.load(resume) if resume is not None else None
        self.checked = False

    def on_batch(self, frames: list[Frame]) -> tuple[list[ScoredIncident], bool]:
        if not self.checked:
            self.checked = check_local(frames[0].camera_id)
        out: list[ScoredIncident] = []
        engine: BehaviourEngine | None = None
        for frame in frames:
            if engine is None or engine.store.store_id != frame.store_id:
                engine = BehaviourEngine(
                    frame.camera_id, self.catalog.zones(frame.camera_id), self.catalog.store(frame.store_id)
                )
            self.state, incidents = engine.step(self.state, frame)
            if incidents:
                version = engine.store.weights.version
                out.extend((incident, version) for incident in incidents)
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        return snapshots.dump(self.state)


def build_flow(settings: Settings, catalog: SiteCatalog | None = None, *, tail: bool = True) -> Dataflow:
    """The incidents dataflow for these settings (`tail=False` stops at the end of the topic)."""
    site = catalog or SiteCatalog.for_settings(settings)
    flow = Dataflow("incidents")
    frames = detections("detections", flow, settings, tail=tail).frames
    changes = op.stateful_batch("behaviour", frames, lambda resume: CameraBehaviour(site, resume))
    incidents = op.inspect("count_incidents", op.key_rm("incidents", changes), COUNTERS.incident)
    op.output("store", incidents, IncidentSink(settings.database_dsn))
    publish(
        "publish",
        op.map("incident_message", incidents, lambda scored: incident_message(scored[0])),
        settings,
        "incidents",
    )
    return flow
