"""`OpenAIBackend`: any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, OpenAI) through
the `openai` package. The loop works on messages, not tokens, and yields the same events as the
in-process controller:

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
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterator

from tooltoken.tools import ConfigError, Tool

from ._citations import check_citations
from ._controller import Options
from ._events import Event, Final, TextDelta, ToolCall, ToolResult, Usage
from ._formats import _one, detect_format, trigger_pattern
from ._sampling import RANDOM_SEED, check_sampling
from ._textcalls import TextCallScanner, parse_text_call
from ._toolrun import run_tool
from ._unstated import drop_unstated, unstated_warning

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
    max_parallel_tools = 4

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 60,
        max_retries: int = 2,
        extra_body: dict[str, Any] | None = None,
        *,
        temperature: float | None = 0.0,
        top_p: float | None = None,
        top_k: int | None = None,
        min_p: float | None = None,
        repeat_penalty: float | None = None,
        seed: int | None = None,
        call_greedy: bool = True,
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

    def stream_chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[Tool],
        options: Options,
        cancel: threading.Event | None = None,
        *,
        prompt_tools: bool = False,
        given: str = "",
    ) -> Iterator[Event]:
        """One answer's events. `messages` start with the system message; `prompt_tools`: the tools
        are already declared in it (the `generic` format), so `tools` is not sent. `given`: the
        user's own system prompt, for Options.drop_unstated."""
        yield from _Answer(self, messages, tools, options, cancel, prompt_tools, given).run()


class _Stop(Exception):
    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


class _Retry(Exception):
    """A failure worth another attempt (if no text of the turn was shown yet)."""


class _Again(Exception):
    """The request was adapted to what the server accepts: send it again at once."""


@dataclass
class _Turn:
    text: str = ""  # answer text shown in this turn
    calls: list[dict[str, str]] = field(default_factory=list)  # native: id, name, arguments
    text_call: str | None = None  # a call written as text
    finish: str | None = None
    completion_chars: int = 0
    usage: Any = None


