"""The import graph: no cycle between modules, and no part importing one above it.

Parts, from the bottom: `shrinkwatch` (settings, contracts, site file) < `warehouse` <
`flows`, `detector`, `alerts` < `streamlit_app`; `infra` runs the local services; `cli`, the
command line (and the demo), is the top floor that assembles them all. No module is exempt.
Imports inside functions count too: a lazy import hides a dependency, it does not remove it.

A sub-part may be held to less than its part: the behaviour rules (`flows.behaviour`) sit
beneath the flows' wiring and import only the standard library, `shrinkwatch` and themselves
(no Bytewax, Kafka client, database driver or `warehouse`), so that they run, and are
tested, without any service.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from shrinkwatch.settings import REPO_ROOT

PARTS = ("shrinkwatch", "warehouse", "flows", "detector", "alerts", "streamlit_app", "infra", "cli")
MAY_IMPORT = {
    "shrinkwatch": {"shrinkwatch"},
    "warehouse": {"shrinkwatch", "warehouse"},
    "flows": {"shrinkwatch", "warehouse", "flows"},
    "detector": {"shrinkwatch", "warehouse", "detector"},
    "alerts": {"shrinkwatch", "warehouse", "alerts"},
    "streamlit_app": {"shrinkwatch", "warehouse", "flows", "alerts", "streamlit_app"},
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
