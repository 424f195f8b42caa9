"""The REPL's modules: one job each, small, and no import cycle (the command table does not
import the session)."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "dreamline"
MAX_LINES = 340  # as tests/test_layers.py: "about 300"


def _modules() -> dict[str, Path]:
    found = {f"dreamline.repl.{path.stem}": path for path in (SOURCE / "repl").glob("*.py")
             if path.stem != "__init__"}
    found["dreamline.cli"] = SOURCE / "cli.py"
    return found


def _imports(path: Path, known: set[str]) -> set[str]:
    """REPL modules imported by ``path`` at any level (TYPE_CHECKING imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names & known


def test_no_import_cycle_among_repl_modules() -> None:
    modules = _modules()
    graph = {name: _imports(path, set(modules)) for name, path in modules.items()}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for other in sorted(graph[name]):
            assert state.get(other) != "open", " -> ".join([*trail, name, other])
            if other not in state:
                visit(other, [*trail, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert "dreamline.repl.session" not in graph["dreamline.repl.commands"]
    assert "dreamline.repl.session" not in graph["dreamline.repl.completer"]


def test_each_repl_module_is_small() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    assert {name: size for name, size in sizes.items() if size > MAX_LINES} == {}
