"""The event stream: everything the controller does is one of these.

    TextDelta*  (ToolCall ToolResult TextDelta*)*  Final

The CLI, the batch runner, the server and the adapters only consume this stream. `Final` is
always the last event, whatever happened (a limit, a tool failure, a full context): a consumer
never needs a try/except to learn how an answer ended.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

StopReason = Literal[
    "stop",  # the model ended its turn
    "length",  # max_tokens generated
    "max_tool_calls",  # too many tool calls in one answer
    "repeated_call",  # the same call, again and again
    "context",  # the context window is full
    "timeout",  # the answer's wall-clock budget ran out
    "bad_call",  # a call that could not be completed even under the grammar
    "cancelled",  # the consumer asked to stop
    "injected_call",  # the model began a call that only a tool result's text asked for: not made
    "backend_error",  # a model server failed past its retries (OpenAI-compatible backend)
]


@dataclass
class TextDelta:
    text: str


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    raw: str = ""  # what the model wrote, before canonicalisation
    # made inside the answer's text (the calculator finishing `195 × 144 =`): its result is the
    # answer's next words, not a result turn, and it has no [n] to cite
    inline: bool = False
    check: float | None = None  # the call check's yes-no log-odds, when it ran (Options.call_check)


@dataclass
class ToolResult:
    id: str
    name: str
    content: str  # the text inserted into the context (after truncation)
    source: int  # the [n] the answer may cite
    error: bool = False
    truncated: bool = False
    duration_s: float = 0.0
    sources: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Citation:
    marker: int  # the n of an [n] in the answer
    verified: bool  # n names a tool result of this answer (and its quote occurs in it)
    tool: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    sources: list[dict[str, Any]] = field(default_factory=list)
    source_id: str = ""  # the stable id of the (first, or quoted) source
    title: str = ""
    location: str = ""  # path, URL, line range
    quote: str = ""  # words the answer quoted right before the marker
    reason: str = ""  # why it is not verified
    inferred: bool = False  # no marker: the answer states a fact found verbatim in this result


@dataclass
class Usage:
    prompt_tokens: int = 0  # the rendered conversation, before the answer (and the second look's, if any)
    completion_tokens: int = 0  # tokens sampled by the model
    prompt_tokens_evaluated: int = 0  # tokens llama.cpp evaluated that it did not sample
    tokens_reused: int = 0  # tokens served from the KV cache instead of evaluated again
    prompt_tokens_restored: int = 0  # of tokens_reused: the prompt's prefix, read from the prompt cache
    inserted_tokens: int = 0  # call scaffolding and tool results written by the controller
    call_tokens: int = 0  # tokens of the calls in canonical form (opening, JSON, closing)
    tool_calls: int = 0
    inline_calls: int = 0  # inline uses of a tool (ToolCall.inline), not counted in tool_calls


@dataclass
class Final:
    answer: str
    stop_reason: StopReason
    citations: list[Citation] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    timings: dict[str, float] = field(default_factory=dict)
    message: str = ""  # why it stopped, in words, when that was not the model's choice
    warnings: list[str] = field(default_factory=list)  # things the controller refused or changed
    prompt: str | None = None  # the exact context text, when asked for
    route: str | None = None  # the path the answer took (math, lookup, direct; None: not routed)
    support: float | None = None  # the support check's yes-no log-odds, when it ran (Options.support_check)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Event = TextDelta | ToolCall | ToolResult | Final
