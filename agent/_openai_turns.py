"""The turn, message by message, on an OpenAI-compatible server (the message-level side of the
`Turns` seam; the server itself is `OpenAIBackend`, _openai.py).

    messages ──chat.completions (stream, tools)──▶ text deltas ─▶ answer text
                                                  tool-call deltas, assembled by index
                                                  (or a call written as text ─▶ parsed here)
        ──▶ the calls read ─▶ (the loop runs them) ─▶ assistant message + one "tool" message
        per result, each labelled [n] (or, with tools declared in the prompt, one user turn of
        `<tool_response>` blocks and the nudge) ──▶ the next request

Failures are `Stop`s, never exceptions out of the answer: see the module docstring of _openai.py
for what is retried and what ends the answer.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Generator

from tooltoken.tools import Tool

from ._events import Event, Usage
from ._families import Call, detect_format, read_call, trigger_pattern
from ._loop import Answer, Stop, Turn
from ._openai import (BACKEND_ERROR, CHARS_PER_TOKEN, SAMPLING_EXTRA, SAMPLING_FIELDS, SERVER_TEMPLATE, OpenAIBackend,
                      error_text, merge_delta, read_chunk, value_of)
from ._options import Options
from ._textcalls import TextCallScanner, parse_text_call

__all__ = ["OpenAITurns"]


class _Retry(Exception):
    """A failure worth another attempt (if no text of the turn was shown yet)."""


class _Again(Exception):
    """The request was adapted to what the server accepts: send it again at once."""


@dataclass
class _Reply:
    text: str = ""  # answer text shown in this turn
    calls: list[dict[str, str]] = field(default_factory=list)  # native: id, name, arguments
    text_call: str | None = None  # a call written as text
    finish: str | None = None
    completion_chars: int = 0
    usage: Any = None


class OpenAITurns:
    """One answer's conversation with a chat-completions server."""

    def __init__(self, backend: OpenAIBackend, tools: list[Tool], options: Options,
                 messages: list[dict[str, Any]], prompt_tools: bool = False) -> None:
        """`messages` start with the system message; `prompt_tools`: the tools are already declared
        in it (the `generic` family), so `tools` is not sent."""
        self.b, self.opt = backend, options
        self.msgs = [dict(m) for m in messages]
        self.tools = {t.name: t for t in tools}
        tools_on = bool(tools) and options.tool_choice != "none"
        self.native = tools_on and backend.native_tools and not prompt_tools
        self.trigger = trigger_pattern(list(self.tools))
        self.family = detect_format(SERVER_TEMPLATE, override="generic")  # results as text, when not native
        self.usage = Usage()
        self._completion_tokens_est = 0
        self._reported_usage = False
        self._sent: list[dict[str, Any]] = []
        self._pending: tuple[str, list[Call], list[str], list[str]] | None = None  # text, calls, server ids, raws
        self.a: Answer = None  # type: ignore[assignment]  # set by the first turn
        if tools_on and not self.native and not prompt_tools:  # this server rejected tools before
            self._declare_tools()

    # -- the seam ------------------------------------------------------------------------------
    def turn(self, a: Answer, step: str) -> Generator[Event, None, Turn]:
        if self.a is None:
            self.a = a
            a.timings.update(requests=0, retries=0)
        reply = yield from self._turn(step)
        allowed = [self.tools[step]] if step in self.tools else list(self.tools.values())
        wanted = []
        for c in reply.calls:
            args = c["arguments"].strip() or "{}"
            raw = f'{{"name": {json.dumps(c["name"])}, "arguments": {args}}}'
            wanted.append((c["id"], {"name": c["name"], "arguments": args}, raw))
        if reply.text_call is not None:
            wanted.append(("", parse_text_call(reply.text_call, self.tools), reply.text_call))
        calls = []
        for _, parsed, raw in wanted:
            if parsed is None:
                calls.append(Call(None, {}, f"could not read the tool call {raw.strip()[:200]!r}: write one JSON "
                                            'object with "name" and "arguments"'))
            else:
                calls.append(a.stated(read_call(parsed, "arguments", self.tools, allowed)))
        ids = [f"call_{len(a.calls) + k + 1}" for k in range(len(calls))]
        raws = [raw for *_, raw in wanted]
        self._pending = (reply.text, calls, [sid for sid, *_ in wanted], raws) if calls else None
        return Turn(calls, ids, raws, finish=reply.finish or "stop")

    def given(self, a: Answer, calls: list[Call]) -> Turn:
        """`calls` as the assistant's own tool calls, written with their results by `insert`."""
        if self.a is None:
            self.a = a
            a.timings.update(requests=0, retries=0)
        ids = [f"call_{len(a.calls) + k + 1}" for k in range(len(calls))]
        raws = [json.dumps({"name": c.name, "arguments": c.arguments}, ensure_ascii=False) for c in calls]
        self._pending = ("", list(calls), [""] * len(calls), raws)
        return Turn(list(calls), ids, raws)

    def take_back(self, note: str | None) -> None:
        self._pending = None

    def fit(self, contents: list[str]) -> list[tuple[str, bool]]:
        return [_truncate(c, self.opt.max_tool_output_tokens) for c in contents]

    def insert(self, items: list[tuple[str, str, str]], nudge: str, always: bool = False) -> None:
        assert self._pending is not None, "insert() follows a turn with calls"
        text, calls, sids, raws = self._pending
        self._pending = None
        sids = [sid or our for sid, (_, _, our) in zip(sids, items)]
        self._write_calls(text, calls, sids, raws)
        self._write_results(items, sids, nudge, always)

    def finish(self, usage: Usage) -> str | None:
        if not self._reported_usage:
            self.usage.completion_tokens = self._completion_tokens_est
        for name in ("prompt_tokens", "completion_tokens", "prompt_tokens_evaluated", "tokens_reused",
                     "inserted_tokens", "call_tokens"):
            setattr(usage, name, getattr(self.usage, name))
        return json.dumps(self._sent, ensure_ascii=False, indent=1)

    # -- one request, with retries -----------------------------------------------------------
    def _turn(self, step: str) -> Generator[Event, None, _Reply]:
        attempt = 0
        while True:
            shown = len(self.a.answer)
            try:
                return (yield from self._request(step))
            except _Again:
                continue
            except _Retry as exc:
                if len(self.a.answer) > shown:  # text is out: a retry would show it twice
                    raise Stop(BACKEND_ERROR, f"the stream from {self.b.base_url} broke: {exc}") from None
                if attempt >= self.b.max_retries:
                    tries = f"{attempt + 1} attempt" + ("s" if attempt else "")
                    raise Stop(BACKEND_ERROR, f"{self.b.base_url} failed: {exc} (gave up after {tries})") from None
                attempt += 1
                self.a.timings["retries"] += 1
                delay = min(8.0, self.b.backoff * 2 ** (attempt - 1))
                if self.opt.max_time_s is not None and time.perf_counter() - self.a.t0 + delay > self.opt.max_time_s:
                    raise Stop("timeout", f"the answer took longer than {self.opt.max_time_s:g} s ({exc})") from None
                if self.a.cancel.wait(delay):
                    raise Stop("cancelled", "stopped by the caller") from None

    def _body(self, step: str) -> dict[str, Any]:
        messages = self.msgs
        body: dict[str, Any] = {"model": self.b.model, "stream": True}
        body.update({k: getattr(self.b, k) for k in SAMPLING_FIELDS if getattr(self.b, k) is not None})
        left = self.opt.max_tokens - self._used_tokens()
        if left <= 0:
            raise Stop("length", f"max_tokens ({self.opt.max_tokens}) reached")
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

    def _request(self, step: str) -> Generator[Event, None, _Reply]:
        self.a.check_limits()
        body = self._body(step)
        self._sent = body["messages"]
        self.a.timings["requests"] += 1
        timeout = self.b.timeout
        if self.opt.max_time_s is not None:
            timeout = max(0.05, min(timeout, self.opt.max_time_s - (time.perf_counter() - self.a.t0)))
        oa = self.b._openai
        try:
            stream = self.b.client.chat.completions.create(**body, timeout=timeout)
        except oa.APIStatusError as exc:
            raise self._status_error(exc, body) from None
        except (oa.APITimeoutError, oa.APIConnectionError) as exc:
            raise self._transport_error(exc, timeout) from None
        turn = _Reply()
        # calls written as text: caught when free, and always in the prompt-based form
        scanning = bool(self.tools) and step != "none" and (step == "auto" or not self.native)
        scanner = TextCallScanner(self.trigger, self.a.in_a_result, self.opt.max_call_tokens * CHARS_PER_TOKEN)
        try:
            for chunk in stream:
                self.a.check_limits()
                content, deltas, finish, usage = read_chunk(chunk)
                turn.usage = usage or turn.usage  # some servers repeat running totals: keep the last
                for delta in deltas:
                    merge_delta(turn.calls, delta)
                    turn.completion_chars += len(delta.get("arguments") or "")
                if finish:
                    turn.finish = finish
                if not content:
                    continue
                turn.completion_chars += len(content)
                shown = scanner.feed(content) if scanning else content
                turn.text += shown
                yield from self.a.emit(shown)
                if scanner.call is not None:  # the call is complete: nothing after it matters
                    break
            else:
                if scanning:
                    tail = scanner.end()
                    turn.text += tail
                    yield from self.a.emit(tail)
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
        self.a.warnings += scanner.warnings
        self._count_usage(turn.usage)
        turn.text_call = scanner.call
        self._completion_tokens_est += -(-turn.completion_chars // CHARS_PER_TOKEN)
        return turn

    def _count_usage(self, usage: Any) -> None:
        if not usage:
            return
        prompt, completion = value_of(usage, "prompt_tokens") or 0, value_of(usage, "completion_tokens") or 0
        cached = value_of(value_of(usage, "prompt_tokens_details"), "cached_tokens") or 0
        if not self._reported_usage:
            self._reported_usage = True
            self.usage.prompt_tokens = int(prompt)
        self.usage.completion_tokens += int(completion)
        self.usage.prompt_tokens_evaluated += int(prompt) - int(cached)
        self.usage.tokens_reused += int(cached)

    # -- errors ------------------------------------------------------------------------------
    def _transport_error(self, exc: Exception, timeout: float) -> Exception:
        self.a.check_limits()  # the answer's own time budget ran out: that is "timeout", not a failure
        if isinstance(exc, self.b._openai.APITimeoutError):
            return _Retry(f"no answer within {timeout:g} s (request timed out)")
        cause = exc.__cause__ or exc.__context__
        return _Retry(f"could not connect ({cause or exc})")

    def _status_error(self, exc: Any, body: dict[str, Any]) -> Exception:
        status = exc.status_code
        said = error_text(exc)
        what = f"HTTP {status}: {said}"
        if status in (408, 409, 429) or status >= 500:
            return _Retry(what)
        low = said.lower()
        if status in (400, 413, 422):
            if re.search(r"context (length|window|size)|too many tokens|exceeds? (the )?context|prompt is too long", low):
                return Stop("context", f"the server's context window is full ({what})")
            if "tools" in body and re.search(r"tool|function", low):
                self.b.native_tools = self.native = False
                self._declare_tools()
                self.a.warnings.append(f"the server rejected tools ({what}); they are declared in the prompt instead")
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
                self.a.warnings.append(f"the server refused {', '.join(refused)} ({what}); it samples with its own")
                return _Again()
        return Stop(BACKEND_ERROR, f"{self.b.base_url} refused the request: {what}")

    def _declare_tools(self) -> None:
        """Prompt-based tools: the declarations of the `generic` format, in the system message."""
        fmt = detect_format(SERVER_TEMPLATE, override="generic")
        system = dict(self.msgs[0])
        system["content"] = (system.get("content") or "") + fmt.system_text(list(self.tools.values()))
        self.msgs[0] = system

    # -- writing calls and results -------------------------------------------------------------
    def _write_calls(self, text: str, calls: list[Call], sids: list[str], raws: list[str]) -> None:
        if self.native:
            tool_calls = [
                {"id": sid, "type": "function",
                 "function": {"name": call.name or "unreadable_call",
                              "arguments": json.dumps(call.arguments, ensure_ascii=False)}}
                for call, sid in zip(calls, sids)
            ]
            # content "" rather than None: many chat templates concatenate it as a string
            self.msgs.append({"role": "assistant", "content": text, "tool_calls": tool_calls})
            written = sum(len(t["function"]["arguments"]) + len(t["function"]["name"]) for t in tool_calls)
        else:  # the generic family: the call in canonical form, as text
            blocks = []
            for call, raw in zip(calls, raws):
                body = "".join(p.text for p in self.family.canonical([call], [""])) if call.name in self.tools else raw
                blocks.append(f"{self.family.call_open}{body}{self.family.call_close}")
            self.msgs.append({"role": "assistant", "content": text + "\n".join(blocks)})
            written = sum(map(len, blocks))
        self.usage.call_tokens += -(-written // CHARS_PER_TOKEN)
        self.usage.inserted_tokens += -(-written // CHARS_PER_TOKEN)

    def _write_results(self, items: list[tuple[str, str, str]], sids: list[str], nudge: str, always: bool) -> None:
        if self.native:
            for (label, content, _), sid in zip(items, sids):
                self.msgs.append({"role": "tool", "tool_call_id": sid, "content": f"{label}\n{content}"})
            added = sum(len(label) + 1 + len(content) for label, content, _ in items)
            if always and nudge:  # said by the user after the results
                self.msgs.append({"role": "user", "content": nudge})
                added += len(nudge)
        else:  # the generic family's result turn, with its nudge
            self.msgs.append({"role": "user", "content": self.family.result_text(items, nudge, always)})
            added = len(self.msgs[-1]["content"])
        self.usage.inserted_tokens += -(-added // CHARS_PER_TOKEN)


def _truncate(content: str, budget_tokens: int) -> tuple[str, bool]:
    """Cut a result to about `budget_tokens` (four characters a token: no tokenizer here)."""
    if len(content) <= budget_tokens * CHARS_PER_TOKEN:
        return content, False
    text = content[: max(0, budget_tokens - 24) * CHARS_PER_TOKEN]
    return f"{text}\n[... truncated by tooltoken: showing {len(text)} of {len(content)} characters]", True
