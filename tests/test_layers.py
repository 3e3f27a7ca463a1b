"""The import graph: no cycle between modules, and no part importing one above it.

Parts, from the bottom: `shrinkwatch` (settings, contracts, site file) < `warehouse` <
`flows`, `detector`, `alerts` < `streamlit_app`; `infra` runs the local services; `cli`, the
command line (and the demo), is the top floor that assembles them all. No module is exempt.
Imports inside functions count too: a lazy import hides a dependency, it does not remove it.
"""

from __future__ import annotations

import ast
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


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """{module: first-party modules it imports}, for every module of the parts."""
    graph: dict[str, set[str]] = {}
    modules = {module_name(p) for part in PARTS for p in (REPO_ROOT / part).rglob("*.py")}
    for part in PARTS:
        for path in (REPO_ROOT / part).rglob("*.py"):
            found: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
                found |= {n for n in names if n in modules}
            graph[module_name(path)] = found - {module_name(path)}
    return graph


def test_no_part_imports_one_above_it() -> None:
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in imports().items()
        for target in targets
        if target.split(".")[0] not in MAY_IMPORT[module.split(".")[0]]
    )
    assert upward == []


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
