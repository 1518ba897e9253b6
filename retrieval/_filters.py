"""Metadata filters from a dict, never from a string someone wrote.

    >>> build_filter({"kind": "md", "source": ["/d/a.md", "/d/b.md"]})
    'kind == "md" and source in ["/d/a.md", "/d/b.md"]'
    >>> build_filter({"title": 'x" or id > 0 or "'})
    'title == "x\\\\" or id > 0 or \\\\""'

Field names come from an allowlist (`FILTER_FIELDS`); values must have the field's type and are
written as Milvus literals: strings in double quotes with backslash, quote and line breaks
escaped, so a value can only ever be compared, never parsed as part of the expression. A list
means "any of". Not handled: ranges, negation, prefix matches (Milvus `like` has its own escape
rules; add it here with tests before exposing it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._errors import FilterError

__all__ = ["FILTER_FIELDS", "build_filter", "quote"]

#: field name -> Python type its values must have
FILTER_FIELDS: dict[str, type] = {"source": str, "title": str, "kind": str, "line_start": int, "line_end": int}

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def quote(value: str) -> str:
    """A Milvus string literal that means exactly `value`."""
    out = []
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise FilterError(f"filter values may not contain control characters (got {ch!r})")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _literal(field: str, value: Any) -> str:
    want = FILTER_FIELDS[field]
    if want is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FilterError(f"filter {field!r} takes whole numbers, got {value!r}")
        return str(int(value))
    if not isinstance(value, str):
        raise FilterError(f"filter {field!r} takes text, got {type(value).__name__}")
    return quote(value)


def build_filter(filters: Mapping[str, Any] | None) -> str:
    """A Milvus boolean expression: every given field must match (equality, or `in` a list)."""
    if not filters:
        return ""
    parts = []
    for field, value in filters.items():
        if field not in FILTER_FIELDS:
            raise FilterError(f"cannot filter on {field!r}; filterable fields: {', '.join(sorted(FILTER_FIELDS))}")
        if isinstance(value, (list, tuple, set, frozenset)):
            items = sorted(value) if isinstance(value, (set, frozenset)) else list(value)
            if not items:
                raise FilterError(f"filter {field!r} was given an empty list, which nothing can match")
            parts.append(f"{field} in [{', '.join(_literal(field, v) for v in items)}]")
        else:
            parts.append(f"{field} == {_literal(field, value)}")
    return " and ".join(parts)
