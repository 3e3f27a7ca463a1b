"""The import graph: no cycle between modules, and no part importing one above it.

Parts, from the bottom: `shrinkwatch` (settings, contracts, site file) < `warehouse` <
`privacy` (evidence redaction, retention, case files) < `flows`, `detector`, `alerts` <
`streamlit_app`; `api` (the REST API: beside the dashboard, never loading Streamlit);
`infra` runs the local services; `cli`, the
command line (and the demo), is the top floor that assembles them all. No module is exempt.
Imports inside functions count too: a lazy import hides a dependency, it does not remove it.

A sub-part may be held to less than its part: the behaviour rules (`flows.behaviour`) sit
beneath the flows' wiring and import only the standard library, `shrinkwatch` and themselves
(no Bytewax, Kafka client, database driver or `warehouse`), so that they run, and are
tested, without any service.

Tables have owners too (the tests at the end): SQL lives only in `warehouse/`, and each
PostgreSQL table is written by one module, its owner (TABLE_OWNERS).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from shrinkwatch.settings import REPO_ROOT

PARTS = (
    "shrinkwatch",
    "warehouse",
    "privacy",
    "flows",
    "detector",
    "alerts",
    "streamlit_app",
    "api",
    "infra",
    "cli",
)
MAY_IMPORT = {
    "shrinkwatch": {"shrinkwatch"},
    "warehouse": {"shrinkwatch", "warehouse"},
    "privacy": {"shrinkwatch", "warehouse", "privacy"},
    "flows": {"shrinkwatch", "warehouse", "flows"},
    "detector": {"shrinkwatch", "warehouse", "privacy", "detector"},
    "alerts": {"shrinkwatch", "warehouse", "alerts"},
    "streamlit_app": {"shrinkwatch", "warehouse", "privacy", "flows", "alerts", "streamlit_app"},
    "api": {"shrinkwatch", "warehouse", "privacy", "alerts", "api"},
    "infra": {"shrinkwatch", "warehouse", "infra"},
    "cli": set(PARTS),
}
# Sub-parts with rules of their own, narrower than their part's: the first-party modules (and
# packages) they may import, and the third-party distributions (beyond the standard library).
SUB_PARTS = {"flows.behaviour": {"shrinkwatch", "flows.behaviour"}}
SUB_PART_THIRD_PARTY: dict[str, set[str]] = {"flows.behaviour": set()}
# What the sub-parts must not load even indirectly (through `shrinkwatch`, say).
SUB_PART_NEVER_LOADED = {"flows.behaviour": {"bytewax", "confluent_kafka", "psycopg", "duckdb", "warehouse"}}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every name a module imports, absolute: `a.b` for `import a.b`, and `a` and `a.x` for
    `from a import x`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def imports() -> dict[str, set[str]]:
    """{module: first-party modules it imports}, for every module of the parts."""
    graph: dict[str, set[str]] = {}
    modules = {module_name(p) for part in PARTS for p in (REPO_ROOT / part).rglob("*.py")}
    for part in PARTS:
        for path in (REPO_ROOT / part).rglob("*.py"):
            found = {n for n in imported(path) if n in modules}
            graph[module_name(path)] = found - {module_name(path)}
    return graph


def within(module: str, prefixes: set[str]) -> bool:
    """Whether `module` is one of `prefixes` or inside one of them."""
    return any(module == p or module.startswith(f"{p}.") for p in prefixes)


def may_import(module: str) -> set[str]:
    """What a module may import: its sub-part's rule if it is in one, else its part's."""
    for sub_part, allowed in SUB_PARTS.items():
        if within(module, {sub_part}):
            return allowed
    return MAY_IMPORT[module.split(".")[0]]


def test_no_part_imports_one_above_it() -> None:
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in imports().items()
        for target in targets
        if not within(target, may_import(module))
    )
    assert upward == []


def test_sub_parts_import_no_other_third_party_code() -> None:
    first_party = set(PARTS)
    found = sorted(
        f"{module_name(path)} imports {name}"
        for sub_part, allowed in SUB_PART_THIRD_PARTY.items()
        for path in (REPO_ROOT / sub_part.replace(".", "/")).rglob("*.py")
        for name in imported(path)
        if (top := name.split(".")[0]) not in first_party
        and top not in sys.stdlib_module_names
        and top not in allowed
    )
    assert found == []


def test_sub_parts_load_no_service_library_even_indirectly() -> None:
    for sub_part, never in SUB_PART_NEVER_LOADED.items():
        modules = sorted(module_name(p) for p in (REPO_ROOT / sub_part.replace(".", "/")).rglob("*.py"))
        script = (
            f"import sys\nfor m in {modules!r}: __import__(m)\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(never)!r})))"
        )
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == "[]", f"{sub_part} loads {result.stdout.strip()}"


def test_no_import_cycle() -> None:
    graph = imports()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


# One owner per table (issue 18). SQL lives only in `warehouse/`, one module per resource, and
# every PostgreSQL table is written (INSERT, UPDATE, DELETE, COPY, TRUNCATE, upserts) by exactly
# one module, its owner; other parts, and other warehouse modules, call the owner's functions.
# Reads of another owner's table inside the warehouse are fine (the rollups read incidents; the
# incident list reads who has seen what): ownership is about writes. Statements are found in
# string literals (docstrings aside) by their keywords, written in capitals as all of ours are.

TABLE_OWNERS = {
    "stores": "warehouse.site_tables",
    "cameras": "warehouse.site_tables",
    "zones": "warehouse.site_tables",
    "incidents": "warehouse.incidents",
    "incident_seen": "warehouse.seen",
    "risk_weights": "warehouse.weights",
    "camera_health": "warehouse.camera_health",
    "occupancy_minutes": "warehouse.occupancy",
    "occupancy_minutes_default": "warehouse.occupancy",  # its default partition
    "occupancy_late": "warehouse.occupancy",
    "heatmap_hours": "warehouse.occupancy",
    "rollup_changes": "warehouse.occupancy",  # the rollups' change log, kept by its writer
    "rollup_state": "warehouse.rollups",
    "rollup_risk_pattern": "warehouse.rollups",
    "rollup_footfall_hourly": "warehouse.rollups",
    "rollup_heatmap_daily": "warehouse.rollups",
    "rollup_roi_monthly": "warehouse.rollups",
    "rollup_detection_quality": "warehouse.rollups",
    "users": "warehouse.accounts",
    "user_sessions": "warehouse.sessions",
    "sign_in_failures": "warehouse.sign_in_throttle",
    "sso_requests": "warehouse.single_sign_on",
    "alert_recipients": "warehouse.alert_recipients",
    "alert_mutes": "warehouse.alert_recipients",
    "alert_outbox": "warehouse.alert_outbox",
    "alert_digests": "warehouse.alert_digests",
    "legal_holds": "warehouse.evidence_log",
    "evidence_access": "warehouse.evidence_log",
    "disclosures": "warehouse.disclosures",
    "access_requests": "warehouse.disclosures",
    "api_tokens": "warehouse.api_tokens",
    "incident_events": "warehouse.incident_events",  # rows written by a trigger on incidents
    "incident_events_purged": "warehouse.incident_events",
    "schema_migrations": "warehouse.migrate",  # created by the migration runner itself
}
# The one declared exception. `shrinkwatch warehouse seed` is a data generator for the demo and
# the benchmarks, not a runtime writer: it COPYs months of synthetic occupancy, heatmaps and
# reviewed incidents straight into the base tables (with the change times the flows would have
# given them) and deletes a previous seed (`seed-*` stores only). Owner functions for that would
# be bulk loads and deletes by id prefix that nothing else should call. Its stores, cameras
# and zones do go through the owner (`apply_site_config`).
WRITERS_BESIDE_THE_OWNER = {"warehouse.seed"}

_TABLE = re.compile(
    r"\b(?:FROM|JOIN|INTO|UPDATE|COPY|TRUNCATE(?:\s+TABLE)?)\s+(?:ONLY\s+)?([a-z_][a-z0-9_]*)"
)
_WRITE = re.compile(
    r"\b(?:INSERT\s+INTO|DELETE\s+FROM|UPDATE|COPY|TRUNCATE(?:\s+TABLE)?)\s+(?:ONLY\s+)?([a-z_][a-z0-9_]*)"
)


def created_tables() -> set[str]:
    """The tables the migrations leave (and the runner's own `schema_migrations`)."""
    sql = "\n".join(
        p.read_text(encoding="utf-8") for p in (REPO_ROOT / "warehouse" / "migrations").glob("*.sql")
    )
    sql += (REPO_ROOT / "warehouse" / "migrate.py").read_text(encoding="utf-8")
    made = set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?([a-z_][a-z0-9_]*)", sql))
    return made - set(re.findall(r"DROP TABLE (?:IF EXISTS )?([a-z_][a-z0-9_]*)", sql))


def sql_texts(path: Path) -> list[str]:
    """The module's string literals but its docstrings; an f-string with `{}` for each value."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    texts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            texts.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            texts.append("".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values))
    return texts


def part_modules() -> dict[str, Path]:
    return {module_name(p): p for part in PARTS for p in (REPO_ROOT / part).rglob("*.py")}


def test_every_table_has_one_owner_module() -> None:
    assert set(TABLE_OWNERS) == created_tables()
    modules = part_modules()
    assert sorted({owner for owner in TABLE_OWNERS.values() if owner not in modules}) == []


def test_sql_naming_a_table_lives_only_in_the_warehouse() -> None:
    """Outside `warehouse/`, no string names one of our tables in SQL. (infra/postgres.py
    administers the server, pg_database and CREATE DATABASE, and names no table of ours.)"""
    tables = created_tables()
    found = sorted(
        f"{module} names {table}"
        for module, path in part_modules().items()
        if not module.startswith("warehouse")
        for text in sql_texts(path)
        for table in set(_TABLE.findall(text)) & tables
    )
    assert found == []


def test_each_table_is_written_by_its_owner_only() -> None:
    found = sorted(
        f"{module} writes {table} (its owner is {TABLE_OWNERS[table]})"
        for module, path in part_modules().items()
        if module not in WRITERS_BESIDE_THE_OWNER
        for text in sql_texts(path)
        for table in set(_WRITE.findall(text)) & set(TABLE_OWNERS)
        if TABLE_OWNERS[table] != module
    )
    assert found == []


def test_no_dashboard_module_hides_another_module() -> None:
    """`streamlit run streamlit_app/server.py` puts streamlit_app/ first on sys.path: a page
    folder or module there named like one of our parts, the standard library or an installed
    package would be imported instead of it (a folder `streamlit_app/privacy/` once hid the
    `privacy` part, and the dashboard did not start)."""
    from importlib.metadata import packages_distributions

    folder = REPO_ROOT / "streamlit_app"
    names = {
        p.stem for p in folder.iterdir() if (p.is_dir() or p.suffix == ".py") and not p.name.startswith("_")
    }
    taken = set(PARTS) | set(sys.stdlib_module_names) | set(packages_distributions())
    assert sorted(names & taken) == []
