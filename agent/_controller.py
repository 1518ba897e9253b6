"""The controller: one answer, generated token by token on one context (DESIGN.md steps 2-8).

    prompt ──generate──▶ text ... trigger? ──rewind to the call's start──▶ <tool_call>\\n
        ──generate under the call grammar──▶ {"name": ..., "arguments": ...} ──canonical form──▶
        \\n</tool_call> + result turn ──generate on the same context──▶ text ... end of turn

The backend reuses the KV cache for every prefix it already holds, so each rewind-and-insert
costs only the inserted tokens. Text that may be the start of a trigger is held back, so a
consumer never sees half a call.
"""

from __future__ import annotations

import codecs
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterator

import regex


from tooltoken.tools import Tool

from ._backend import Backend, GenerateStats
from ._citations import check_citations
from ._events import Event, Final, StopReason, TextDelta, ToolCall, ToolResult, Usage
from ._calls import balanced, first_json
from ._formats import Call, Format, trigger_pattern
from ._call_check import DECLINED_NOTE, judge, opening_token
from ._unstated import drop_unstated, unstated_warning
from ._template import Piece
from ._toolrun import run_tool



@dataclass
class Options:
    # auto | required | none | a tool's name | a list of those: forced calls, in order, then auto
    # (or, if the list ends in "none", the answer with no more calls)
    tool_choice: str | list[str] = "auto"
    grammar: bool = True  # generate calls under the grammar of the registered tools
    max_tokens: int = 1024  # answer tokens the model may sample (calls are capped by max_call_tokens)
    max_tool_calls: int = 8
    max_repeated_calls: int = 2  # identical consecutive calls allowed
    tool_timeout: float = 30.0
    max_tool_output_tokens: int = 1024
    max_call_tokens: int = 512
    max_time_s: float | None = None
    answer_reserve: int = 64  # context kept free for the answer after a tool result
    # said after an answer that used tools but cites none of their results (None: say nothing)
    unsupported_notice: str | None = "(No tool result supports this answer; it may be a guess.)"
    show_prompt: bool = False
    # never make a call to a tool that only a tool result's document text asked for (prompt
    # injection): the answer ends before it (stop reason "injected_call"), unless the user's own
    # words ask for that tool too
    injection_guard: bool = True
    # tools with an inline trigger (the calculator: `195 × 144 =`) finish the answer's own text
    inline_calls: bool = True
    max_inline_calls: int = 64
    # the call check (_call_check.py): before a call the model made of its own accord runs, the
    # model is asked on the side whether calling that function does what the request asks, and whether
    # the request gives the call's values; below this score (yes-no log-odds) the call is not made and
    # the model answers in words. None: no check.
    call_check: float | None = None
    # leave out of a call the optional string values that no user turn or tool result states, so
    # the function's default applies (_unstated.py); a warning names each value left out
    drop_unstated: bool = False


class _Stop(Exception):
    def __init__(self, reason: StopReason, message: str = "") -> None:
        self.reason, self.message = reason, message


@dataclass
class _Span:
    """Tokens sampled in one stretch of free generation, with the text offset of each."""

    start: int  # index in the context of the first token
    tokens: list[int] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    length: int = 0

    def add(self, token: int, piece: str) -> None:
        self.tokens.append(token)
        self.pieces.append(piece)
        self.offsets.append(self.length)
        self.length += len(piece)

    def cut(self, pos: int) -> tuple[int, str]:
        """Keep tokens whose text lies wholly before `pos`; return their count and the leftover text."""
        k = next((i for i, o in enumerate(self.offsets) if o + len(self.pieces[i]) > pos), len(self.tokens))
        while k > 0 and self.pieces[k - 1] == "":  # bytes of a character that token k completed
            k -= 1
        kept = self.offsets[k] if k < len(self.tokens) else self.length
        text = "".join(self.pieces)
        return k, text[kept:pos]


