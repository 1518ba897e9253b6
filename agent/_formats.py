"""Tool-call formats of model families: declaring tools, triggers, the call grammar, the canonical
call written back, and how results go into the context. Chosen from the GGUF chat template (as
llama.cpp's server does, by marker strings) unless `Agent(format=...)` overrides it.

| format      | template marker          | the call                                        | results                       |
| hermes      | `<tool_call>`            | `<tool_call>\\n{"name", "arguments"}\\n</tool_call>` | user turn, `<tool_response>`  |
| llama3      | `ipython` / `<|python_tag|>` | `<|python_tag|>{"name", "parameters"}<|eom_id|>`; `[f(a=1), g(b=2)]` (3.2); `brave_search.call(query=...)` | `ipython` turns |
| mistral     | `[TOOL_CALLS]`           | `[TOOL_CALLS] [{"name", "arguments", "id"}, ...]</s>` | `[TOOL_RESULTS] {...}[/TOOL_RESULTS]` |
| mistral11   | `[TOOL_CALLS]` + `[ARGS]`| `[TOOL_CALLS]f[ARGS]{...}`                      | `[TOOL_RESULTS]id[TOOL_CONTENT]...[/TOOL_RESULTS]` |
| generic     | none                     | tools declared in the system prompt; `<tool_call>` asked for as text | user turn, `<tool_response>` |

Every family also gets the text triggers small models write instead of their own tokens
(measured: Qwen2.5-Coder-1.5B wrote ```json fenced objects in 5 of 5 questions, never
`<tool_call>`): a fenced or bare `{"name": ...}` object, and a fenced `tool_name(...)` call.
Calls are generated under a grammar in JSON (the array form where a family allows several calls
in one turn) and rewritten into the family's canonical form; Llama 3.2's pythonic list is read
with `ast` (never run), and Llama 3.1's built-ins `brave_search` and `wolfram_alpha` map onto the
`search` and `calculator` tools.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import regex

from tooltoken.tools import ConfigError, Tool

from ._calls import CallSyntaxError, read_builtin, read_pythonic
from ._template import Piece, turn_markers

BUILTINS = {"brave_search": ("search", "query"), "wolfram_alpha": ("calculator", "expression")}


def trigger_pattern(tool_names: list[str], extra: tuple[str, ...] = (), pythonic: bool = False) -> regex.Pattern[str]:
    """One pattern for every way a call may start. Matched with partial=True while streaming,
    so text that could still become a trigger is held back and nothing else is.

    JSON forms match through the tool's name, so a name the model invented (Qwen2.5-Coder wrote
    a `greeting` call for "Say hello") is told to the model instead of being forced onto a real tool.
    """
    names = "|".join(regex.escape(n) for n in sorted(tool_names, key=len, reverse=True)) or "(?!)"
    key = "(?:name|function)"  # Qwen2.5-Coder also writes {"function": "search", "arguments": ...}
    fence = r"```(?:json|tool_call|tool_code|python)?[ \t]*\n?[ \t]*"
    literal = "".join(f"|{regex.escape(t)}" for t in extra)
    py = rf"|(?P<py>\[\s*(?:{names})\s*\()" if pythonic else ""
    return regex.compile(
        r"(?P<fake><tool_response>)|<tool_call>|<function_call>"
        + literal
        + rf"|{fence}(?:\{{\s*\"{key}\"\s*:\s*\"(?P<fname>[^\"\\\n]{{0,64}})\"|(?:{names})\s*\()"
        + rf'|\{{\s*"{key}"\s*:\s*"(?P<name>[^"\\\n]{{0,64}})"'
        + py
    )


@dataclass(frozen=True)
class Call:
    name: str | None
    arguments: dict[str, Any]
    problem: str | None = None  # said to the model as the result


@dataclass(frozen=True)
class Format:
    name: str
    native_tools: bool  # the template renders the tool declarations itself
    call_open: str
    call_close: str
    assistant_to_user: str = ""
    user_to_assistant: str = ""
    args_key: str = "arguments"
    parallel: bool = False  # a call turn holds a JSON list of calls
    # a call turn may hold several calls one after another (Qwen2.5 writes `\n<tool_call>` again
    # after `</tool_call>`): the text written between two of them, None if the family can't
    call_sep: str | None = None
    extra_triggers: tuple[str, ...] = ()
    pythonic: bool = False
    eos: str = ""
    _results: Callable[["Format", list[tuple[str, str, str]], str], list[Piece]] | None = field(
        default=None, repr=False, compare=False
    )

    # -- declaring ---------------------------------------------------------------------------
    def render_kwargs(self, tools: list[Tool]) -> dict[str, Any]:
        if self.name != "llama3":
            return {}
        names = {t.name for t in tools}
        return {"builtin_tools": [b for b, (ours, _) in BUILTINS.items() if ours in names]}

    def system_text(self, tools: list[Tool]) -> str:
        """Tool declarations for the system prompt (only for formats the template can't declare)."""
        if self.native_tools or not tools:
            return ""
        lines = "\n".join(json.dumps(t.schema(), ensure_ascii=False) for t in tools)
        return (
            "\n\nYou can call tools. They are listed here, one JSON schema a line:\n<tools>\n"
            f"{lines}\n</tools>\n"
            "To call one, write exactly:\n<tool_call>\n"
            '{"name": "<tool name>", "arguments": {<arguments as JSON>}}\n</tool_call>\n'
            "The result comes back in <tool_response></tool_response>."
        )

    # -- the call ----------------------------------------------------------------------------
    def call_schema(self, tools: list[Tool]) -> dict[str, Any]:
        """JSON schema of one call turn to any of `tools`: the grammar it is generated under."""
        options = [
            {
                "type": "object",
                "properties": {"name": {"const": t.name}, self.args_key: t.call_parameters()},
                "required": ["name", self.args_key],
                "additionalProperties": False,
            }
            for t in tools
        ]
        one = options[0] if len(options) == 1 else {"oneOf": options}
        return {"type": "array", "items": one, "minItems": 1, "maxItems": 4} if self.parallel else one

    def read(self, value: Any, text: str, tools: dict[str, Tool], allowed: list[Tool]) -> list[Call]:
        """The calls in what the model wrote (a parsed JSON value, or call syntax in `text`)."""
        if value is None:
            stripped = text.strip()
            try:
                if stripped.startswith("["):
                    items = [{"name": n, self.args_key: a} for n, a in read_pythonic(stripped)]
                elif stripped.split(".", 1)[0] in BUILTINS:
                    n, a = read_builtin(stripped)
                    ours, key = BUILTINS[n]
                    items = [{"name": ours, self.args_key: {key: a.get("query", "")}}]
                else:
                    raise CallSyntaxError("no call")
            except CallSyntaxError:
                snippet = stripped[:200]
                return [Call(None, {}, f"could not read the tool call {snippet!r}: write one JSON object "
                                       f'with "name" and "{self.args_key}"')]
        else:
            items = value if isinstance(value, list) else [value]
        return [_one(item, self.args_key, tools, allowed) for item in items[:8]]

    def canonical(self, calls: list[Call], ids: list[str]) -> list[Piece]:
        """The calls as the family writes them (arguments untrusted: never control tokens)."""
        objs = [{"name": c.name, self.args_key: c.arguments} for c in calls]
        if self.name == "mistral":
            listed = [dict(o, id=i) for o, i in zip(objs, ids)]
            return [Piece(json.dumps(listed, ensure_ascii=False), False)]
        if self.name == "mistral11":
            pieces: list[Piece] = []
            for k, (c, i) in enumerate(zip(calls, ids)):
                if k:
                    pieces.append(Piece("[TOOL_CALLS]", True))
                pieces += [Piece(c.name or "", False), Piece("[CALL_ID]", True), Piece(i, False),
                           Piece("[ARGS]", True), Piece(json.dumps(c.arguments, ensure_ascii=False), False)]
            return pieces
        return [Piece(json.dumps(o, ensure_ascii=False), False) for o in objs[:1]]

    def call_id(self, n: int) -> str:
        return f"call{n:05d}" if self.name.startswith("mistral") else f"call_{n}"  # Mistral: 9 alphanumerics

    # -- results -----------------------------------------------------------------------------
    def result_pieces(self, items: list[tuple[str, str, str]], nudge: str = "") -> list[Piece]:
        """Results as data: delimited, labelled with their source. `items`: (label, content, call id).

        `nudge` follows generic results in the same turn (without it SmolLM2, never trained on
        tool turns, answers a result by writing the same call again)."""
        if self._results is not None:
            return self._results(self, items, nudge)
        after = f"\n{nudge}" if nudge and not self.native_tools else ""
        pieces = [Piece(self.assistant_to_user, True)]
        for k, (label, content, _) in enumerate(items):
            pieces += [Piece(f"{chr(10) if k else ''}<tool_response>\n{label}\n", True), Piece(content, False),
                       Piece("\n</tool_response>", True)]
        pieces.append(Piece(f"{after}{self.user_to_assistant}", True))
        return pieces


def _one(item: Any, args_key: str, tools: dict[str, Tool], allowed: list[Tool]) -> Call:
    if not isinstance(item, dict):
        return Call(None, {}, 'could not read the tool call: write one JSON object with "name" and arguments')
    name = item.get("name", item.get("function"))
    arguments = item.get(args_key, item.get("arguments", item.get("parameters", {})))
    if not isinstance(name, str) or name not in tools or tools[name] not in allowed:
        valid = ", ".join(t.name for t in allowed)
        return Call(name if isinstance(name, str) else None, {}, f"unknown tool {name!r}; available: {valid}")
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except ValueError:
            pass
    if not isinstance(arguments, dict):
        return Call(name, {}, f"arguments of {name} must be a JSON object")
    return Call(name, arguments)


def _llama3_results(fmt: Format, items: list[tuple[str, str, str]], nudge: str) -> list[Piece]:
    pieces: list[Piece] = []
    for label, content, _ in items:
        pieces += [Piece(f"<|start_header_id|>ipython<|end_header_id|>\n\n{label}\n", True), Piece(content, False),
                   Piece("<|eot_id|>", True)]
    return pieces + [Piece("<|start_header_id|>assistant<|end_header_id|>\n\n", True)]


def _mistral_results(fmt: Format, items: list[tuple[str, str, str]], nudge: str) -> list[Piece]:
    pieces: list[Piece] = []
    for label, content, call_id in items:
        pieces += [Piece('[TOOL_RESULTS] {"content": ', True),
                   Piece(json.dumps(f"{label}\n{content}", ensure_ascii=False), False),
                   Piece(f', "call_id": "{call_id}"}}[/TOOL_RESULTS]', True)]
    return pieces


def _mistral11_results(fmt: Format, items: list[tuple[str, str, str]], nudge: str) -> list[Piece]:
    pieces: list[Piece] = []
    for label, content, call_id in items:
        pieces += [Piece("[TOOL_RESULTS]", True), Piece(call_id, False), Piece(f"[TOOL_CONTENT]{label}\n", True),
                   Piece(content, False), Piece("[/TOOL_RESULTS]", True)]
    return pieces


def _hermes(t: str, bos: str, eos: str) -> Format:
    m = turn_markers(t, bos, eos)
    return Format("hermes", True, "<tool_call>\n", "\n</tool_call>", m.assistant_to_user, m.user_to_assistant,
                  call_sep="\n")


def _generic(t: str, bos: str, eos: str) -> Format:
    m = turn_markers(t, bos, eos)
    return Format("generic", False, "<tool_call>\n", "\n</tool_call>", m.assistant_to_user, m.user_to_assistant,
                  call_sep="\n")


def _llama3(t: str, bos: str, eos: str) -> Format:
    return Format("llama3", True, "<|python_tag|>", "<|eom_id|>", args_key="parameters",
                  extra_triggers=("<|python_tag|>",), pythonic=True, _results=_llama3_results)


def _mistral(t: str, bos: str, eos: str) -> Format:
    return Format("mistral", True, "[TOOL_CALLS] ", eos or "</s>", parallel=True, extra_triggers=("[TOOL_CALLS]",),
                  eos=eos, _results=_mistral_results)


def _mistral11(t: str, bos: str, eos: str) -> Format:
    return Format("mistral11", True, "[TOOL_CALLS]", eos or "</s>", extra_triggers=("[TOOL_CALLS]",), eos=eos,
                  _results=_mistral11_results)


FORMATS: dict[str, Callable[[str, str, str], Format]] = {
    "hermes": _hermes,
    "llama3": _llama3,
    "mistral": _mistral,
    "mistral11": _mistral11,
    "generic": _generic,
}


def detect_format(template: str, bos: str = "", eos: str = "", override: str | None = None) -> Format:
    if override is None:
        if "<tool_call>" in template:
            override = "hermes"
        elif "[TOOL_CALLS]" in template:
            override = "mistral11" if "[ARGS]" in template else "mistral"
        elif "<|start_header_id|>ipython" in template or "<|python_tag|>" in template or "ipython" in template:
            override = "llama3"
        else:
            override = "generic"
    if override not in FORMATS:
        raise ConfigError(f"unknown tool-call format {override!r} (valid formats: {', '.join(FORMATS)})")
    return FORMATS[override](template, bos, eos)
