"""Model families: each is one object, registered by name, that knows how its models declare tools,
start a call (triggers), write a call back in canonical form, take results, and end a turn. The
loop and the interfaces ask the family; none of them tests a family's name. Chosen from the GGUF
chat template (as llama.cpp's server does, by marker strings) unless `Agent(format=...)` names one.
Adding a family is one subclass of `Family` with `@register` and its tests.

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
from dataclasses import dataclass
from typing import Any, ClassVar

import regex

from tooltoken.tools import ConfigError, Tool

from ._calls import CallSyntaxError, read_builtin, read_pythonic
from ._template import Piece, turn_markers

__all__ = ["BUILTINS", "Call", "FAMILIES", "Family", "detect_format", "read_call", "register", "trigger_pattern"]

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


FAMILIES: dict[str, type["Family"]] = {}


def register(cls: type["Family"]) -> type["Family"]:
    """Class decorator: `detect_format(..., override=cls.name)` finds the family by its name."""
    FAMILIES[cls.name] = cls
    return cls


RESULT_OPEN, RESULT_CLOSE = "<tool_response>\n", "\n</tool_response>"  # Hermes-style result blocks


@register
class Family:
    """Hermes / Qwen2.5: `<tool_call>\n{"name", "arguments"}\n</tool_call>`, results in a user turn
    of `<tool_response>` blocks. The other families override what differs."""

    name: ClassVar[str] = "hermes"
    native_tools: ClassVar[bool] = True  # the template renders the tool declarations itself
    call_open: ClassVar[str] = "<tool_call>\n"
    call_close: ClassVar[str] = "\n</tool_call>"
    args_key: ClassVar[str] = "arguments"
    parallel: ClassVar[bool] = False  # a call turn holds a JSON list of calls
    # a call turn may hold several calls one after another (Qwen2.5 writes `\n<tool_call>` again
    # after `</tool_call>`): the text written between two of them, None if the family can't
    call_sep: ClassVar[str | None] = "\n"
    extra_triggers: ClassVar[tuple[str, ...]] = ()  # the family's own call tokens
    pythonic: ClassVar[bool] = False  # calls may be a Python-style list `[f(a=1)]`
    pythonic_close: ClassVar[str] = ""  # what ends such a list's turn
    bare_calls: ClassVar[bool] = False  # a call may start with a name, not `{` (`brave_search.call(...)`)
    result_tag: ClassVar[str] = RESULT_OPEN.strip()  # how the system prompt names tool results to the model

    def __init__(self, template: str = "", bos: str = "", eos: str = "") -> None:
        self.eos = eos
        if self.uses_turn_markers and template:  # no template: message text only (result_text)
            m = turn_markers(template, bos, eos)
            self.assistant_to_user, self.user_to_assistant = m.assistant_to_user, m.user_to_assistant
        else:
            self.assistant_to_user = self.user_to_assistant = ""

    uses_turn_markers: ClassVar[bool] = True  # results go in a user turn of the chat template

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # -- declaring ---------------------------------------------------------------------------
    def render_kwargs(self, tools: list[Tool]) -> dict[str, Any]:
        """Extra variables the chat template reads."""
        return {}

    def system_text(self, tools: list[Tool]) -> str:
        """Tool declarations for the system prompt (only for families the template can't declare)."""
        if self.native_tools or not tools:
            return ""
        lines = "\n".join(json.dumps(t.schema(), ensure_ascii=False) for t in tools)
        return (
            "\n\nYou can call tools. They are listed here, one JSON schema a line:\n<tools>\n"
            f"{lines}\n</tools>\n"
            f"To call one, write exactly:\n{self.call_open}"
            f'{{"name": "<tool name>", "{self.args_key}": {{<arguments as JSON>}}}}{self.call_close}\n'
            f"The result comes back in {RESULT_OPEN.strip()}{RESULT_CLOSE.strip()}."
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
        return [read_call(item, self.args_key, tools, allowed) for item in items[:8]]

    def canonical(self, calls: list[Call], ids: list[str]) -> list[Piece]:
        """The call as the family writes it (arguments untrusted: never control tokens)."""
        c = calls[0]
        return [Piece(json.dumps({"name": c.name, self.args_key: c.arguments}, ensure_ascii=False), False)]

    def call_id(self, n: int) -> str:
        return f"call_{n}"

    # -- results -----------------------------------------------------------------------------
    def result_text(self, items: list[tuple[str, str, str]], nudge: str = "", always: bool = False) -> str:
        """The results as the text of one user message (what a message-level backend sends)."""
        return "".join(p.text for p in self._result_blocks(items, nudge if always or not self.native_tools else ""))

    def result_pieces(self, items: list[tuple[str, str, str]], nudge: str = "", always: bool = False) -> list[Piece]:
        """Results as data: delimited, labelled with their source. `items`: (label, content, call id).

        `nudge` follows the results in the same turn where the template does not know tool turns
        (without it SmolLM2, never trained on tool turns, answers a result by writing the same call
        again), and in every template if `always` (the lookup path restates the question there)."""
        blocks = self._result_blocks(items, nudge if always or not self.native_tools else "")
        return [Piece(self.assistant_to_user, True), *blocks, Piece(self.user_to_assistant, True)]

    def _result_blocks(self, items: list[tuple[str, str, str]], nudge: str) -> list[Piece]:
        pieces: list[Piece] = []
        for k, (label, content, _) in enumerate(items):
            pieces += [Piece(f"{chr(10) if k else ''}{RESULT_OPEN}{label}\n", True), Piece(content, False),
                       Piece(RESULT_CLOSE, True)]
        if nudge:
            pieces.append(Piece(f"\n{nudge}", True))
        return pieces


@register
class Generic(Family):
    """A template with no tool support: tools declared in the system prompt, `<tool_call>` asked
    for as text, results in a user turn of `<tool_response>` blocks followed by the nudge."""

    name = "generic"
    native_tools = False


@register
class Llama3(Family):
    """Llama 3.x: `<|python_tag|>{"name", "parameters"}<|eom_id|>`, 3.2's pythonic list, 3.1's
    built-ins; results in `ipython` turns."""

    name = "llama3"
    call_open, call_close = "<|python_tag|>", "<|eom_id|>"
    args_key = "parameters"
    call_sep = None
    extra_triggers = ("<|python_tag|>",)
    pythonic = True
    pythonic_close = "<|eot_id|>"
    bare_calls = True
    uses_turn_markers = False

    def render_kwargs(self, tools: list[Tool]) -> dict[str, Any]:
        names = {t.name for t in tools}
        return {"builtin_tools": [b for b, (ours, _) in BUILTINS.items() if ours in names]}

    def result_pieces(self, items: list[tuple[str, str, str]], nudge: str = "", always: bool = False) -> list[Piece]:
        pieces: list[Piece] = []
        for label, content, _ in items:
            pieces += [Piece(f"<|start_header_id|>ipython<|end_header_id|>\n\n{label}\n", True),
                       Piece(content, False), Piece("<|eot_id|>", True)]
        if always and nudge:  # said by the user, after the results
            pieces.append(Piece(f"<|start_header_id|>user<|end_header_id|>\n\n{nudge}<|eot_id|>", True))
        return pieces + [Piece("<|start_header_id|>assistant<|end_header_id|>\n\n", True)]


@register
class Mistral(Family):
    """Mistral v3: `[TOOL_CALLS] [{"name", "arguments", "id"}, ...]</s>` (a list: parallel calls),
    results as `[TOOL_RESULTS] {"content", "call_id"}[/TOOL_RESULTS]`; ids of 9 alphanumerics."""

    name = "mistral"
    call_open = "[TOOL_CALLS] "
    parallel = True
    call_sep = None
    extra_triggers = ("[TOOL_CALLS]",)
    uses_turn_markers = False

    def __init__(self, template: str = "", bos: str = "", eos: str = "") -> None:
        super().__init__(template, bos, eos)
        self.call_close = eos or "</s>"  # type: ignore[misc]

    def canonical(self, calls: list[Call], ids: list[str]) -> list[Piece]:
        listed = [{"name": c.name, self.args_key: c.arguments, "id": i} for c, i in zip(calls, ids)]
        return [Piece(json.dumps(listed, ensure_ascii=False), False)]

    def call_id(self, n: int) -> str:
        return f"call{n:05d}"

    def result_pieces(self, items: list[tuple[str, str, str]], nudge: str = "", always: bool = False) -> list[Piece]:
        pieces: list[Piece] = []
        for label, content, call_id in items:
            pieces += [Piece('[TOOL_RESULTS] {"content": ', True),
                       Piece(json.dumps(f"{label}\n{content}", ensure_ascii=False), False),
                       Piece(f', "call_id": "{call_id}"}}[/TOOL_RESULTS]', True)]
        return pieces + _user_nudge(nudge, always)


@register
class Mistral11(Mistral):
    """Mistral v11 templates: `[TOOL_CALLS]name[CALL_ID]id[ARGS]{...}`, one call after another;
    results as `[TOOL_RESULTS]id[TOOL_CONTENT]...[/TOOL_RESULTS]`."""

    name = "mistral11"
    call_open = "[TOOL_CALLS]"
    parallel = False

    def canonical(self, calls: list[Call], ids: list[str]) -> list[Piece]:
        pieces: list[Piece] = []
        for k, (c, i) in enumerate(zip(calls, ids)):
            if k:
                pieces.append(Piece("[TOOL_CALLS]", True))
            pieces += [Piece(c.name or "", False), Piece("[CALL_ID]", True), Piece(i, False),
                       Piece("[ARGS]", True), Piece(json.dumps(c.arguments, ensure_ascii=False), False)]
        return pieces

    def result_pieces(self, items: list[tuple[str, str, str]], nudge: str = "", always: bool = False) -> list[Piece]:
        pieces: list[Piece] = []
        for label, content, call_id in items:
            pieces += [Piece("[TOOL_RESULTS]", True), Piece(call_id, False), Piece(f"[TOOL_CONTENT]{label}\n", True),
                       Piece(content, False), Piece("[/TOOL_RESULTS]", True)]
        return pieces + _user_nudge(nudge, always)


def _user_nudge(nudge: str, always: bool) -> list[Piece]:
    """Mistral's results end the tool turn; a nudge that must be said is the user's next turn."""
    return [Piece(f"[INST] {nudge}[/INST]", True)] if always and nudge else []


def read_call(item: Any, args_key: str, tools: dict[str, Tool], allowed: list[Tool]) -> Call:
    """One call from a parsed JSON value: a real tool among `allowed`, arguments an object."""
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


def detect_format(template: str, bos: str = "", eos: str = "", override: str | None = None) -> Family:
    """The family of a chat template (by its marker strings), or the one named by `override`."""
    if override is None:
        if "<tool_call>" in template:
            override = "hermes"
        elif "[TOOL_CALLS]" in template:
            override = "mistral11" if "[ARGS]" in template else "mistral"
        elif "<|start_header_id|>ipython" in template or "<|python_tag|>" in template or "ipython" in template:
            override = "llama3"
        else:
            override = "generic"
    if override not in FAMILIES:
        raise ConfigError(f"unknown tool-call format {override!r} (valid formats: {', '.join(FAMILIES)})")
    return FAMILIES[override](template, bos, eos)
