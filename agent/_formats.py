"""Tool-call formats: how tools are declared, what triggers a call, how calls and results are written.

Two formats so far (the model-families issue extends the registry):

- `hermes`  Qwen2.5 / Hermes: the chat template declares tools itself (`<tools>` in the system
            turn); calls are `<tool_call>\\n{"name": ..., "arguments": ...}\\n</tool_call>`.
- `generic` models with no tool tokens (SmolLM2, Gemma...): tools are declared in the system
            prompt, asking for the same `<tool_call>` form, written as plain text.

Both families get the same triggers, because small models write calls their own way (measured:
Qwen2.5-Coder-1.5B wrote ```json fenced objects in 5 of 5 questions, never `<tool_call>`):
the native tag, a fenced or bare `{"name": ...}` object, and a fenced `tool_name(...)` call.
A result goes back as a user turn holding `<tool_response>...</tool_response>`, with the turn
scaffolding read off the model's own template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import regex

from tooltoken.tools import ConfigError, Tool

from ._template import Piece, turn_markers

FORMATS = ("hermes", "generic")


def trigger_pattern(tool_names: list[str]) -> regex.Pattern[str]:
    """One pattern for every way a call may start. Matched with partial=True while streaming,
    so text that could still become a trigger is held back and nothing else is.

    JSON forms match through the tool's name, so a name the model invented (Qwen2.5-Coder wrote
    a `greeting` call for "Say hello") is told to the model instead of being forced onto a real tool.
    """
    names = "|".join(regex.escape(n) for n in sorted(tool_names, key=len, reverse=True)) or "(?!)"
    fence = r"```(?:json|tool_call|tool_code|python)?[ \t]*\n?[ \t]*"
    return regex.compile(
        r"<tool_call>|<function_call>"
        rf"|{fence}(?:\{{\s*\"name\"\s*:\s*\"(?P<fname>[^\"\\\n]{{0,64}})\"|(?:{names})\s*\()"
        r'|\{\s*"name"\s*:\s*"(?P<name>[^"\\\n]{0,64})"'
    )


@dataclass(frozen=True)
class Format:
    name: str
    native_tools: bool  # the template renders the tool declarations itself
    call_open: str
    call_close: str
    assistant_to_user: str
    user_to_assistant: str

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

    def call_pieces(self, call_json: str) -> list[Piece]:
        return [Piece(self.call_open, True), Piece(call_json, False), Piece(self.call_close, True)]

    def result_pieces(self, label: str, content: str, nudge: str = "") -> list[Piece]:
        """A tool result as data: delimited, labelled with its source, in a user turn.

        `nudge` follows the result in the same turn, for families never trained on tool turns
        (without it SmolLM2 answers a result by writing the same call again)."""
        after = f"\n{nudge}" if nudge and not self.native_tools else ""
        return [
            Piece(f"{self.assistant_to_user}<tool_response>\n{label}\n", True),
            Piece(content, False),
            Piece(f"\n</tool_response>{after}{self.user_to_assistant}", True),
        ]


def detect_format(template: str, bos: str = "", eos: str = "", override: str | None = None) -> Format:
    name = override or ("hermes" if "<tool_call>" in template else "generic")
    if name not in FORMATS:
        raise ConfigError(f"unknown tool-call format {name!r} (valid formats: {', '.join(FORMATS)})")
    markers = turn_markers(template, bos, eos)
    return Format(
        name=name,
        native_tools=name == "hermes",
        call_open="<tool_call>\n",
        call_close="\n</tool_call>",
        assistant_to_user=markers.assistant_to_user,
        user_to_assistant=markers.user_to_assistant,
    )


def call_schema(tools: list[Tool]) -> dict[str, Any]:
    """JSON schema of one call to any of `tools`: the grammar the call is generated under."""
    options = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": t.call_parameters()},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in tools
    ]
    return options[0] if len(options) == 1 else {"oneOf": options}
