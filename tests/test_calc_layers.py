"""The calculator's modules import one way only, and no tools/ modules import in a circle.

The imports are read from the source with `ast` (nothing is imported), and every import counts,
also one inside a function: an import put off until call time still ties the two modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

TOOLS = Path(__file__).resolve().parent.parent / "tools"
PACKAGE = "tooltoken.tools"

# Bottom first: each module may import only modules listed before it.
CALC_LAYERS = ["_calc_format", "_calc_arith", "_calc_time", "_calc_eval", "_calc_program", "_calc_inline", "calculator"]


def import_graph(folder: Path) -> dict[str, set[str]]:
    """{module: the tools/ modules it imports}; `__init__` stands for the package itself."""
    modules = {path.stem for path in folder.glob("*.py")}
    return {path.stem: _imported(ast.parse(path.read_text(encoding="utf-8")), modules) for path in folder.glob("*.py")}


def _imported(tree: ast.AST, modules: set[str]) -> set[str]:
    found: set[str | None] = set()
    for node in ast.walk(tree):  # walk, not just the top level: lazy imports count too
        if isinstance(node, ast.Import):
            found |= {_target(alias.name.split("."), None, modules) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found |= {_target(_parts(node), alias.name, modules) for alias in node.names}
    return {module for module in found if module is not None}


def _parts(node: ast.ImportFrom) -> list[str]:
    """The imported module as an absolute dotted path, split (`from .x import y` in tools/ is
    `tooltoken.tools.x`)."""
    own = PACKAGE.split(".")
    base = own[: len(own) - node.level + 1] if node.level else []
    return base + (node.module.split(".") if node.module else [])


def _target(parts: list[str], name: str | None, modules: set[str]) -> str | None:
    """The tools/ module an import loads, or None when it loads none."""
    own = PACKAGE.split(".")
    if parts[: len(own)] != own:
        return None
    rest = parts[len(own) :]
    if rest:
        return rest[0] if rest[0] in modules else None
    if name is not None and name in modules:  # `from . import calculator`
        return name
    return "__init__"  # a name from the package itself


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path (`a`, `b`, ..., `a`), or None."""
    done: set[str] = set()
    for start in sorted(graph):
        cycle = _cycle_from(start, graph, [], done)
        if cycle:
            return cycle
    return None


def _cycle_from(node: str, graph: dict[str, set[str]], path: list[str], done: set[str]) -> list[str] | None:
    if node in path:
        return path[path.index(node) :] + [node]
    if node in done:
        return None
    for nxt in sorted(graph.get(node, ())):
        cycle = _cycle_from(nxt, graph, path + [node], done)
        if cycle:
            return cycle
    done.add(node)
    return None


def test_no_import_circle_among_tools_modules():
    cycle = find_cycle(import_graph(TOOLS))
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_calculator_modules_import_only_the_layers_below():
    graph = import_graph(TOOLS)
    for i, module in enumerate(CALC_LAYERS):
        calc_imports = {m for m in graph[module] if m in CALC_LAYERS}
        assert calc_imports <= set(CALC_LAYERS[:i]), f"{module} imports {calc_imports - set(CALC_LAYERS[:i])}"


def test_every_calculator_module_has_a_layer():
    assert {p.stem for p in TOOLS.glob("_calc_*.py")} | {"calculator"} == set(CALC_LAYERS)


def test_no_calculator_module_imports_another_modules_private_names():
    for module in CALC_LAYERS:
        tree = ast.parse((TOOLS / f"{module}.py").read_text(encoding="utf-8"))
        private = [
            f"{node.module}.{alias.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
            if alias.name.startswith("_")
        ]
        assert private == [], f"{module} imports private names {private}"


@pytest.mark.parametrize("source, imports", [
    ("from .b import x", {"b"}),
    ("from . import b", {"b"}),
    ("from . import Tool", {"__init__"}),
    ("import tooltoken.tools.b", {"b"}),
    ("from tooltoken.tools.b import x", {"b"}),
    ("from tooltoken.tools import b, Tool", {"b", "__init__"}),
    ("def f():\n    from .b import x", {"b"}),
    ("from ..retrieval import x\nimport json\nfrom tooltoken import Agent", set()),
])  # fmt: skip
def test_imports_are_read_in_every_spelling(source, imports):
    assert _imported(ast.parse(source), {"a", "b"}) == imports


def test_a_circle_is_found_also_through_a_lazy_import(tmp_path):
    (tmp_path / "a.py").write_text("from .b import x\n")
    (tmp_path / "b.py").write_text("def f():\n    from .c import y\n")
    (tmp_path / "c.py").write_text("import tooltoken.tools.a\n")
    (tmp_path / "d.py").write_text("from .a import z\n")
    assert find_cycle(import_graph(tmp_path)) == ["a", "b", "c", "a"]
    (tmp_path / "c.py").write_text("import json\n")
    assert find_cycle(import_graph(tmp_path)) is None
