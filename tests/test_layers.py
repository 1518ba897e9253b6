"""The one-way rule between the rooms (docs/design.md), read from every module's imports.

    app (interfaces) → agent → tools → retrieval,   evals → agent → ...

An arrow may point only down. The interfaces never import evals (the `eval` and `bench` commands
reach the CLI through the "tooltoken.commands" entry points), and evals never import the interfaces.
`tooltoken._errors`, the exception tree, is a leaf every room may import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"agent": "tooltoken", "app": "tooltoken.app", "tools": "tooltoken.tools",
           "retrieval": "tooltoken.retrieval", "evals": "tooltoken.evals"}
RANK = {"retrieval": 0, "tools": 1, "agent": 2, "evals": 3, "app": 3}
SHARED = {"tooltoken._errors"}  # the exception tree: imports nothing, imported by every room


def room(module: str) -> str | None:
    if module != "tooltoken" and not module.startswith("tooltoken."):
        return None
    for name in ("app", "tools", "retrieval", "evals"):
        if module == FOLDERS[name] or module.startswith(FOLDERS[name] + "."):
            return name
    return "agent"


def modules() -> dict[str, Path]:
    out = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            out[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return out


def imports(module: str, path: Path) -> set[str]:
    """Every module `module` imports, at the top or inside a function, resolved to absolute names."""
    package = module if path.stem == "__init__" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}  # `from . import x` names module x
    return found


def violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in graph.items():
        for target in sorted(targets):
            src, dst = room(source), room(target)
            if dst is None or src == dst or target in SHARED or target.rsplit(".", 1)[0] in SHARED:
                continue
            if source in SHARED:
                bad.append(f"{source} → {target}: the exception tree must import nothing of tooltoken")
            elif {src, dst} == {"app", "evals"} or RANK[dst] > RANK[src]:
                bad.append(f"{source} ({src}) → {target} ({dst})")
    return bad


def test_every_import_points_down():
    graph = {m: imports(m, p) for m, p in modules().items()}
    assert violations(graph) == []


def test_the_rule_catches_an_arrow_against_it():
    assert violations({"tooltoken.tools.search": {"tooltoken._agent"}}) == [
        "tooltoken.tools.search (tools) → tooltoken._agent (agent)"]
    assert violations({"tooltoken.app.cli": {"tooltoken.evals.runner"}})
    assert violations({"tooltoken.evals.runner": {"tooltoken.app._settings"}})
    assert violations({"tooltoken._agent": {"tooltoken.app.server"}})
    assert violations({"tooltoken.retrieval._milvus": {"tooltoken.tools.search"}})
    assert not violations({"tooltoken.app.cli": {"tooltoken._agent", "tooltoken.tools", "tooltoken._errors"}})


def test_relative_imports_resolve_to_their_room():
    path = ROOT / "app" / "cli.py"
    assert "tooltoken.app._cli_index" in imports("tooltoken.app.cli", path)
