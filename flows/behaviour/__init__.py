"""The behaviour rules: one camera's frames in, incident versions out, with no service around.

Everything that decides what a person did and how risky it was, as plain values and
functions over the frames' own times: `frames` (a frame as the rules see it, and the fast
parser of `sw.detections` bytes), `zones` (which zones hold a point), `tracks` (the state of
a camera, its people and crowds, and the rule `Thresholds`), `posture` (the concealment
cue), `signals` (what is measured, the incident patterns, and the registry of extra signals),
`risk` (signal weights and the score), `stores` (a store's hours, thresholds and weights)
and `engine` (the `BehaviourEngine` that applies them, frame by frame).

This package imports the standard library, `shrinkwatch` and itself, nothing else: no
Bytewax, Kafka, PostgreSQL or `warehouse` (tests/test_layers.py holds it to that). The flows
around it (flows.incidents, flows.occupancy, flows.kafka_io, ...) read the topics, keep and
snapshot the state, and write the results.

So a data team tests a new signal with plain Python, no broker or database running:

    from flows.behaviour.engine import BehaviourEngine
    from flows.behaviour.stores import StoreInfo
    from flows.behaviour.zones import ZoneArea

    zones = [ZoneArea("z-stock", "restricted", ((0.45, 0.0), (0.6, 0.0), (0.6, 0.3), (0.45, 0.3)))]
    engine = BehaviourEngine("cam-1", zones, StoreInfo("store-001"))
    state, incidents = None, []
    for message in detections:  # shrinkwatch.contracts.Detection values, oldest first
        state, new = engine.step(state, message)
        incidents += new

with the module that registers the signal imported first; docs/EXTENDING.md walks through it
and tests/flows/test_extending.py runs it.
"""
