"""The layers stay apart: each is imported in a fresh interpreter and must not load what lies
beyond its room (the one-way flow REPL/CLI -> parse -> Request -> Generator -> outputs), and the
package has no import cycle between its modules."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# (modules imported together, module prefixes that must then not be loaded)
LAYERS: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("dreamline.parse", "dreamline.format", "dreamline.switches", "dreamline.prompts",
      "dreamline.request", "dreamline.samplers", "dreamline.helptext"),
     ("torch", "PIL", "diffusers", "transformers", "numpy", "prompt_toolkit", "dreamline.core",
      "dreamline.models", "dreamline.repl")),
    (("dreamline.core",),
     ("dreamline.repl", "dreamline.parse", "dreamline.format", "prompt_toolkit",
      "dreamline.cli")),
    (("dreamline.models.loader", "dreamline.models.registry"),
     ("dreamline.repl", "dreamline.core", "dreamline.parse", "prompt_toolkit")),
    (("dreamline.repl.commands",),
     ("dreamline.repl.session", "torch", "diffusers", "dreamline.core", "dreamline.models")),
]


def _loaded_after_import(modules: tuple[str, ...]) -> list[str]:
    code = ("import importlib, json, sys\n"
            f"for name in {list(modules)!r}: importlib.import_module(name)\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin",
                                                  "PYTHONDONTWRITEBYTECODE": "1"})
    return json.loads(out.stdout)


@pytest.mark.parametrize("modules, forbidden", LAYERS, ids=[m[0] for m, _ in LAYERS])
def test_layer_loads_nothing_beyond_its_room(modules: tuple[str, ...],
                                             forbidden: tuple[str, ...]) -> None:
    loaded = _loaded_after_import(modules)
    leaks = [name for name in loaded
             if any(name == bad or name.startswith(bad + ".") for bad in forbidden)]
    roots = sorted({name.split(".")[0] if not name.startswith("dreamline") else
                    ".".join(name.split(".")[:2]) for name in leaks})
    assert not roots, f"importing {modules} loads {roots}"


def _module_imports() -> dict[str, set[str]]:
    """Each dreamline module's top-level (import-time) imports of other dreamline modules."""
    graph: dict[str, set[str]] = {}
    for path in sorted((SRC / "dreamline").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        package = name if is_package else ".".join(parts[:-1])
        targets: set[str] = set()
        body = ast.parse(path.read_text()).body
        # module level only (lazy imports inside functions are fine), type-checking imports too:
        # a cycle through annotations is still a cycle between rooms
        body += [inner for node in body if isinstance(node, ast.If)
                 and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                 for inner in node.body]
        for node in body:
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets.add(base)
                targets.update(f"{base}.{alias.name}" for alias in node.names)
        graph[name] = {t for t in targets if t.startswith("dreamline")}
    known = set(graph)
    return {name: {t for t in targets if t in known and t != name}
            for name, targets in graph.items()}


def test_no_import_cycle_between_modules() -> None:
    graph = _module_imports()
    # a package importing its own submodules (its __init__ re-exporting) is not a cycle
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(name + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


MAX_MODULE_LINES = 340  # "about 300": one sitting's read


def test_every_module_is_small_enough_to_read_in_one_sitting() -> None:
    sizes = {str(path.relative_to(SRC)): len(path.read_text().splitlines())
             for path in (SRC / "dreamline").rglob("*.py")}
    too_big = {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert not too_big, f"modules over {MAX_MODULE_LINES} lines: {too_big}"
