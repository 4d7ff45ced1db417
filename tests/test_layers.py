"""The grader's layers import one way: no module imports a layer above its own, and no import cycle.

Read from the source with ``ast`` (no module is imported), so the test also holds for imports inside
functions, which Python would only run later. Imports under ``if TYPE_CHECKING:`` name types for
annotations only and never run: they count for the layers but not for cycles (a task holds checks, a
check is verified in a context, and a context names its task, so the types refer to each other).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

# Lowest first: a module may import its own layer (without a cycle) and any layer below it.
LAYERS = {
    "grader.sandbox": 0,   # where student code runs: the worker, its walls, the wire format, reading submissions
    "grader.declare": 1,   # how a lab is declared: tasks, checks, oracles, strategies, comparison, the check API
    "grader.labs": 2,      # the declarations themselves
    "grader.run": 2,       # the engine: runs a lab's checks and scores them
    "grader.report": 3,    # text, JSON and the job summary
    "grader.export": 4,    # stubs, release, notebooks, nbgrader, Gradescope, batches, plots
}
GRADER = REPO / "grader"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    return next((name for name in LAYERS if module == name or module.startswith(name + ".")), "grader")


def _typing_only(tree: ast.Module) -> set[int]:
    """The ids of the nodes under ``if TYPE_CHECKING:``."""
    return {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING" for stmt in node.body for n in ast.walk(stmt)}


def _imports(at_run_time: bool = False) -> dict[str, set[str]]:
    """Every grader module and the grader modules it imports (anywhere in its source; with ``at_run_time``,
    leaving out the imports for annotations only)."""
    modules = {_module_name(p): p for p in GRADER.rglob("*.py")}
    found: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _typing_only(tree) if at_run_time else set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                            for a in node.names}
        found[name] = {t for t in targets if t.split(".")[0] == "grader" and t != name}
    return found


def test_every_grader_module_sits_in_a_layer():
    outside = [m for m in _imports() if _layer(m) == "grader" and m != "grader"]
    assert outside == []


def test_layers_import_only_their_own_layer_or_lower():
    upward = [f"{m} imports {t}" for m, targets in _imports().items() for t in sorted(targets)
              if _layer(t) != _layer(m) and LAYERS.get(_layer(t), -1) >= LAYERS.get(_layer(m), 99)]
    assert upward == []


def test_the_grader_has_no_import_cycle():
    imports = _imports(at_run_time=True)
    graph = {m: {t for t in targets if t in imports} for m, targets in imports.items()}
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [node, nxt]) if nxt in path else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert cycles == []


def test_the_worker_side_imports_nothing_of_the_grader():
    """worker.py, zygote.py, wire.py, confine.py and eager.py run in the confined worker, loaded by path:
    stdlib only (the worker names wire.py's message types for the type checker, under ``TYPE_CHECKING``)."""
    imports = _imports(at_run_time=True)
    for name in ("worker", "zygote", "wire", "confine", "eager"):
        assert imports[f"grader.sandbox.{name}"] == set(), name