class _Answer:
    def __init__(self, backend: OpenAIBackend, messages: list[dict[str, Any]], tools: list[Tool],
                 options: Options, cancel: threading.Event | None, prompt_tools: bool, given: str = "") -> None:
        self.b, self.opt = backend, options
        self.msgs = [dict(m) for m in messages]
        # what the model did not write, for Options.drop_unstated: the user's own system prompt and
        # every user or tool message (results of this answer are added as they come)
        self._given = [given, *(str(m.get("content") or "") for m in messages[1:] if m.get("role") != "assistant")]
        self.tools = {t.name: t for t in tools}
        self.cancel = cancel or threading.Event()
        tools_on = bool(tools) and options.tool_choice != "none"
        self.native = tools_on and backend.native_tools and not prompt_tools
        self.trigger = trigger_pattern(list(self.tools))
        self.usage = Usage()
        self.calls: list[ToolCall] = []
        self.results: list[ToolResult] = []
        self.answer: list[str] = []
        self.warnings: list[str] = []
        self.t0 = time.perf_counter()
        self.timings: dict[str, float] = {"tools_s": 0.0, "requests": 0, "retries": 0}
        self._trigger_time: float | None = None
        self._completion_tokens_est = 0
        self._reported_usage = False
        self._sent: list[dict[str, Any]] = []
        self._result_texts: list[str] = []
        if tools_on and not self.native and not prompt_tools:  # this server rejected tools before
            self._declare_tools()

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> Iterator[Event]:
        reason, message = "stop", ""
        try:
            choice = self.opt.tool_choice
            plan = [] if choice in ("auto", "none") else [choice] if isinstance(choice, str) else list(choice)
            unknown = [c for c in plan if c not in ("required", "none") and c not in self.tools]
            if unknown:
                raise _Stop("bad_call", f"tool_choice names no registered tool: {', '.join(map(repr, unknown))}")
            free = bool(self.tools) and choice != "none"
            while True:
                step = "auto" if free else "none"
                if plan and self.tools:
                    step = plan.pop(0)
                    if step == "none":  # a plan ending in "none": answer now, no more calls
                        free, plan = False, []
                        continue
                turn = yield from self._turn(step)
                allowed = [self.tools[step]] if step in self.tools else list(self.tools.values())
                if not (turn.calls or turn.text_call is not None):
                    if step not in ("auto", "none"):
                        self.warnings.append(f"tool_choice {step!r} was not followed: the answer came without a call")
                    if turn.finish == "length":
                        raise _Stop("length", f"max_tokens ({self.opt.max_tokens}) reached")
                    break
                yield from self._calls(turn, allowed)
        except _Stop as stop:
            reason, message = stop.reason, stop.message
        yield from self._final(reason, message)

    def _final(self, reason: str, message: str) -> Iterator[Event]:
        self.usage.tool_calls = len(self.calls)
        if not self._reported_usage:
            self.usage.completion_tokens = self._completion_tokens_est
        self.timings["total_s"] = time.perf_counter() - self.t0
        citations = check_citations("".join(self.answer), self.calls, self.results)
        if reason == "stop" and self.results and self.opt.unsupported_notice and not any(c.verified for c in citations):
            yield from self._emit(f"\n\n{self.opt.unsupported_notice}")
        yield Final(
            answer="".join(self.answer),
            stop_reason=reason,  # type: ignore[arg-type]  # a str from the loop, one of StopReason
            citations=citations,
            tool_calls=self.calls,
            tool_results=self.results,
            usage=self.usage,
            timings=self.timings,
            message=message,
            warnings=self.warnings,
            prompt=json.dumps(self._sent, ensure_ascii=False, indent=1) if self.opt.show_prompt else None,
        )

    def _emit(self, text: str) -> Iterator[Event]:
        if text:
            now = time.perf_counter()
            self.timings.setdefault("first_token_s", now - self.t0)
            if self._trigger_time is not None:  # first answer text after a call was written
                self.timings["roundtrip_s"] = self.timings.get("roundtrip_s", 0.0) + now - self._trigger_time
                self.timings["roundtrips"] = self.timings.get("roundtrips", 0) + 1
                self._trigger_time = None
            self.answer.append(text)
            yield TextDelta(text)

    def _check_limits(self) -> None:
        if self.cancel.is_set():
            raise _Stop("cancelled", "stopped by the caller")
        if self.opt.max_time_s is not None and time.perf_counter() - self.t0 > self.opt.max_time_s:
            raise _Stop("timeout", f"the answer took longer than {self.opt.max_time_s:g} s")

    # -- one request, with retries -----------------------------------------------------------
    def _turn(self, step: str) -> Iterator[Event]:
        attempt = 0
        while True:
            shown = len(self.answer)
            try:
                return (yield from self._request(step))
            except _Again:
                continue
            except _Retry as exc:
                if len(self.answer) > shown:  # text is out: a retry would show it twice
                    raise _Stop(BACKEND_ERROR, f"the stream from {self.b.base_url} broke: {exc}") from None
                if attempt >= self.b.max_retries:
                    tries = f"{attempt + 1} attempt" + ("s" if attempt else "")
                    raise _Stop(BACKEND_ERROR, f"{self.b.base_url} failed: {exc} (gave up after {tries})") from None
                attempt += 1
                self.timings["retries"] += 1
                delay = min(8.0, self.b.backoff * 2 ** (attempt - 1))
                if self.opt.max_time_s is not None and time.perf_counter() - self.t0 + delay > self.opt.max_time_s:
                    raise _Stop("timeout", f"the answer took longer than {self.opt.max_time_s:g} s ({exc})") from None
                if self.cancel.wait(delay):
                    raise _Stop("cancelled", "stopped by the caller") from None

    def _body(self, step: str) -> dict[str, Any]:
        messages = self.msgs
        body: dict[str, Any] = {"model": self.b.model, "stream": True}
        body.update({k: getattr(self.b, k) for k in SAMPLING_FIELDS if getattr(self.b, k) is not None})
        left = self.opt.max_tokens - self._used_tokens()
        if left <= 0:
            raise _Stop("length", f"max_tokens ({self.opt.max_tokens}) reached")
        body[self.b.max_tokens_field] = left
        if self.b.stream_options:
            body["stream_options"] = {"include_usage": True}
        if self.native:
            body["tools"] = [t.schema() for t in self.tools.values()]
            if step in self.tools or (step == "required" and len(self.tools) == 1):
                # one named function: the most widely honoured way to force a call
                name = step if step in self.tools else next(iter(self.tools))
                body["tool_choice"] = {"type": "function", "function": {"name": name}}
            else:
                body["tool_choice"] = step
        elif self.tools and step not in ("auto", "none"):  # no tool_choice without native tools: ask
            which = f"the tool {step}" if step in self.tools else "one of the tools"
            last = dict(messages[-1])
            last["content"] = f"{last.get('content') or ''}\n\nCall {which} now, in the <tool_call> form."
            messages = [*messages[:-1], last]
        forced = isinstance(body.get("tool_choice"), dict) or body.get("tool_choice") == "required"
        if forced and self.b.call_greedy and "temperature" in body:  # this request is a call: greedy
            body["temperature"] = 0.0
        extra = {k: getattr(self.b, k) for k in SAMPLING_EXTRA if getattr(self.b, k) is not None}
        if extra or self.b.extra_body:
            body["extra_body"] = {**extra, **self.b.extra_body}  # the user's extra_body wins
        body["messages"] = messages
        return body

    def _used_tokens(self) -> int:
        return self.usage.completion_tokens if self._reported_usage else self._completion_tokens_est

    def _request(self, step: str) -> Iterator[Event]:
        self._check_limits()
        body = self._body(step)
        self._sent = body["messages"]
        self.timings["requests"] += 1
        timeout = self.b.timeout
        if self.opt.max_time_s is not None:
            timeout = max(0.05, min(timeout, self.opt.max_time_s - (time.perf_counter() - self.t0)))
        oa = self.b._openai
        try:
            stream = self.b.client.chat.completions.create(**body, timeout=timeout)
        except oa.APIStatusError as exc:
            raise self._status_error(exc, body) from None
        except (oa.APITimeoutError, oa.APIConnectionError) as exc:
            raise self._transport_error(exc, timeout) from None
        turn = _Turn()
        # calls written as text: caught when free, and always in the prompt-based form
        scanning = bool(self.tools) and step != "none" and (step == "auto" or not self.native)
        scanner = TextCallScanner(self.trigger, self._in_a_result, self.opt.max_call_tokens * CHARS_PER_TOKEN)
        try:
            for chunk in stream:
                self._check_limits()
                content, deltas, finish, usage = _read_chunk(chunk)
                turn.usage = usage or turn.usage  # some servers repeat running totals: keep the last
                for delta in deltas:
                    _merge(turn.calls, delta)
                    turn.completion_chars += len(delta.get("arguments") or "")
                if finish:
                    turn.finish = finish
                if not content:
                    continue
                turn.completion_chars += len(content)
                shown = scanner.feed(content) if scanning else content
                turn.text += shown
                yield from self._emit(shown)
                if scanner.call is not None:  # the call is complete: nothing after it matters
                    break
            else:
                if scanning:
                    tail = scanner.end()
                    turn.text += tail
                    yield from self._emit(tail)
        except oa.APITimeoutError as exc:
            raise self._transport_error(exc, timeout) from None
        except oa.APIStatusError as exc:
            raise self._status_error(exc, body) from None
        except oa.APIError as exc:  # connection dropped, or an error event inside the stream
            raise _Retry(f"the stream failed: {exc}") from None
        except ValueError as exc:  # JSON that does not parse, or a chunk of the wrong shape
            raise _Retry(f"the server sent a malformed chunk ({exc})") from None
        finally:
            stream.close()
        self.warnings += scanner.warnings
        self._count_usage(turn.usage)
        turn.text_call = scanner.call
        self._completion_tokens_est += -(-turn.completion_chars // CHARS_PER_TOKEN)
        return turn

    def _count_usage(self, usage: Any) -> None:
        if not usage:
            return
        prompt, completion = _get(usage, "prompt_tokens") or 0, _get(usage, "completion_tokens") or 0
        cached = _get(_get(usage, "prompt_tokens_details"), "cached_tokens") or 0
        if not self._reported_usage:
            self._reported_usage = True
            self.usage.prompt_tokens = int(prompt)
        self.usage.completion_tokens += int(completion)
        self.usage.prompt_tokens_evaluated += int(prompt) - int(cached)
        self.usage.tokens_reused += int(cached)

    # -- errors ------------------------------------------------------------------------------
    def _transport_error(self, exc: Exception, timeout: float) -> Exception:
        self._check_limits()  # the answer's own time budget ran out: that is "timeout", not a failure
        if isinstance(exc, self.b._openai.APITimeoutError):
            return _Retry(f"no answer within {timeout:g} s (request timed out)")
        cause = exc.__cause__ or exc.__context__
        return _Retry(f"could not connect ({cause or exc})")

    def _status_error(self, exc: Any, body: dict[str, Any]) -> Exception:
        status = exc.status_code
        said = _error_text(exc)
        what = f"HTTP {status}: {said}"
        if status in (408, 409, 429) or status >= 500:
            return _Retry(what)
        low = said.lower()
        if status in (400, 413, 422):
            if re.search(r"context (length|window|size)|too many tokens|exceeds? (the )?context|prompt is too long", low):
                return _Stop("context", f"the server's context window is full ({what})")
            if "tools" in body and re.search(r"tool|function", low):
                self.b.native_tools = self.native = False
                self._declare_tools()
                self.warnings.append(f"the server rejected tools ({what}); they are declared in the prompt instead")
                return _Again()
            if "stream_options" in body and "stream_options" in low:
                self.b.stream_options = False
                return _Again()
            if "max_tokens" in body and "max_tokens" in low:
                self.b.max_tokens_field = "max_completion_tokens"
                return _Again()
            sent = {k for k in (*SAMPLING_FIELDS, *SAMPLING_EXTRA) if k in body or k in body.get("extra_body", {})}
            refused = [k for k in sorted(sent) if k in low and k not in self.b.extra_body]  # only fields we chose
            if refused:
                for k in refused:
                    setattr(self.b, k, None)
                self.warnings.append(f"the server refused {', '.join(refused)} ({what}); it samples with its own")
                return _Again()
        return _Stop(BACKEND_ERROR, f"{self.b.base_url} refused the request: {what}")

    def _declare_tools(self) -> None:
        """Prompt-based tools: the declarations of the `generic` format, in the system message."""
        fmt = detect_format(SERVER_TEMPLATE, override="generic")
        system = dict(self.msgs[0])
        system["content"] = (system.get("content") or "") + fmt.system_text(list(self.tools.values()))
        self.msgs[0] = system

    # -- calls -------------------------------------------------------------------------------
    def _calls(self, turn: _Turn, allowed: list[Tool]) -> Iterator[Event]:
        """Record the turn's calls, run them (concurrently), insert the results in order."""
        wanted = []
        for c in turn.calls:
            args = c["arguments"].strip() or "{}"
            raw = f'{{"name": {json.dumps(c["name"])}, "arguments": {args}}}'
            wanted.append((c["id"] or None, {"name": c["name"], "arguments": args}, raw))
        if turn.text_call is not None:
            wanted.append((None, parse_text_call(turn.text_call, self.tools), turn.text_call))
        batch: list[tuple[ToolCall, str | None, Any]] = []  # call, server id, what to run
        stop: _Stop | None = None
        for server_id, parsed, raw in wanted:
            if len(self.calls) >= self.opt.max_tool_calls:
                stop = _Stop("max_tool_calls", f"more than {self.opt.max_tool_calls} tool calls in one answer")
                break
            if parsed is None:
                name, arguments = None, {}
                problem = f"could not read the tool call {raw.strip()[:200]!r}: write one JSON object with \"name\" and \"arguments\""
            else:
                read = _one(parsed, "arguments", self.tools, allowed)
                name, arguments, problem = read.name, read.arguments, read.problem
                if self.opt.drop_unstated and not problem and name in self.tools:
                    arguments, dropped = drop_unstated(self.tools[name], arguments,
                                                       " ".join([*self._given, *(r.content for r in self.results)]))
                    if dropped:
                        self.warnings.append(unstated_warning(name, dropped))
            call = ToolCall(f"call_{len(self.calls) + 1}", name or "", arguments, raw=raw)
            job: Any = f"error: {problem}" if problem else None
            if not problem:
                repeats = 1 + _repeats(self.calls, call)
                if repeats > self.opt.max_repeated_calls:
                    stop = _Stop("repeated_call", f"{name} called {repeats} times in a row with the same arguments")
                    break
                if repeats > 1:  # don't run it again: point back at the result the model already has
                    job = f"repeated call: the result of this exact call is [{len(self.calls)}] above. Answer from it now."
            self.calls.append(call)
            batch.append((call, server_id, job))
            yield call
        if not batch:
            raise stop or _Stop("bad_call", "the server returned an empty tool call")
        self._trigger_time = time.perf_counter()  # the calls are written: from here on it is our cost
        self._write_calls(turn.text, batch)
        runnable = [(i, c) for i, (c, _, job) in enumerate(batch) if job is None]
        results: list[ToolResult] = []
        slowest = 0.0
        with ThreadPoolExecutor(max_workers=max(1, min(len(runnable), self.b.max_parallel_tools))) as pool:
            futures = {i: pool.submit(run_tool, self.tools[c.name], c.arguments, self.opt.tool_timeout)
                       for i, c in runnable}
            for i, (call, _, job) in enumerate(batch):
                if i in futures:
                    outcome = futures[i].result()  # bounded: run_tool has its own timeout
                    content, error, duration = outcome.output.content, outcome.error, outcome.duration_s
                    sources = [s.__dict__ for s in outcome.sources]
                else:
                    content, error, duration, sources = job, True, 0.0, []
                slowest = max(slowest, duration)
                result = self._result(call, content, error, duration, sources)
                results.append(result)
                yield result
        self.timings["tools_s"] += slowest  # calls of one turn run at once: their wall time
        self._write_results(batch, results)
        if stop is not None:
            raise stop

    def _write_calls(self, text: str, batch: list[tuple[ToolCall, str | None, Any]]) -> None:
        if self.native:
            tool_calls = [
                {"id": sid or call.id, "type": "function",
                 "function": {"name": call.name or "unreadable_call",
                              "arguments": json.dumps(call.arguments, ensure_ascii=False)}}
                for call, sid, _ in batch
            ]
            # content "" rather than None: many chat templates concatenate it as a string
            self.msgs.append({"role": "assistant", "content": text, "tool_calls": tool_calls})
            written = sum(len(t["function"]["arguments"]) + len(t["function"]["name"]) for t in tool_calls)
        else:  # the generic format: the call in canonical form, as text
            blocks = []
            for call, _, job in batch:
                canonical = json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)
                blocks.append(f"<tool_call>\n{canonical if call.name in self.tools else call.raw}\n</tool_call>")
            self.msgs.append({"role": "assistant", "content": text + "\n".join(blocks)})
            written = sum(map(len, blocks))
        self.usage.call_tokens += -(-written // CHARS_PER_TOKEN)
        self.usage.inserted_tokens += -(-written // CHARS_PER_TOKEN)

    def _write_results(self, batch: list[tuple[ToolCall, str | None, Any]], results: list[ToolResult]) -> None:
        added = 0
        blocks = []
        for (call, sid, _), r in zip(batch, results):
            label = f"[{r.source}] {call.name or 'tool'}" + (" (error)" if r.error else "")
            if self.native:
                self.msgs.append({"role": "tool", "tool_call_id": sid or call.id, "content": f"{label}\n{r.content}"})
                added += len(self.msgs[-1]["content"])
            else:
                blocks.append(f"<tool_response>\n{label}\n{r.content}\n</tool_response>")
        if blocks:  # the generic format's result turn, with its nudge (see Format.result_pieces)
            refs = ", ".join(f"[{r.source}]" for r in results)
            nudge = (f"Use this result {refs} to answer my question; cite it as {refs}." if len(results) == 1
                     else f"Use these results {refs} to answer my question; cite each by its number.")
            self.msgs.append({"role": "user", "content": "\n".join(blocks) + f"\n{nudge}"})
            added += len(self.msgs[-1]["content"])
        self.usage.inserted_tokens += -(-added // CHARS_PER_TOKEN)

    def _result(self, call: ToolCall, content: str, error: bool, duration: float, sources: list) -> ToolResult:
        content, truncated = _truncate(content, self.opt.max_tool_output_tokens)
        result = ToolResult(call.id, call.name, content, len(self.results) + 1, error, truncated, duration, sources)
        self.results.append(result)
        self._result_texts.append(" ".join(content.split()))
        return result

    def _in_a_result(self, text: str) -> bool:
        """Does `text` occur in a tool result of this answer? (A call copied out of a document.)"""
        probe = " ".join(text.split())
        return bool(probe) and any(probe in norm for norm in self._result_texts)


def _repeats(calls: list[ToolCall], call: ToolCall) -> int:
    """How many calls right before this one were the same call."""
    key = (call.name, json.dumps(call.arguments, sort_keys=True))
    n = 0
    for previous in reversed(calls):
        if (previous.name, json.dumps(previous.arguments, sort_keys=True)) != key:
            break
        n += 1
    return n


def _truncate(content: str, budget_tokens: int) -> tuple[str, bool]:
    """Cut a result to about `budget_tokens` (four characters a token: no tokenizer here)."""
    if len(content) <= budget_tokens * CHARS_PER_TOKEN:
        return content, False
    text = content[: max(0, budget_tokens - 24) * CHARS_PER_TOKEN]
    return f"{text}\n[... truncated by tooltoken: showing {len(text)} of {len(content)} characters]", True


def _error_text(exc: Any) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message is None:
            message = body.get("detail", body)
        return (message if isinstance(message, str) else json.dumps(message))[:500]
    return str(body or exc.message)[:500]


# -- chunks -----------------------------------------------------------------------------------
def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _read_chunk(chunk: Any) -> tuple[str, list[dict[str, Any]], str | None, Any]:
    """(text, tool-call deltas, finish_reason, usage) of one chunk; ValueError if misshapen."""
    choices = _get(chunk, "choices") or []
    if not isinstance(choices, list):
        raise ValueError(f"'choices' is {type(choices).__name__}, not a list")
    text, deltas, finish = "", [], None
    for choice in choices[:1]:
        delta = _get(choice, "delta") or {}
        content = _get(delta, "content")
        if content is not None and not isinstance(content, str):
            raise ValueError(f"'content' is {type(content).__name__}, not a string")
        text = content or ""
        finish = _get(choice, "finish_reason")
        tool_calls = _get(delta, "tool_calls")
        legacy = _get(delta, "function_call")
        if tool_calls is None and legacy is not None:  # the pre-tools field: one call
            tool_calls = [{"index": 0, "function": legacy}]
        if tool_calls is not None and not isinstance(tool_calls, list):
            raise ValueError(f"'tool_calls' is {type(tool_calls).__name__}, not a list")
        for tc in tool_calls or []:
            fn = _get(tc, "function") or {}
            arguments = _get(fn, "arguments")
            if arguments is not None and not isinstance(arguments, str):
                arguments = json.dumps(arguments)  # some servers send the object itself
            index = _get(tc, "index")
            deltas.append({"index": index if isinstance(index, int) else None, "id": _get(tc, "id") or "",
                           "name": _get(fn, "name") or "", "arguments": arguments or ""})
    return text, deltas, finish, _get(chunk, "usage")


def _merge(calls: list[dict[str, str]], delta: dict[str, Any]) -> None:
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
