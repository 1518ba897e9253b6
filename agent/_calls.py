"""Reading the calls a model wrote, in any family's syntax, without ever running them.

    >>> read_pythonic('[get_weather(city="Paris"), add(a=1, b=2.5)]')
    [('get_weather', {'city': 'Paris'}), ('add', {'a': 1, 'b': 2.5})]
    >>> read_builtin('brave_search.call(query="Leo Tolstoy")')
    ('brave_search', {'query': 'Leo Tolstoy'})

Python call syntax (Llama 3.2's `[f(a=1)]`, Llama 3.1's built-in `brave_search.call(...)`) is
parsed with `ast` and only literal arguments are accepted (`ast.literal_eval` on each keyword's
node, which evaluates no names, calls or operators beyond literals).
"""

from __future__ import annotations

import ast
import json
from typing import Any


class CallSyntaxError(ValueError):
    pass


def _call_node(node: ast.expr) -> tuple[str, dict[str, Any]]:
    if not isinstance(node, ast.Call) or node.args:
        raise CallSyntaxError("expected name(key=value, ...) with keyword arguments only")
    func = node.func
    if isinstance(func, ast.Name):
        name = func.id
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.attr == "call":
        name = func.value.id  # brave_search.call(...)
    else:
        raise CallSyntaxError("expected a plain function name")
    args: dict[str, Any] = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise CallSyntaxError("**kwargs are not allowed")
        try:
            args[kw.arg] = ast.literal_eval(kw.value)
        except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError) as exc:
            raise CallSyntaxError(f"argument {kw.arg} is not a literal value") from exc
    return name, args


def _parse(text: str) -> ast.expr:
    if len(text) > 20_000:
        raise CallSyntaxError("call text too long")
    try:
        return ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise CallSyntaxError(f"not valid call syntax: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise CallSyntaxError("call text nested too deeply") from None


def read_pythonic(text: str) -> list[tuple[str, dict[str, Any]]]:
    node = _parse(text)
    if not isinstance(node, ast.List) or not node.elts:
        raise CallSyntaxError("expected a list of calls: [f(a=1), g(b=2)]")
    return [_call_node(e) for e in node.elts]


def read_builtin(text: str) -> tuple[str, dict[str, Any]]:
    return _call_node(_parse(text))


def first_json(text: str) -> Any:
    """The JSON value at the start of `text` (after whitespace), or None if incomplete/invalid."""
    stripped = text.lstrip()
    try:
        value, _ = json.JSONDecoder().raw_decode(stripped)
    except ValueError:
        return None
    return value


def balanced(text: str, open_: str = "[", close: str = "]") -> bool:
    """True once the bracket opened first in `text` is closed (strings respected)."""
    depth, quote, escape, seen = 0, "", False, False
    for ch in text:
        if quote:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == open_:
            depth, seen = depth + 1, True
        elif ch == close:
            depth -= 1
            if seen and depth == 0:
                return True
    return False
