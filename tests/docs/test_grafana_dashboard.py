"""docs/grafana/shrinkwatch.json, the sample Grafana dashboard: it is what Grafana's import
takes (a uid, a title, a Grafana 10/11 schemaVersion, the `${DS_PROMETHEUS}` datasource input
every query uses, panels on the 24-column grid without overlaps, each with PromQL targets), and
every metric its queries name is one the services export, as they export it: scraped from
this process's registry with every module that declares metrics loaded (the same text a
service's /metrics serves), and from the collectors that read PostgreSQL when scraped (the
alert outbox's depth, the rollups' last success) on a real database."""

from __future__ import annotations

import ast
import importlib
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from alerts.metrics import outbox_depth
from shrinkwatch.settings import REPO_ROOT, Settings
from warehouse.rollups import freshness, run_rollups

DASHBOARD = REPO_ROOT / "docs" / "grafana" / "shrinkwatch.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
PARTS = ("shrinkwatch", "warehouse", "privacy", "flows", "detector", "alerts", "streamlit_app", "api")
# Run as a script by `streamlit run`: importing it starts the dashboard's app and metrics. It
# declares only the sign-in counter, which api.metrics declares too.
NOT_IMPORTED = {"streamlit_app.server"}
# Grafana 10.0 wrote schemaVersion 38; 11.x writes 39 to 41.
SCHEMA_VERSIONS = range(38, 42)
GRID_COLUMNS = 24
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range"}
NAME = re.compile(r"\b(shrinkwatch_[a-z0-9_]+)\b")
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def expressions() -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every query, the store variable's too."""
    for panel in panels():
        for target in panel["targets"]:
            yield panel["title"], target["expr"]
    for variable in dashboard()["templating"]["list"]:
        yield f"variable {variable['name']}", variable["query"]["query"]


def test_it_is_a_dashboard_grafana_imports() -> None:
    board = dashboard()
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", board["uid"])
    assert board["title"] == "Shrinkwatch"
    assert board["schemaVersion"] in SCHEMA_VERSIONS
    assert board["id"] is None  # Grafana gives it one on import
    (source,) = board["__inputs"]
    assert source == {
        "name": "DS_PROMETHEUS",
        "label": "Prometheus",
        "description": source["description"],
        "type": "datasource",
        "pluginId": "prometheus",
        "pluginName": "Prometheus",
    }
    required = {(r["type"], r["id"]) for r in board["__requires"]}
    assert {("grafana", "grafana"), ("datasource", "prometheus")} <= required
    assert {("panel", p["type"]) for p in panels()} <= required

    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"} and all(isinstance(v, int) for v in grid.values())
        assert grid["h"] >= 1 and grid["w"] >= 1 and grid["x"] >= 0 and grid["x"] + grid["w"] <= GRID_COLUMNS
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
        if panel["type"] == "row":
            assert grid["w"] == GRID_COLUMNS and panel["panels"] == [] and not panel["collapsed"]
    for panel in panels():
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE and target["expr"].strip(), panel["title"]
    defined = {v["name"] for v in board["templating"]["list"]} | BUILTIN_VARIABLES
    for variable in board["templating"]["list"]:
        assert variable["datasource"] == DATASOURCE
    for title, expr in expressions():
        assert set(re.findall(r"\$\{?(\w+)", expr)) <= defined, title
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), title


def test_the_rows_cover_the_services() -> None:
    rows = [p["title"] for p in dashboard()["panels"] if p["type"] == "row"]
    assert rows == ["Cameras", "Flows", "Alerts", "Rollups", "Sign-in", "API"]


def metric_modules() -> list[str]:
    """Every module of the parts that declares Prometheus metrics (imports prometheus_client)."""
    found = []
    for part in PARTS:
        for path in sorted((REPO_ROOT / part).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
            if any(name.split(".")[0] == "prometheus_client" for name in names):
                module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
                found.append(module.removesuffix(".__init__"))
    return [m for m in found if m not in NOT_IMPORTED]


SERIES = {"counter": ("_total",), "histogram": HISTOGRAM_SERIES, "gauge": ("",)}


def families(registry: CollectorRegistry) -> dict[str, str]:
    """{series name: its family's type} of what a scrape of this registry serves: a counter's
    `_total`, a histogram's `_bucket`, `_sum` and `_count`, a gauge's own name (whether or
    not a series has a sample yet: a camera's appear with the camera). A counter's
    `_created` samples, which the text format gives no family of their own, are left out."""
    text = generate_latest(registry).decode()
    return {
        family.name + suffix: family.type
        for family in text_string_to_metric_families(text)
        if family.name.startswith("shrinkwatch_") and not family.name.endswith("_created")
        for suffix in SERIES[family.type]
    }


@pytest.fixture
def exported(settings: Settings) -> dict[str, str]:
    """Every shrinkwatch_ series the services serve, and its type: the declared metrics and,
    on a real database, the ones read from PostgreSQL when scraped."""
    modules = metric_modules()
    assert {"detector.metrics", "flows.metrics", "alerts.metrics", "api.metrics", "warehouse.rollups"} <= set(
        modules
    )
    for module in modules:
        importlib.import_module(module)
    run_rollups(settings.database_dsn, progress=lambda _m: None)  # a last success to show
    read_when_scraped = CollectorRegistry()
    read_when_scraped.register(outbox_depth(settings.database_dsn))
    read_when_scraped.register(freshness(settings.database_dsn))
    return families(REGISTRY) | families(read_when_scraped)


def test_every_query_names_a_metric_the_services_export(exported: dict[str, str]) -> None:
    for title, expr in expressions():
        names = NAME.findall(expr)
        assert names, f"{title}: no shrinkwatch metric in {expr}"
        for name in names:
            assert name in exported, f"{title}: {name} is not exported (by {sorted(exported)})"
            if name.endswith(HISTOGRAM_SERIES) and exported[name] == "histogram":
                assert name.endswith("_bucket") or "histogram_quantile" not in expr, title
        for function in ("rate", "increase"):
            for argument in re.findall(rf"\b{function}\((shrinkwatch_[a-z0-9_]+)", expr):
                assert exported[argument] in ("counter", "histogram"), f"{title}: {function} of a gauge"
        if "histogram_quantile" in expr:
            assert all(exported[n] == "histogram" and n.endswith("_bucket") for n in names), title


def test_every_service_metric_has_a_panel(exported: dict[str, str]) -> None:
    queried = {name for _title, expr in expressions() for name in NAME.findall(expr)}
    unshown = {
        name
        for name, kind in exported.items()
        if name != "shrinkwatch_build_info" and not (kind == "histogram" and not name.endswith("_bucket"))
    }
    assert unshown - queried == set()
