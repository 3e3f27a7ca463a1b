"""The worked examples of docs/EXTENDING.md: an extra signal and a new dataflow."""

from __future__ import annotations

import importlib
import signal
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flows.behaviour.engine import BehaviourEngine
from flows.behaviour.signals import register_signal, unregister_signal
from flows.behaviour.stores import StoreInfo
from flows.behaviour.zones import ZoneArea
from shrinkwatch.contracts import DeadLetter, decode
from tests.factories import T0, frame, person, walk
from tests.flows.test_behaviour import final, run
from tests.flows.test_incidents_flow import publish_frames
from tests.support import cli_env, produce, read_all, run_cli, spawn_cli, wait_for


@pytest.fixture
def zone_hops() -> Iterator[None]:
    import flows.examples.zone_hops as module

    importlib.reload(module)  # registers the signal
    yield
    unregister_signal("zones_visited")


# The unit test of docs/EXTENDING.md ("Testing a signal"): the engine alone, no Kafka.
SHOP = [
    ZoneArea("z-entrance", "entrance", ((0.0, 0.5), (0.1, 0.5), (0.1, 1.0), (0.0, 1.0))),
    ZoneArea("z-shelf", "high_value", ((0.2, 0.5), (0.4, 0.5), (0.4, 1.0), (0.2, 1.0))),
    ZoneArea("z-stock", "restricted", ((0.45, 0.0), (0.6, 0.0), (0.6, 0.3), (0.45, 0.3))),
    ZoneArea("z-checkout", "checkout", ((0.5, 0.5), (0.65, 0.5), (0.65, 1.0), (0.5, 1.0))),
    ZoneArea("z-exit", "exit", ((0.85, 0.5), (1.0, 0.5), (1.0, 1.0), (0.85, 1.0))),
]


@pytest.mark.usefixtures("zone_hops")  # imports flows.examples.zone_hops, which registers the signal
def test_extra_signal_adds_to_the_score_and_the_explanation() -> None:
    engine = BehaviourEngine("cam-1", SHOP, StoreInfo("store-001"))
    # Entrance, past the shelf, the stock room (2 s there: an incident), checkout, exit.
    path = [(0, (0.05, 0.8)), (5, (0.52, 0.2)), (7, (0.52, 0.2)), (12, (0.57, 0.8)), (17, (0.95, 0.8))]
    gone = [frame("cam-1", 100 + i, 17 + i / 5, []) for i in range(1, 20)]  # 4 s on, nobody: the track ends
    state, incidents = None, []
    for message in walk("cam-1", 1, path) + gone:  # Detection messages, 5 per second
        state, new = engine.step(state, message)
        incidents += new
    last = incidents[-1]  # the newest version of the person's one incident: closed
    assert last.status == "closed"
    signals = {s.name: s for s in last.signals}
    assert last.incident_type == "restricted_zone"
    assert last.zone_ids == ["z-entrance", "z-shelf", "z-stock", "z-checkout", "z-exit"]
    assert signals["zones_visited"].value == 5
    assert signals["zones_visited"].contribution == pytest.approx(0.15)
    assert set(signals) == {"restricted_zone_s", "zones_visited"}
    assert last.risk_score == pytest.approx(min(1.0, sum(s.contribution for s in last.signals)), abs=1e-3)


@pytest.mark.usefixtures("zone_hops")
def test_an_extra_signal_alone_opens_nothing() -> None:
    assert (
        run(walk("cam-1", 2, [(0, (0.05, 0.8)), (3, (0.3, 0.8)), (6, (0.57, 0.8)), (9, (0.95, 0.8))])) == []
    )


def test_a_failing_signal_counts_as_zero() -> None:
    @register_signal("broken", weight=0.5)
    def broken(track: Any, rules: Any) -> tuple[float, float]:
        raise RuntimeError("oops")  # noqa: EM101

    try:
        inc = next(iter(final(run(walk("cam-1", 3, [(0, (0.3, 0.8)), (35, (0.3, 0.8))]))).values()))
        assert inc.incident_type == "loitering_high_value"
        assert "broken" not in {s.name for s in inc.signals}
    finally:
        unregister_signal("broken")


def test_built_in_names_are_refused() -> None:
    with pytest.raises(ValueError, match="built in"):
        register_signal("bag_present", weight=0.1)


def test_example_dataflow_runs_over_detections(settings: Any, tmp_path: Path) -> None:
    frames = [
        frame("cam-1", i, i * 1.0, [person(1, (0.5, 0.8)), person(2, (0.6, 0.8))][: 1 + (i % 2)])
        for i in range(130)
    ]
    publish_frames(settings, frames[:5])
    produce(settings, settings.topic("detections"), [(b"cam-1", b"{not json")])
    publish_frames(settings, frames[5:])
    log = tmp_path / "counter.log"
    flow = spawn_cli(
        ["flows", "run", "flows.examples.people_counter", "--no-recovery"], cli_env(settings, tmp_path), log
    )
    try:
        wait_for(lambda: log.read_text().count("max_people=") >= 2, 60, what="per-minute lines")
    finally:
        flow.send_signal(signal.SIGTERM)
        flow.wait(timeout=30)
    minute = T0.replace(second=0) + timedelta(minutes=1)
    assert f"cam-1 {T0:%Y-%m-%dT%H:%M}Z max_people=2" in log.read_text()
    assert f"cam-1 {minute:%Y-%m-%dT%H:%M}Z max_people=2" in log.read_text()
    # The bad message was not dropped silently: the input chain dead-lettered it.
    letters = [decode(m.value(), DeadLetter) for m in read_all(settings, settings.topic("dlq"))]
    assert [(d.value, d.offset) for d in letters] == [("{not json", 5)]
    assert "dead letters 1" in log.read_text()


def test_unknown_extension_flow_or_schema_is_a_clear_error(
    settings: Any, make_settings: Any, tmp_path: Path
) -> None:
    def check(flow: str, s: Any) -> str:
        result = run_cli(["flows", "run", flow, "--check"], env=cli_env(s, tmp_path), timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        return result.stderr

    bad = settings.model_copy(update={"extensions": ["no_such_module"]})
    assert "extensions: cannot import 'no_such_module'" in check("incidents", bad)
    assert "unknown dataflow 'nope.flow'" in check("nope.flow", settings)
    assert "run `shrinkwatch db migrate` first" in check("incidents", make_settings())
    good = settings.model_copy(update={"extensions": ["flows.examples.zone_hops"]})
    ok = run_cli(["flows", "run", "incidents", "--check"], env=cli_env(good, tmp_path), timeout=120)
    assert ok.returncode == 0, ok.stderr
