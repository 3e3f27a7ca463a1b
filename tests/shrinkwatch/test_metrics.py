"""shrinkwatch.metrics: the port table, serving a scrape over HTTP, and a busy port that
leaves the service running without metrics (said once, naming the port and the setting)."""

from __future__ import annotations

import socket

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from shrinkwatch import __version__, metrics
from shrinkwatch.metrics import ROLE_OFFSETS, ReadAtScrape, port_for, read_at_scrape, serve
from shrinkwatch.net import port_open
from shrinkwatch.settings import Settings
from tests.metrics_support import metrics_base, scrape, value


@pytest.mark.parametrize(
    ("base", "role", "instance", "expected"),
    [
        (9560, "detect", 0, 9560),
        (9560, "detect", 2, 9580),  # detect --shard 2/N
        (9560, "incidents", 0, 9561),
        (9560, "incidents", 1, 9571),  # flows run incidents --processes M: process 1
        (9560, "occupancy", 0, 9562),
        (9560, "health", 0, 9563),
        (9560, "alerts", 0, 9564),
        (9560, "rollups", 0, 9565),
        (9560, "dashboard", 0, 9566),
        (9560, "calibration", 0, 9567),
        (9560, "privacy", 0, 9568),
        (9560, "flow", 0, 9569),
        (20000, "health", 3, 20033),
        (0, "detect", 0, None),  # off
        (0, "incidents", 5, None),
    ],
)
def test_port_table(base: int, role: str, instance: int, expected: int | None) -> None:
    assert port_for(Settings(metrics_port=base), role, instance) == expected


@pytest.mark.parametrize(
    ("base", "role", "instance", "error"),
    [
        (9560, "api", 0, "no metrics port for role 'api'"),  # the API serves on its own port
        (9560, "detect", -1, "instance must be 0 or more"),
        (65000, "detect", 60, "past 65535"),
    ],
)
def test_port_table_refuses(base: int, role: str, instance: int, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        port_for(Settings(metrics_port=base), role, instance)


def test_offsets_leave_room_for_instances() -> None:
    assert len(set(ROLE_OFFSETS.values())) == len(ROLE_OFFSETS)
    assert all(0 <= offset < 10 for offset in ROLE_OFFSETS.values())


def test_serves_build_info_and_process_metrics_until_closed() -> None:
    settings = Settings(metrics_port=metrics_base("health"))
    said: list[str] = []
    server = serve(settings, "health", say=said.append)
    try:
        assert server.port == port_for(settings, "health")
        assert server.url is not None
        samples = scrape(server.url)
        assert value(samples, "shrinkwatch_build_info", version=__version__, role="health") == 1
        assert value(samples, "process_cpu_seconds_total") is not None  # the default collectors
        assert value(samples, "python_info", **_python_info(samples)) == 1
    finally:
        server.close()
    assert said == []
    assert not port_open(server.port)  # the port is given back


def test_busy_port_is_said_once_and_the_service_runs_without_metrics() -> None:
    settings = Settings(metrics_port=metrics_base("incidents"))
    port = port_for(settings, "incidents")
    assert port is not None
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        said: list[str] = []
        server = serve(settings, "incidents", say=said.append)
        assert server.port is None and server.url is None
        server.close()  # nothing to close: no error either
    assert len(said) == 1
    assert f"127.0.0.1:{port}" in said[0]
    assert f"metrics_port ({settings.metrics_port}) + 1" in said[0]
    assert "runs without metrics" in said[0]


def test_off_serves_nothing_and_says_nothing() -> None:
    said: list[str] = []
    with serve(Settings(metrics_port=0), "detect", say=said.append) as server:
        assert server.port is None
    assert said == []


def _python_info(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> dict[str, str]:
    labels = next(lab for name, lab in samples if name == "python_info")
    return dict(labels)


def test_a_gauge_read_at_scrape_shows_what_the_read_gives_and_is_left_out_when_it_fails() -> None:
    values: dict[object, float] = {"email": 3, ("sms",): 0}
    broken = False

    def read() -> dict[object, float]:
        if broken:
            msg = "PostgreSQL is not answering"
            raise OSError(msg)
        return values

    registry = CollectorRegistry()
    registry.register(ReadAtScrape("shrinkwatch_test_depth", "A test gauge.", ["channel"], read))
    text = generate_latest(registry).decode()
    assert 'shrinkwatch_test_depth{channel="email"} 3.0' in text
    assert 'shrinkwatch_test_depth{channel="sms"} 0.0' in text
    broken = True
    assert "shrinkwatch_test_depth{" not in generate_latest(registry).decode()  # unknown, not 0


def test_read_at_scrape_registers_a_family_once_and_a_later_call_replaces_its_read() -> None:
    read_at_scrape("shrinkwatch_test_once", "A test gauge.", ["db"], lambda: {"first": 1})
    try:
        read_at_scrape("shrinkwatch_test_once", "A test gauge.", ["db"], lambda: {"second": 2})
        assert REGISTRY.get_sample_value("shrinkwatch_test_once", {"db": "second"}) == 2
        assert REGISTRY.get_sample_value("shrinkwatch_test_once", {"db": "first"}) is None
    finally:  # the process's registry is every service metric's (tests/docs counts them): out again
        REGISTRY.unregister(metrics._read_at_scrape.pop("shrinkwatch_test_once"))
