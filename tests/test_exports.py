"""Every public module says what it exports: each name in `__all__` exists, and each function or
class it defines without a leading underscore is in `__all__` (httpx's tests/test_exported_members.py)."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"agent": "tooltoken", "app": "tooltoken.app", "tools": "tooltoken.tools",
           "retrieval": "tooltoken.retrieval", "evals": "tooltoken.evals"}
# public modules whose imports need an optional extra that a test install has anyway
PUBLIC = sorted(
    package if path.stem == "__init__" else f"{package}.{path.stem}"
    for folder, package in FOLDERS.items()
    for path in (ROOT / folder).glob("*.py")
    if path.stem == "__init__" or not path.stem.startswith("_")
)


@pytest.mark.parametrize("name", PUBLIC)
def test_all_lists_what_the_module_defines(name):
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == [], f"{name}.__all__ names what it does not have"
    own = [n for n, obj in vars(module).items()
           if not n.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
           and getattr(obj, "__module__", None) == name]
    assert sorted(set(own) - set(exported)) == [], f"{name} defines public names missing from __all__"
