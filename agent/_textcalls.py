"""Tool calls written as text in a streamed reply, for backends that get text, not tokens.

    >>> from tooltoken._families import trigger_pattern
    >>> scanner = TextCallScanner(trigger_pattern(["add"]), copied=lambda text: False, max_chars=2048)
    >>> scanner.feed("Sure. <tool"), scanner.feed('_call>{"name": "add", "arguments": {"a": 1}}'), scanner.call
    ('Sure. ', '', '<tool_call>{"name": "add", "arguments": {"a": 1}}')
    >>> parse_text_call('[add(a=1)]', {})
    {'name': 'add', 'arguments': {'a': 1}}

The same trigger pattern as the in-process controller (`_formats.trigger_pattern`): the text
that may be the start of a call is held back, never shown. A call ends after its JSON object,
or at a closing `</tool_call>` or fence. Python call syntax (`calculator("2+2")`, `[f(a=1)]`) is
read with `ast` and only literal arguments are accepted; nothing is ever evaluated.
Not handled: a JSON list of calls (`[{"name": ...}, ...]`); its first call is caught alone.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any, Callable

from tooltoken.tools import Tool


class TextCallScanner:
    """Streamed text in, showable text out. Text that may be the start of a call is held back;
    once a call is complete, `call` holds its raw text (whatever followed is dropped)."""

    def __init__(self, pattern: Any, copied: Callable[[str], bool], max_chars: int) -> None:
        self.pattern, self.copied, self.max_chars = pattern, copied, max_chars
        self.pending = ""
        self.triggered = False
        self.call: str | None = None
        self.warnings: list[str] = []

    def feed(self, text: str) -> str:
        self.pending += text
        out = ""
        while True:
            if not self.triggered:
                m = self.pattern.search(self.pending, partial=True)
                cut = m.start() if m else len(self.pending)
                out += self.pending[:cut]
                self.pending = self.pending[cut:]
                if not m or m.partial:
                    return out
                self.triggered = True
            end = call_end(self.pending)
            if end is None and len(self.pending) < self.max_chars:
                return out
            raw = self.pending[: end or len(self.pending)]
            if not self.copied(raw):
                self.call = raw
                return out
            # a call copied out of a tool result is the document talking, not the model: text
            self.warnings.append(f"a tool call copied from a tool result was left as text: {raw!r}")
            out += raw
            self.pending, self.triggered = self.pending[len(raw):], False

    def end(self) -> str:
        """The stream ended: held text is text, unless a call had begun (then it is the call)."""
        if self.triggered and not self.copied(self.pending):
            self.call = self.pending
            return ""
        out, self.pending = self.pending, ""
        return out


_CLOSING = re.compile(r"</tool_call>|</function_call>|```")


def call_end(text: str) -> int | None:
    """Where a call that starts `text` ends: after its JSON object, or after a closing tag/fence."""
    brace = text.find("{")
    prefix = text[:brace] if brace >= 0 else text
    if brace >= 0 and not re.search(r"\w\s*\(", prefix):  # JSON, not `name({...})`
        try:
            _, end = json.JSONDecoder().raw_decode(text, brace)
            return end
        except ValueError:
            pass
    opener = re.match(r"\s*(<tool_call>|<function_call>|```[\w]*)", text)
    start = opener.end() if opener else 0
    m = _CLOSING.search(text, start)
    return m.end() if m else None


def parse_text_call(raw: str, tools: dict[str, Tool]) -> Any:
    """The call in `raw` as {"name", "arguments"}, or None. JSON first, then `name(...)` read with
    `ast` (literals only, never evaluated)."""
    brace = raw.find("{")
    if brace >= 0:
        try:
            value, _ = json.JSONDecoder().raw_decode(raw, brace)
            if isinstance(value, dict) and "name" in value:
                return value
        except ValueError:
            pass
    if len(raw) > 20_000:
        return None
    body = re.sub(r"^\s*(<tool_call>|<function_call>|```\w*)|(</tool_call>|</function_call>|```)\s*$", "", raw).strip()
    try:
        node = ast.parse(body, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if isinstance(node, ast.List) and len(node.elts) == 1:  # [f(a=1)], the Llama 3.2 form
        node = node.elts[0]
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return None
    name = node.func.id
    params = list(tools[name].parameters.get("properties", {})) if name in tools else []
    try:
        arguments = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
        for pname, arg in zip(params, node.args):
            arguments[pname] = ast.literal_eval(arg)
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):  # not a literal
        return None
    return {"name": name, "arguments": arguments}
