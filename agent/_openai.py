"""`OpenAIBackend`: any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, OpenAI) through
the `openai` package. The answer loop is the one every backend runs (_loop.py); its turns here
work on messages, not tokens (_openai_turns.py):

    messages ──chat.completions (stream, tools)──▶ text deltas ─▶ TextDelta
                                                  tool-call deltas, assembled by index
                                                  (or a call written as text ─▶ parsed here)
        ──▶ ToolCall ... run the calls (in parallel, bounded) ──▶ ToolResult ... (in order)
        ──▶ assistant message + one "tool" message per result, each labelled [n] ──▶ again
        ... until a turn without calls ──▶ Final (checked citations)

    >>> backend = OpenAIBackend("http://127.0.0.1:8080/v1", "qwen2.5")     # doctest: +SKIP
    >>> Agent(backend, tools=[calculator]).run("What is 1234 * 5678?")      # doctest: +SKIP

When the server rejects `tools` (HTTP 400/422 naming tools or functions), the tools are declared
in the system prompt instead (the `generic` format: `<tool_call>{"name": ..., "arguments": ...}
</tool_call>`), calls are parsed out of the streamed text with the controller's trigger pattern
(text that may be the start of a call is held back, so no half call is shown), and results go
back as a user turn holding `<tool_response>`. The backend remembers the rejection.
`Agent(backend, format="generic")` asks for that mode from the start. In native mode a call the
model writes as text (```json fences, bare `{"name": ...}`) is caught the same way.

Server failures are events, never exceptions: timeouts, refused connections, 5xx/429 and
malformed chunks are retried (`max_retries`, with backoff) as long as no text of that turn was
shown; then `Final(stop_reason="backend_error")` says what happened. A 400/422 that names a
request field tooltoken chose (`stream_options`, `max_tokens`, a sampling field) drops or renames
that field once and goes again; an error about the context length ends with "context".

Sampling: `temperature`, `top_p` and `seed` are OpenAI API fields; `top_k`, `min_p` and
`repeat_penalty` are llama.cpp server extensions, sent in the body (`extra_body`) only when set
(vLLM spells the last `repetition_penalty`: pass it in `extra_body`). OpenAI's
`frequency_penalty` is a different penalty and is never derived from `repeat_penalty`. A server
writes text and calls in one request, so only a request that must be a call (a named or
`required` `tool_choice` with native tools) is sent at temperature 0 (`call_greedy`; not when
`temperature` is None).

Not handled: a server that accepts `tools` but whose template never shows them to the model
(llama-cpp-python's default handler; use `format="generic"` there); cancelling in the middle of a
blocking read (it is checked between chunks). Token counts are the server's when it reports them
(`stream_options.include_usage`); otherwise they, and `max_tool_output_tokens`, are estimated at
four characters a token.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tooltoken.tools import ConfigError

from ._sampling import RANDOM_SEED, Sampling, check_sampling

__all__ = ["OpenAIBackend"]

SAMPLING_FIELDS = ("temperature", "top_p", "seed")  # in the OpenAI API
SAMPLING_EXTRA = ("top_k", "min_p", "repeat_penalty")  # llama.cpp server extensions: in extra_body
BACKEND_ERROR = "backend_error"  # the server failed; not yet in _events.StopReason (requested)
CHARS_PER_TOKEN = 4

# Stands in for the server's own template, so `Agent.prompt()` can show roughly what a Hermes
# or Qwen server renders; the server applies its real template to the messages sent.
SERVER_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') }}"
    "{% if loop.first and tools %}"
    "{{ '\\n\\n# Tools\\n\\n<tools>' }}{% for tool in tools %}{{ '\\n' + (tool | tojson) }}{% endfor %}"
    "{{ '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments"
    " within <tool_call></tool_call> XML tags.' }}"
    "{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


class OpenAIBackend:
    """A chat-completions server. Thread-safe: one backend may serve many answers at once."""

    chat_template = SERVER_TEMPLATE
    bos_text = eos_text = ""
    add_bos = False
    n_ctx = 0  # unknown: the server enforces its own context window
    backoff = 0.5  # seconds before the first retry, doubled each retry (at most 8)

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 60,
        max_retries: int = 2,
        extra_body: dict[str, Any] | None = None,
        *,
        temperature: float | None = Sampling.temperature,
        top_p: float | None = None,
        top_k: int | None = None,
        min_p: float | None = None,
        repeat_penalty: float | None = None,
        seed: int | None = None,
        call_greedy: bool = Sampling.call_greedy,
    ) -> None:
        """`timeout`: seconds per connection or read; `extra_body`: extra request fields (they win
        over tooltoken's); `temperature`: greedy by default. A sampling field left None (or a seed
        of -1) is not sent: the server uses its own (see the module docstring)."""
        check_sampling(temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p,
                       repeat_penalty=repeat_penalty, seed=seed, call_greedy=call_greedy)
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigError("the OpenAI-compatible backend needs openai: pip install 'tooltoken[openai]'") from exc
        self._openai = openai
        self.base_url, self.model, self.name = base_url, model, model
        self.timeout, self.max_retries = float(timeout), int(max_retries)
        self.extra_body = dict(extra_body or {})
        self.temperature, self.top_p, self.seed = temperature, top_p, (None if seed == RANDOM_SEED else seed)
        self.top_k, self.min_p, self.repeat_penalty = top_k, min_p, repeat_penalty
        self.call_greedy = call_greedy
        # retries are ours (they must know whether text was already shown), so the client's are off
        self.client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "no-key",  # local servers need none
            timeout=self.timeout,
            max_retries=0,
        )
        self.native_tools = True  # False once the server rejected `tools`
        self.stream_options = True  # ask for usage in the stream, until the server objects
        self.max_tokens_field = "max_tokens"


def error_text(exc: Any) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message is None:
            message = body.get("detail", body)
        return (message if isinstance(message, str) else json.dumps(message))[:500]
    return str(body or exc.message)[:500]


# -- chunks -----------------------------------------------------------------------------------
def value_of(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def read_chunk(chunk: Any) -> tuple[str, list[dict[str, Any]], str | None, Any]:
    """(text, tool-call deltas, finish_reason, usage) of one chunk; ValueError if misshapen."""
    choices = value_of(chunk, "choices") or []
    if not isinstance(choices, list):
        raise ValueError(f"'choices' is {type(choices).__name__}, not a list")
    text, deltas, finish = "", [], None
    for choice in choices[:1]:
        delta = value_of(choice, "delta") or {}
        content = value_of(delta, "content")
        if content is not None and not isinstance(content, str):
            raise ValueError(f"'content' is {type(content).__name__}, not a string")
        text = content or ""
        finish = value_of(choice, "finish_reason")
        tool_calls = value_of(delta, "tool_calls")
        legacy = value_of(delta, "function_call")
        if tool_calls is None and legacy is not None:  # the pre-tools field: one call
            tool_calls = [{"index": 0, "function": legacy}]
        if tool_calls is not None and not isinstance(tool_calls, list):
            raise ValueError(f"'tool_calls' is {type(tool_calls).__name__}, not a list")
        for tc in tool_calls or []:
            fn = value_of(tc, "function") or {}
            arguments = value_of(fn, "arguments")
            if arguments is not None and not isinstance(arguments, str):
                arguments = json.dumps(arguments)  # some servers send the object itself
            index = value_of(tc, "index")
            deltas.append({"index": index if isinstance(index, int) else None, "id": value_of(tc, "id") or "",
                           "name": value_of(fn, "name") or "", "arguments": arguments or ""})
    return text, deltas, finish, value_of(chunk, "usage")


def merge_delta(calls: list[dict[str, str]], delta: dict[str, Any]) -> None:
    """Add one tool-call delta to the calls being assembled, by index (or by id, if no index)."""
    index = delta["index"]
    if index is None:  # no index: a new id starts a new call, anything else continues the last
        index = len(calls) - 1 if calls and (not delta["id"] or delta["id"] == calls[-1]["id"]) else len(calls)
    while len(calls) <= index:
        calls.append({"id": "", "name": "", "arguments": ""})
    call = calls[index]
    call["id"] = call["id"] or delta["id"]
    name = delta["name"]
    if name:  # most servers send the name once; some repeat it whole in every delta
        call["name"] = name if not call["name"] or name.startswith(call["name"]) else call["name"] + name
    call["arguments"] += delta["arguments"]