class Controller:
    def __init__(self, backend: Backend, fmt: Format, tools: list[Tool], options: Options,
                 cancel: threading.Event | None = None, inline: list[Tool] | None = None, given: str = "") -> None:
        self.b, self.fmt, self.opt = backend, fmt, options
        self.given = given  # the user's own system prompt (trusted text, so not in _asked)
        self.tools = {t.name: t for t in tools}
        self.cancel = cancel or threading.Event()
        self.trigger = trigger_pattern(list(self.tools), fmt.extra_triggers, fmt.pythonic)
        on = options.inline_calls and options.tool_choice != "none"
        self.inline = [t for t in [*tools, *(inline or [])] if t.inline is not None] if on else []
        self.usage = Usage()
        self.stats = GenerateStats()
        self.calls: list[ToolCall] = []
        self.results: list[ToolResult] = []
        self.answer: list[str] = []
        self.warnings: list[str] = []
        self._result_texts: list[str] = []  # tool results, whitespace-normalised
        self._tainted: dict[str, int] = {}  # tool name -> the result whose document asked for it
        self._asked = ""  # the user's words (untrusted prompt text), lower-cased
        self._request = ""
        self.ctx: list[int] = []
        self.t0 = time.perf_counter()
        self.timings: dict[str, float] = {"tools_s": 0.0}
        self._trigger_time: float | None = None
        self._text_tokens = 0  # answer tokens sampled, calls not counted
        self._call_prefix = ""  # call text already sampled when a pythonic call was caught
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._declined = False  # the call check took a call back: the answer ends at any other call
        self._ban: list[int] = []  # tokens not to sample then: the call's opening, if one token

    # -- tokens ------------------------------------------------------------------------------
    def encode(self, pieces: list[Piece]) -> list[int]:
        out: list[int] = []
        for p in pieces:
            out += self.b.tokenize(p.text, special=p.trusted)
        return out

    def _piece(self, token: int) -> str:
        return self._decoder.decode(self.b.detokenize([token]))

    def _check_limits(self, in_call: bool = False) -> None:
        if self.cancel.is_set():
            raise _Stop("cancelled", "stopped by the caller")
        if len(self.ctx) >= self.b.n_ctx - 1:
            raise _Stop("context", f"the context window ({self.b.n_ctx} tokens) is full")
        if not in_call and self._text_tokens >= self.opt.max_tokens:  # calls have max_call_tokens
            raise _Stop("length", f"max_tokens ({self.opt.max_tokens}) reached")
        if self.opt.max_time_s is not None and time.perf_counter() - self.t0 > self.opt.max_time_s:
            raise _Stop("timeout", f"the answer took longer than {self.opt.max_time_s:g} s")

    # -- the loop ----------------------------------------------------------------------------
    def run(self, prompt: list[Piece]) -> Iterator[Event]:
        self._asked = " ".join(p.text for p in prompt if not p.trusted).lower()
        self._request = next((p.text for p in reversed(prompt) if not p.trusted), "")  # the latest user words
        self.ctx = self.encode(prompt)
        if self.b.add_bos and not (self.b.bos_text and prompt and prompt[0].text.startswith(self.b.bos_text)):
            self.ctx = self.b.tokenize(self.b.bos_text, special=True) + self.ctx
        self.usage.prompt_tokens = len(self.ctx)
        reason: StopReason = "stop"
        message = ""
        try:
            if len(self.ctx) + self.opt.answer_reserve > self.b.n_ctx:
                raise _Stop("context", f"the prompt has {len(self.ctx)} tokens; the context holds {self.b.n_ctx}")
            choice = self.opt.tool_choice
            plan = [] if choice in ("auto", "none") else [choice] if isinstance(choice, str) else list(choice)
            unknown = [c for c in plan if c not in ("required", "none") and c not in self.tools]
            if unknown:
                raise _Stop("bad_call", f"tool_choice names no registered tool: {', '.join(map(repr, unknown))}")
            free = bool(self.tools) and choice != "none"
            while True:
                if plan and self.tools:
                    step = plan.pop(0)
                    if step == "none":  # a plan ending in "none": answer now, no more calls
                        free, plan = False, []
                        continue
                    yield from self._call(list(self.tools.values()) if step == "required" else [self.tools[step]])
                    continue
                match = yield from self._free(free)
                if match is None:
                    break
                if match is _INLINE:  # a tool finished the answer's own text; go on from there
                    continue
                if self._declined:  # told to answer without tools, it began another call: end here
                    self.warnings.append("after its call was not made the model began another; the answer ends there")
                    break
                named = match.groupdict().get("name") or match.groupdict().get("fname")
                invented = named if named and named not in self.tools else None
                yield from self._call(list(self.tools.values()), invented, pythonic=bool(match.groupdict().get("py")),
                                      free=True)
        except _Stop as stop:
            reason, message = stop.reason, stop.message
        self.usage.prompt_tokens_evaluated = self.stats.evaluated
        self.usage.tokens_reused = self.stats.reused
        self.usage.tool_calls = len(self.calls)
        self.timings["total_s"] = time.perf_counter() - self.t0
        citations = check_citations("".join(self.answer), self.calls, self.results)
        if (
            reason == "stop"
            and self.results
            and self.opt.unsupported_notice
            and not any(c.verified for c in citations)
        ):  # tools were asked and nothing they returned is cited: say so rather than let it pass
            yield from self._emit(f"\n\n{self.opt.unsupported_notice}")
        answer = "".join(self.answer)
        yield Final(
            answer=answer,
            stop_reason=reason,
            citations=citations,
            tool_calls=self.calls,
            tool_results=self.results,
            usage=self.usage,
            timings=self.timings,
            message=message,
            warnings=self.warnings,
            prompt=self.b.detokenize(self.ctx).decode("utf-8", "replace") if self.opt.show_prompt else None,
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

    def _free(self, triggers: bool) -> Iterator[Event]:
        """Generate until the end of turn (returns None) or a trigger: then rewind to where the call
        began and return the tool name the model had written ("" if none yet)."""
        span = _Span(start=len(self.ctx))
        pending, held_from = "", 0  # held text and its offset in the span
        self._check_limits()
        more = {"ban": self._ban} if self._ban else {}
        gen = self.b.generate(list(self.ctx), grammar=None, stats=self.stats, **more)
        trigger_at, match = None, None
        inline = None  # (tool, arguments, text) of an inline call the text ends with
        suspect = None  # a trigger match that also occurs in a tool result
        fake = 0  # length of a `<tool_response>` tag the model wrote itself (0: none)
        try:
            for token in gen:
                if self.b.is_eog(token):
                    break
                self.ctx.append(token)
                self.usage.completion_tokens += 1
                self._text_tokens += 1
                piece = self._piece(token)
                span.add(token, piece)
                pending += piece
                if triggers and suspect is not None:
                    # a trigger that a tool result also contains: is the model copying it?
                    copying = self._in_a_result(pending)
                    if not copying:  # it wrote its own call after all
                        trigger_at, match = held_from, suspect
                        break
                    if len(pending) >= 400 or balanced(pending, "{", "}") or balanced(pending, "(", ")"):
                        self.warnings.append(f"a tool call copied from a tool result was left as text: {pending!r}")
                        yield from self._emit(pending)
                        held_from += len(pending)
                        pending, suspect = "", None
                elif triggers:
                    m = self.trigger.search(pending, partial=True)
                    cut = m.start() if m else len(pending)
                    yield from self._emit(pending[:cut])
                    held_from += cut
                    pending = pending[cut:]
                    if m and not m.partial and m.group("fake"):
                        fake = len(m.group(0))  # a tool result it writes itself, or a call in that tag?
                    if fake:
                        call = _CALL_IN_RESULT.match(pending[fake:], partial=True)
                        if call is None:  # it is making up a tool result
                            self.warnings.append("the model began writing a tool result itself; its turn was ended there")
                            pending = ""
                            break
                        if not call.partial:  # Qwen2.5-Coder writes calls as <tool_response>{"function": ...}
                            trigger_at, match = held_from, call
                            break
                    elif m and not m.partial and self._in_a_result(m.group(0)):
                        suspect = m  # decide when the copy ends or departs from the result
                    elif m and not m.partial:
                        trigger_at, match = held_from, m
                        break
                else:
                    yield from self._emit(pending)
                    held_from += len(pending)
                    pending = ""
                # a fence is held as a possible ```json call; if it closes a calculator program, it was text
                if self.inline and pending.strip() in ("", "```") and piece.rstrip(" \n")[-1:] in ("=", "`"):
                    inline = self._inline_hit(pending)
                    if inline is not None:
                        yield from self._emit(pending)
                        held_from += len(pending)
                        pending = ""
                        break
                self._check_limits()
        except _Stop:
            yield from self._emit(pending)  # held text was text after all
            raise
        finally:
            gen.close()
        if inline is not None:
            yield from self._inline_call(*inline)
            return _INLINE
        if trigger_at is None:
            yield from self._emit(pending + self._decoder.decode(b"", final=True))
            return None
        if len(self.calls) >= self.opt.max_tool_calls:
            raise _Stop("max_tool_calls", f"more than {self.opt.max_tool_calls} tool calls in one answer")
        self._call_prefix = ""
        if match.groupdict().get("py"):  # Llama 3.2's list is its canonical form: keep it, go on
            self._call_prefix = pending
            return match
        keep, leftover = span.cut(trigger_at)
        del self.ctx[span.start + keep :]
        if leftover:
            self.ctx += self.b.tokenize(leftover, special=False)
        return match

    def _inline_hit(self, held: str) -> tuple[Tool, dict[str, Any], str] | None:
        if self.usage.inline_calls >= self.opt.max_inline_calls:
            return None
        tail = ("".join(self.answer) + held)[-_INLINE_TAIL:]
        for tool in self.inline:
            try:
                hit = tool.inline(tail)  # type: ignore[misc]
            except Exception as exc:  # noqa: BLE001 -- a user's inline trigger failing is a warning, not a lost answer
                self.warnings.append(f"{tool.name}'s inline trigger failed: {type(exc).__name__}: {exc}")
                self.inline.remove(tool)
                return None
            if hit is not None:
                return tool, hit[0], hit[1]
        return None

    def _inline_call(self, tool: Tool, arguments: dict[str, Any], text: str) -> Iterator[Event]:
        """Write an inline tool's text as the answer's next words (Toolformer's `→ result`): no
        call turn, no result turn, nothing to cite; the model goes on from the new text."""
        self.usage.inline_calls += 1
        call = ToolCall(f"inline_{self.usage.inline_calls}", tool.name, arguments, inline=True)
        yield call
        tokens = self.b.tokenize(text, special=False)
        self.ctx += tokens
        self.usage.inserted_tokens += len(tokens)
        yield ToolResult(call.id, tool.name, text.strip(), 0)
        yield from self._emit(text)

    def _in_a_result(self, text: str) -> bool:
        """Does `text` (whitespace aside) occur in a tool result of this answer? A model that
        copies a call out of a document is following the document, not the user."""
        probe = " ".join(text.split())
        return bool(probe) and any(probe in norm for norm in self._result_texts)

    def _call(self, allowed: list[Tool], invented: str | None = None, pythonic: bool = False,
              free: bool = False) -> Iterator[Event]:
        """Write the call turn at the end of the context, run its calls, insert their results.

        The call is generated under the grammar of `allowed` after the family's opening, then
        rewritten in canonical form. `invented`: the model already named a tool that does not
        exist; that call is written as meant and answered with the real tools' names, rather
        than forced onto one. `pythonic`: Llama 3.2's `[f(a=1), g(b=2)]`, read with `ast`. `free`:
        the model chose to call (no tool_choice forced it), so the call check may drop it.
        Where the family allows it, the model may open further calls in the same turn (parallel
        calls): they are all written first, then run together.
        """
        start = len(self.ctx)
        calls, texts = self._write_call(allowed, invented, pythonic)
        while (
            self.fmt.call_sep is not None
            and not pythonic
            and invented is None
            and all(c.problem is None for c in calls)
            and len(self.calls) + len(calls) < self.opt.max_tool_calls
            and self._another_call()
        ):
            sep = self.b.tokenize(self.fmt.call_sep, special=True)
            self.ctx += sep
            self.usage.inserted_tokens += len(sep)
            more, more_texts = self._write_call(allowed, None, False, first_id=len(self.calls) + len(calls) + 1)
            calls, texts = calls + more, texts + more_texts
        check = None
        if free and self.opt.call_check is not None:
            names = " and ".join(str(c.name) for c in calls)
            unknown = [str(c.name) for c in calls if c.name is not None and c.name not in self.tools]
            if unknown:  # a tool that does not exist cannot be what the request needs
                why = f"{', '.join(unknown)} is not a tool here"
            elif all(c.problem is None for c in calls):
                check = judge(self.b, self.tools, self._request, calls)
                why = (f"asked whether it is what the request needs, with values the request gives, the model "
                       f"judged not (yes-no log-odds {check:.2f} < {self.opt.call_check:g})"
                       ) if check is not None and check < self.opt.call_check else ""
            else:
                why = ""  # a malformed call: its error goes back to the model as usual
            if why:  # take the call back; ask, as the nudge after a result does, for an answer in words
                del self.ctx[start:]
                if self.fmt.assistant_to_user and self.fmt.user_to_assistant:
                    self.ctx += self.encode([Piece(self.fmt.assistant_to_user, True),
                                             Piece(DECLINED_NOTE.format(names=names), True),
                                             Piece(self.fmt.user_to_assistant, True)])
                self._declined, self._ban = True, opening_token(self.b, self.fmt.call_open)
                self.warnings.append(f"the model's {names} call was not made: {why}; it answers without tools")
                return
        injected = [c.name for c in calls if c.name in self._tainted]
        if injected:  # only a document asked for this tool: the call is not made, the answer ends
            del self.ctx[start:]
            n = self._tainted[injected[0]]
            message = (f"the model began a {injected[0]} call that only the text of result [{n}] asked for; "
                       "the call was not made and the answer ended there")
            self.warnings.append(message)
            raise _Stop("injected_call", message)
        ids = [self.fmt.call_id(len(self.calls) + k + 1) for k in range(len(calls))]
        events = [ToolCall(i, c.name or "", c.arguments, raw=t, check=check) for c, i, t in zip(calls, ids, texts)]
        repeats = [self._repeats(c, events[:k]) if c.problem is None else 1 for k, c in enumerate(calls)]
        worst = max(range(len(calls)), key=lambda k: repeats[k])
        if repeats[worst] > self.opt.max_repeated_calls:
            raise _Stop("repeated_call",
                        f"{calls[worst].name} called {repeats[worst]} times in a row with the same arguments")
        self.calls += events
        self._trigger_time = time.perf_counter()  # the call is written: from here on it is our cost
        yield from events
        outcomes = self._run_all(calls, repeats)
        results = self._insert(events, outcomes)
        yield from results

    def _write_call(self, allowed: list[Tool], invented: str | None, pythonic: bool,
                    first_id: int | None = None) -> tuple[list[Call], list[str]]:
        """Write one call (or one list of calls) in canonical form; return the calls read and the
        text the model wrote for each."""
        fmt = self.fmt
        open_tokens = [] if pythonic else self.b.tokenize(fmt.call_open, special=True)
        self.ctx += open_tokens
        self.usage.inserted_tokens += len(open_tokens)
        body_start = len(self.ctx)
        value: Any = None
        if invented is not None:
            value = {"name": invented, fmt.args_key: {}}
            text = json.dumps(value, ensure_ascii=False)
            self.ctx += self.b.tokenize(text, special=False)
            self.usage.inserted_tokens += len(self.ctx) - body_start
        else:
            schema = fmt.call_schema(allowed) if self.opt.grammar and not pythonic else None
            text, value = self._generate_call(schema, body_start, pythonic)
        calls = fmt.read(value, text, self.tools, allowed)
        if self.opt.drop_unstated:
            calls = [self._drop_unstated(c) for c in calls]
        first = first_id if first_id is not None else len(self.calls) + 1
        ids = [fmt.call_id(first + k) for k in range(len(calls))]
        if not pythonic and all(c.problem is None for c in calls):
            pieces = fmt.canonical(calls, ids)
            if "".join(p.text for p in pieces) != text.strip():
                del self.ctx[body_start:]
                self.ctx += self.encode(pieces)
            self.usage.inserted_tokens += len(self.ctx) - body_start
        close_tokens = self.b.tokenize("<|eot_id|>" if pythonic else fmt.call_close, special=True)
        self.ctx += close_tokens
        self.usage.inserted_tokens += len(close_tokens)
        self.usage.call_tokens += len(self.ctx) - body_start + len(open_tokens)
        return calls, [text] * len(calls)

    def _drop_unstated(self, call: Call) -> Call:
        tool = self.tools.get(str(call.name))
        if call.problem is not None or tool is None:
            return call
        source = " ".join([self.given, self._asked, *self._result_texts])
        arguments, dropped = drop_unstated(tool, call.arguments, source)
        if not dropped:
            return call
        self.warnings.append(unstated_warning(str(call.name), dropped))
        return Call(call.name, arguments)

    def _another_call(self) -> bool:
        """Right after a call: does the model open another call in the same turn? A few tokens
        are sampled to see (text that cannot start a call ends the look at once); the context is
        left as it was either way (the caller writes the opening in canonical form)."""
        mark, text, found = len(self.ctx), "", False
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        gen = self.b.generate(list(self.ctx), grammar=None, stats=self.stats)
        try:
            for k, token in enumerate(gen):
                if self.b.is_eog(token) or k >= 24:  # a fenced `{"name": ...` takes ~12 tokens
                    break
                self.ctx.append(token)
                text += decoder.decode(self.b.detokenize([token]))
                head = text.lstrip()
                if not head:
                    continue
                m = self.trigger.match(head, partial=True)
                if m is None or (not m.partial and m.group("fake")):
                    break
                if not m.partial:
                    found = True
                    break
        finally:
            gen.close()
            self.usage.completion_tokens += len(self.ctx) - mark
            del self.ctx[mark:]
        return found

    def _generate_call(self, schema: dict | None, body_start: int, pythonic: bool) -> tuple[str, Any]:
        """Sample the call body; return its text and its parsed JSON value (None if not JSON)."""
        text, decoder, value = "", codecs.getincrementaldecoder("utf-8")(errors="replace"), None
        if pythonic:  # the model is in the middle of writing it
            text, self._call_prefix = self._call_prefix, ""
            if balanced(text.lstrip()):
                return text, None
        gen = self.b.generate(list(self.ctx), grammar=schema, stats=self.stats, call=True)
        try:
            for token in gen:
                if self.b.is_eog(token):
                    break
                self.ctx.append(token)
                self.usage.completion_tokens += 1
                text += decoder.decode(self.b.detokenize([token]))
                stripped = text.lstrip()
                if pythonic:
                    if balanced(stripped):
                        break
                elif stripped[:1] and stripped[0] not in "{[" and self.fmt.name != "llama3":
                    break  # not a call after all; read() says so to the model
                elif stripped[-1:] in "}]":
                    value = first_json(stripped)
                    if value is not None:
                        break
                if len(self.ctx) - body_start >= self.opt.max_call_tokens:
                    break
                self._check_limits(in_call=True)
        finally:
            gen.close()
        return text, value

    def _repeats(self, call: Call, this_turn: list[ToolCall]) -> int:
        key = (call.name, json.dumps(call.arguments, sort_keys=True))
        repeats = 1
        for previous in reversed(self.calls + this_turn):
            if (previous.name, json.dumps(previous.arguments, sort_keys=True)) != key:
                break
            repeats += 1
        return repeats

    def _run_all(self, calls: list[Call], repeats: list[int]) -> list[tuple[str, bool, float, list]]:
        """(content, error, seconds, sources) per call; several calls run at once (bounded)."""

        def one(call: Call, repeats: int) -> tuple[str, bool, float, list]:
            if call.problem:
                return f"error: {call.problem}", True, 0.0, []
            if repeats > 1:  # don't run it again: point back at the result the model already has
                earlier = self.results[-1].source if self.results else 0
                return f"repeated call: the result of this exact call is [{earlier}] above. Answer from it now.", True, 0.0, []
            outcome = run_tool(self.tools[call.name], call.arguments, self.opt.tool_timeout)  # type: ignore[index]
            return outcome.output.content, outcome.error, outcome.duration_s, [s.__dict__ for s in outcome.sources]

        if len(calls) == 1:
            outcomes = [one(calls[0], repeats[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(4, len(calls))) as pool:
                outcomes = list(pool.map(one, calls, repeats))
        self.timings["tools_s"] += max(o[2] for o in outcomes)
        return outcomes

    def _insert(self, calls: list[ToolCall], outcomes: list[tuple[str, bool, float, list]]) -> list[ToolResult]:
        room = self.b.n_ctx - len(self.ctx) - self.opt.answer_reserve - 32 * len(calls)
        budget = min(self.opt.max_tool_output_tokens, room // max(1, len(calls)))
        if budget < 8:
            raise _Stop("context", f"no room left in the context ({self.b.n_ctx} tokens) for a tool result")
        results, items = [], []
        for call, (content, error, duration, sources) in zip(calls, outcomes):
            n = len(self.results) + len(results) + 1
            content, truncated = self._truncate(content, budget)
            label = f"[{n}] {call.name or 'tool'}" + (" (error)" if error else "")
            items.append((label, content, call.id))
            results.append(ToolResult(call.id, call.name, content, n, error, truncated, duration, sources))
        if len(results) == 1:
            n = results[0].source
            nudge = f"Use this result [{n}] to answer my question; cite it as [{n}]."
        else:
            marks = ", ".join(f"[{r.source}]" for r in results)
            nudge = f"Use these results {marks} to answer my question; cite each as its number."
        before = len(self.ctx)
        self.ctx += self.encode(self.fmt.result_pieces(items, nudge))
        self.usage.inserted_tokens += len(self.ctx) - before
        self.results += results
        self._result_texts += [" ".join(r.content.split()) for r in results]
        if self.opt.injection_guard:
            for r in results:
                self._taint(r)
        return results

    def _taint(self, result: ToolResult) -> None:
        """Note the tools that a result's document text tells the model to call."""
        texts = [s.get("text", "") for s in result.sources] or [result.content]
        for name in self.tools:
            if name in self._tainted or _asked_for(name, self._asked):
                continue
            if any(_call_request(name).search(t) for t in texts):
                self._tainted[name] = result.source

    def _truncate(self, content: str, budget: int) -> tuple[str, bool]:
        total = len(content)
        clipped = content[: budget * 8]  # no token is longer than this; spares tokenizing megabytes
        tokens = self.b.tokenize(clipped, special=False)
        if len(tokens) <= budget and len(clipped) == total:
            return content, False
        keep = max(0, budget - 24)
        text = self.b.detokenize(tokens[:keep]).decode("utf-8", "ignore")
        return f"{text}\n[... truncated by tooltoken: showing {len(text)} of {total} characters]", True


_INLINE_TAIL = 4000  # how much of the answer's end an inline trigger sees (a calculator program)
_INLINE: Any = object()  # what _free returns after an inline call: not a trigger, not the end

# a call written inside a `<tool_response>` tag the model opened itself
_CALL_IN_RESULT = regex.compile(r'\s*\{\s*"(?:name|function)"\s*:\s*"(?P<name>[^"\\\n]{0,64})"')


def _call_request(name: str) -> regex.Pattern[str]:
    """Text that asks for a call of `name`: `"name": "x"`, `x(`, `x.call(`, "call/use/run the x"."""
    n = regex.escape(name)
    return regex.compile(
        rf'"(?:name|function)"\s*:\s*"{n}"|\b{n}(?:\.call)?\s*\(|\b(?:call|use|run|invoke|execute|with)\s+(?:the\s+)?{n}\b',
        regex.I,
    )


def _asked_for(name: str, asked: str) -> bool:
    return bool(regex.search(rf"\b{regex.escape(name)}\b", asked, regex.I))
