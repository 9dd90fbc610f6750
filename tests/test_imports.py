"""No import cycles in fakecgfs: layers import one way (controller <- cgroupfs <- cli, teach,
testing; the conformance tool on its own).

Two checks.  Statically, every import statement of src/fakecgfs (at module level, in a
function, or under TYPE_CHECKING: a cycle of any kind ties modules together) becomes an edge
of a graph of modules, which must have no cycle.  Dynamically, each module is imported first,
alone, in a fresh interpreter: a cycle that happens to work in one import order fails in
another.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "fakecgfs"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path) -> set[str]:
    """The fakecgfs modules ``name`` imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # "from . import mounting" imports the module fakecgfs.mounting
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module
                       for alias in node.names]  # fmt: skip
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_relative_imports_are_resolved():
    graph = {name: imports_of(name, path) for name, path in MODULES.items()}
    assert "fakecgfs.mounting" in graph["fakecgfs.cli"]  # from . import mounting
    reclaim_task = graph["fakecgfs.controller.reclaim_task"]
    assert "fakecgfs.controller.constants" in reclaim_task  # from .constants
    assert "fakecgfs.controller" in graph["fakecgfs.cgroupfs.fs"]  # from ..controller import


def test_no_import_cycles():
    graph = {name: imports_of(name, path) for name, path in MODULES.items()}
    assert cycles(graph) == []


def test_the_conformance_tool_imports_nothing_else_of_fakecgfs():
    for name, path in MODULES.items():
        if name.startswith("fakecgfs.conformance"):
            imported = imports_of(name, path)
            assert {m for m in imported if not m.startswith("fakecgfs.conformance")} == set(), name


@pytest.mark.parametrize("name", [m for m in MODULES if not m.endswith("__main__")])
def test_each_module_imports_first_in_a_fresh_interpreter(name):
    result = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
