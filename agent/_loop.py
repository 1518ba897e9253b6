"""The answer loop, written once for every backend (docs/design.md, "The answer loop").

    plan (tool_choice) ──▶ a turn: the model writes text, maybe calls ──▶ the calls read
        ──▶ limits: calls per answer, identical repeats, a call only a document asked for,
            the call check ──▶ run the tools (bounded, in parallel) ──▶ number the results [n]
        ──▶ insert them with a nudge ──▶ the next turn ... a turn without calls ──▶ Final

What differs between a model in this process and a model behind a server is the turn, and only
the turn: the `Turns` seam below. `LlamaTurns` (_llama_turns.py) generates token by token on one
llama.cpp context, catches triggers, writes calls under the grammar and inserts results on the
same KV cache; `OpenAITurns` (_openai_turns.py) sends messages to a chat-completions server.
Every rule about calls and results lives here, so a rule added once holds for both.

`Final` is always the last event: every limit ends in a `Stop` that becomes its stop reason.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Generator, Iterator, Protocol

import regex

from tooltoken.tools import Tool

from ._call_check import DECLINED_NOTE
from ._citations import check_citations
from ._events import Event, Final, StopReason, TextDelta, ToolCall, ToolResult, Usage
from ._families import Call
from ._options import Options
from ._support import supported
from ._support_check import claim_and_source, withdraw
from ._toolrun import run_tool
from ._unstated import drop_unstated, unstated_warning

__all__ = ["Answer", "Stop", "Turn", "Turns", "nudge"]

MAX_PARALLEL_TOOLS = 4


class Stop(Exception):
    """Ends the answer; `reason` becomes `Final.stop_reason`, `message` says why in words."""

    def __init__(self, reason: StopReason, message: str = "") -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


#: given what inline tools wrote into an answer, the events of a second look to add, or None
SecondLook = Callable[[list[str]], "Iterator[Event] | None"]


@dataclass
class Turn:
    """What one turn of the model produced: the calls it wrote, read (none: the answer is done)."""

    calls: list[Call] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # the id each call is written back with
    raws: list[str] = field(default_factory=list)  # what the model wrote for each
    began_call: bool = False  # it began a call the loop had said it may not make (see Answer.declined)
    finish: str = "stop"  # "length": the backend stopped it at max_tokens


class Turns(Protocol):
    """One answer's conversation on one backend: the step the loop repeats.

    `turn` streams the model's text through `answer.emit` (and yields inline tool events of its
    own) and returns the calls the model wrote; `given` writes calls the policy makes itself (the
    lookup path's first search), in the form the model's own calls take, and returns them. Calls
    are not in the conversation for good until `insert` writes their results after them, or
    `take_back` removes them. `fit` cuts results to
    what the context can hold (raising `Stop("context")` when nothing fits), `finish` completes
    the usage counts and returns the prompt text shown by `Options.show_prompt`."""

    def turn(self, answer: "Answer", step: str) -> Generator[Event, None, Turn]: ...

    def given(self, answer: "Answer", calls: list[Call]) -> Turn: ...

    def take_back(self, note: str | None) -> None: ...

    def fit(self, contents: list[str]) -> list[tuple[str, bool]]: ...

    def insert(self, items: list[tuple[str, str, str]], nudge: str, always: bool = False) -> None: ...

    def finish(self, usage: Usage) -> str | None: ...


# The call check: a function of (tools, request, calls) -> yes-no log-odds, or None where the
# backend cannot ask the model on the side (an OpenAI-compatible server).
Judge = Callable[[dict[str, Tool], str, list[Call]], "float | None"]
# The support check: (question, the answer's first claim, the cited source) -> yes-no log-odds.
Support = Callable[[str, str, dict[str, Any]], "float | None"]


def nudge(sources: list[int]) -> str:
    """Said after the results (where the family shows it): without it SmolLM2, never trained on
    tool turns, answers a result by writing the same call again."""
    if len(sources) == 1:
        return f"Use this result [{sources[0]}] to answer my question; cite it as [{sources[0]}]."
    marks = ", ".join(f"[{n}]" for n in sources)
    return f"Use these results {marks} to answer my question; cite each as its number."


class Answer:
    """One answer: the loop over turns, and everything the turns share (text, calls, results)."""

    def __init__(self, turns: Turns, tools: list[Tool], options: Options, *, cancel: threading.Event | None = None,
                 asked: str = "", request: str = "", given: str = "", judge: Judge | None = None,
                 support: Support | None = None, first: list[Call] | None = None, after_first: str = "",
                 shown: list[Call] | None = None, second_look: SecondLook | None = None) -> None:
        """`asked`: the user's words (every turn but the system prompt), for the injection guard and
        unstated values; `request`: the latest of them, for the call check; `given`: the user's own
        system prompt; `judge`: the call check, and `support`: the support check, where the backend
        has them; `first`: calls made before the model writes anything (the lookup path searches
        on the question first);
        `after_first`: said after their results in every chat template (the lookup path restates
        the question there, where a small model reads best); `shown`: the first calls as the
        context writes them, when they run with other arguments (the lookup path's query adds the
        model's closed-book guess, which the reader is not shown: it copied it); `second_look`:
        given what inline tools wrote, the events of more answer to add, or None (the math path
        works a result that cannot stand out again: agent/_policy.py `doubt`)."""
        self.first = list(first or [])
        self.shown = list(shown) if shown and len(shown) == len(self.first) else self.first
        self.after_first = after_first if self.first else ""
        self.turns, self.opt, self.judge, self.support = turns, options, judge, support
        self.second_look = second_look
        self.tools = {t.name: t for t in tools}
        self.cancel = cancel or threading.Event()
        self.asked, self.given = asked, given
        self.request = request
        self.usage = Usage()
        self.calls: list[ToolCall] = []
        self.results: list[ToolResult] = []
        self.answer: list[str] = []
        self.warnings: list[str] = []
        self.result_texts: list[str] = []  # tool results, whitespace-normalised
        self.inline_texts: list[str] = []  # what inline tools wrote into the answer (a program's output)
        self.declined = False  # the call check took a call back: the answer ends at any other call
        self._check: float | None = None  # the call check's score of the turn being handled
        self._tainted: dict[str, int] = {}  # tool name -> the result whose document asked for it
        self.t0 = time.perf_counter()
        self.timings: dict[str, float] = {"tools_s": 0.0}
        self._trigger_time: float | None = None
        self._echo: list[tuple[str, str]] = []  # (value run, value shown) of the first calls' arguments

    # -- what turns use ------------------------------------------------------------------------
    def emit(self, text: str) -> Iterator[Event]:
        if text:
            now = time.perf_counter()
            self.timings.setdefault("first_token_s", now - self.t0)
            if self._trigger_time is not None:  # first answer text after a call was written
                self.timings["roundtrip_s"] = self.timings.get("roundtrip_s", 0.0) + now - self._trigger_time
                self.timings["roundtrips"] = self.timings.get("roundtrips", 0) + 1
                self._trigger_time = None
            self.answer.append(text)
            yield TextDelta(text)

    def check_limits(self) -> None:
        if self.cancel.is_set():
            raise Stop("cancelled", "stopped by the caller")
        if self.opt.max_time_s is not None and time.perf_counter() - self.t0 > self.opt.max_time_s:
            raise Stop("timeout", f"the answer took longer than {self.opt.max_time_s:g} s")

    def calls_left(self) -> int:
        return self.opt.max_tool_calls - len(self.calls)

    def too_many_calls(self) -> Stop:
        return Stop("max_tool_calls", f"more than {self.opt.max_tool_calls} tool calls in one answer")

    def in_a_result(self, text: str) -> bool:
        """Does `text` (whitespace aside) occur in a tool result of this answer? A model that
        copies a call out of a document is following the document, not the user."""
        probe = " ".join(text.split())
        return bool(probe) and any(probe in norm for norm in self.result_texts)

    def stated(self, call: Call) -> Call:
        """`call` without the optional string values nobody stated (Options.drop_unstated)."""
        tool = self.tools.get(str(call.name))
        if not self.opt.drop_unstated or call.problem is not None or tool is None:
            return call
        source = " ".join([self.given, self.asked, *self.result_texts])
        arguments, dropped = drop_unstated(tool, call.arguments, source)
        if not dropped:
            return call
        self.warnings.append(unstated_warning(str(call.name), dropped))
        return Call(call.name, arguments)

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> Iterator[Event]:
        reason: StopReason = "stop"
        message = ""
        try:
            choice = self.opt.tool_choice
            plan = [] if choice in ("auto", "none") else [choice] if isinstance(choice, str) else list(choice)
            unknown = [c for c in plan if c not in ("required", "none") and c not in self.tools]
            if unknown:
                raise Stop("bad_call", f"tool_choice names no registered tool: {', '.join(map(repr, unknown))}")
            free = bool(self.tools) and choice != "none"
            if self.first:  # the policy's own calls, before any word of the model's
                self.check_limits()  # a cancelled answer makes none
                turn = self.turns.given(self, self.shown)
                turn.calls = list(self.first)  # run as planned; the context has them as shown
                self._echo = _echoes(self.first, self.shown)
                yield from self._calls(turn, forced=True)
                self._echo = []
            while True:
                step = "auto" if free else "none"
                if plan and self.tools:
                    step = plan.pop(0)
                    if step == "none":  # a plan ending in "none": answer now, no more calls
                        free, plan = False, []
                        continue
                turn = yield from self.turns.turn(self, step)
                if turn.began_call and not turn.calls:  # told to answer without tools, it began another call
                    self.warnings.append("after its call was not made the model began another; the answer ends there")
                    break
                if not turn.calls:
                    if step not in ("auto", "none"):
                        self.warnings.append(f"tool_choice {step!r} was not followed: the answer came without a call")
                    if turn.finish == "length":
                        raise Stop("length", f"max_tokens ({self.opt.max_tokens}) reached")
                    break
                yield from self._calls(turn, forced=step not in ("auto", "none"))
        except Stop as stop:
            reason, message = stop.reason, stop.message
        yield from self._final(reason, message)

    def _final(self, reason: StopReason, message: str) -> Iterator[Event]:
        self.usage.tool_calls = len(self.calls)
        prompt = self.turns.finish(self.usage)
        if reason == "stop" and self.second_look is not None:
            reason, message = yield from self._look_again(self.second_look)
        citations = check_citations("".join(self.answer), self.calls, self.results, self.request)
        returned = [r.content for r in self.results if not r.error] + self.inline_texts
        said = "".join(self.answer)
        score, withdrawn = self._support_check(said, citations) if reason == "stop" else (None, False)
        if (reason == "stop" and (self.results or self.inline_texts) and self.opt.unsupported_notice
                and (not said.strip() or withdrawn or supported(said, self.asked, returned) is False)):
            # tools were asked, and the answer is empty or states what they did not return: say so
            yield from self.emit(f"\n\n{self.opt.unsupported_notice}")
        self.timings["total_s"] = time.perf_counter() - self.t0  # the checks included
        yield Final(
            answer="".join(self.answer),
            stop_reason=reason,
            citations=citations,
            tool_calls=self.calls,
            tool_results=self.results,
            usage=self.usage,
            timings=self.timings,
            message=message,
            warnings=self.warnings,
            prompt=prompt if self.opt.show_prompt else None,
            support=score,
        )

    def _look_again(self, second_look: SecondLook) -> Generator[Event, None, tuple[StopReason, str]]:
        """The second look's text as this answer's own; its tokens and its stop count too."""
        more = second_look(self.inline_texts)
        if more is None:
            return "stop", ""
        t0 = time.perf_counter()
        final: Final | None = None
        for event in more:
            if isinstance(event, TextDelta):
                yield from self.emit(event.text)
            elif isinstance(event, Final):
                final = event
        self.timings["second_look_s"] = time.perf_counter() - t0
        if final is None:
            return "stop", ""
        for name in (f.name for f in fields(Usage)):  # two prompts read, two answers written
            setattr(self.usage, name, getattr(self.usage, name) + getattr(final.usage, name))
        self.warnings += final.warnings
        return final.stop_reason, final.message

    # -- one turn's calls ----------------------------------------------------------------------
    def _calls(self, turn: Turn, forced: bool) -> Iterator[Event]:
        """Check the turn's calls against the limits, run them, insert their results."""
        calls = turn.calls  # unstated values were dropped as the turn wrote them (Answer.stated)
        if not forced and self._declined_by_check(calls):
            return
        injected = [c.name for c in calls if c.name in self._tainted]
        if injected:  # only a document asked for this tool: the call is not made, the answer ends
            self.turns.take_back(None)
            n = self._tainted[str(injected[0])]
            message = (f"the model began a {injected[0]} call that only the text of result [{n}] asked for; "
                       "the call was not made and the answer ended there")
            self.warnings.append(message)
            raise Stop("injected_call", message)
        stop = None
        if len(calls) > self.calls_left():  # the calls up to the limit run; then the answer ends
            stop = self.too_many_calls()
            calls = calls[: max(0, self.calls_left())]
            if not calls:
                self.turns.take_back(None)
                raise stop
        events = [ToolCall(i, c.name or "", c.arguments, raw=r, check=self._check)
                  for c, i, r in zip(calls, turn.ids, turn.raws)]
        earlier = [self._earlier(e, events[:k]) if c.problem is None else []
                   for k, (c, e) in enumerate(zip(calls, events))]
        worst = max(range(len(events)), key=lambda k: len(earlier[k]))
        if len(earlier[worst]) + 1 > self.opt.max_repeated_calls:
            self.turns.take_back(None)
            raise Stop("repeated_call", f"{events[worst].name} called {len(earlier[worst]) + 1} times in a row "
                                        "with the same arguments")
        self.calls += events
        self._trigger_time = time.perf_counter()  # the calls are written: from here on it is our cost
        yield from events
        outcomes = self._run_all(calls, earlier)
        results = self._insert(events, outcomes)
        yield from results
        if stop is not None:
            raise stop

    def _support_check(self, said: str, citations: list[Any]) -> tuple[float | None, bool]:
        """The support check (Options.support_check): its score, when it ran, and whether the
        answer's verified citations were withdrawn (below the threshold: shown unverified)."""
        threshold = self.opt.support_check
        if self.support is None or isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            return None, False  # off (the default), or a backend that cannot ask on the side
        found = claim_and_source(said, self.request, citations)
        if found is None:
            return None, False
        t0 = time.perf_counter()
        score = self.support(self.request, *found)
        self.timings["support_s"] = time.perf_counter() - t0
        if score is None or score >= threshold:
            return score, False
        withdraw(citations, score, threshold)
        return score, True

    def _declined_by_check(self, calls: list[Call]) -> bool:
        """The call check (Options.call_check): True when the calls were taken back."""
        self._check = None
        if not isinstance(self.opt.call_check, (int, float)) or self.judge is None:
            return False  # off, or "auto" never resolved by a path (Agent.stream resolves it)
        names = " and ".join(str(c.name) for c in calls)
        unknown = [str(c.name) for c in calls if c.name is not None and c.name not in self.tools]
        if unknown:  # a tool that does not exist cannot be what the request needs
            why = f"{', '.join(unknown)} is not a tool here"
        elif all(c.problem is None for c in calls):
            self._check = check = self.judge(self.tools, self.request, calls)
            why = (f"asked whether it is what the request needs, with values the request gives, the model "
                   f"judged not (yes-no log-odds {check:.2f} < {self.opt.call_check:g})"
                   ) if check is not None and check < self.opt.call_check else ""
        else:
            why = ""  # a malformed call: its error goes back to the model as usual
        if not why:
            return False
        # take the call back; ask, as the nudge after a result does, for an answer in words
        self.turns.take_back(DECLINED_NOTE.format(names=names))
        self.declined = True
        self.warnings.append(f"the model's {names} call was not made: {why}; it answers without tools")
        return True

    def _earlier(self, call: ToolCall, this_turn: list[ToolCall]) -> list[ToolCall]:
        """The same call made right before this one, most recent first."""
        key = (call.name, json.dumps(call.arguments, sort_keys=True))
        same = []
        for previous in reversed(self.calls + this_turn):
            if (previous.name, json.dumps(previous.arguments, sort_keys=True)) != key:
                break
            same.append(previous)
        return same

    def _run_all(self, calls: list[Call], earlier: list[list[ToolCall]]) -> list[tuple[str, bool, float, list]]:
        """(content, error, seconds, sources) per call; the calls of one turn run at once (bounded)."""
        by_id = {r.id: r.source for r in self.results}

        def one(call: Call, same: list[ToolCall]) -> tuple[str, bool, float, list]:
            if call.problem:
                return f"error: {call.problem}", True, 0.0, []
            if same:  # don't run it again: point back at the result the model already has
                n = next((by_id[c.id] for c in same if c.id in by_id), len(self.results))
                return f"repeated call: the result of this exact call is [{n}] above. Answer from it now.", True, 0.0, []
            outcome = run_tool(self.tools[str(call.name)], call.arguments, self.opt.tool_timeout)
            return outcome.output.content, outcome.error, outcome.duration_s, [s.__dict__ for s in outcome.sources]

        if len(calls) == 1:
            outcomes = [one(calls[0], earlier[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_TOOLS, len(calls))) as pool:
                outcomes = list(pool.map(one, calls, earlier))
        self.timings["tools_s"] += max(o[2] for o in outcomes)
        return outcomes

    def _insert(self, calls: list[ToolCall], outcomes: list[tuple[str, bool, float, list]]) -> list[ToolResult]:
        fitted = self.turns.fit([_shown(content, self._echo) for content, *_ in outcomes])
        results, items = [], []
        for call, (_, error, duration, sources), (content, truncated) in zip(calls, outcomes, fitted):
            n = len(self.results) + len(results) + 1
            label = f"[{n}] {call.name or 'tool'}" + (" (error)" if error else "")
            items.append((label, content, call.id))
            results.append(ToolResult(call.id, call.name, content, n, error, truncated, duration, sources))
        said, self.after_first = self.after_first, ""  # the first results' own nudge, once
        self.turns.insert(items, said or nudge([r.source for r in results]), always=bool(said))
        self.results += results
        self.result_texts += [" ".join(r.content.split()) for r in results]
        if self.opt.injection_guard:
            for r in results:
                self._taint(r)
        return results

    def _taint(self, result: ToolResult) -> None:
        """Note the tools that a result's document text tells the model to call."""
        texts = [s.get("text", "") for s in result.sources] or [result.content]
        for name in self.tools:
            if name in self._tainted or _asked_for(name, self.asked):
                continue
            if any(_call_request(name).search(t) for t in texts):
                self._tainted[name] = result.source


def _echoes(run: list[Call], shown: list[Call]) -> list[tuple[str, str]]:
    """The string values that differ between the calls as run and as the context shows them."""
    pairs = []
    for a, b in zip(run, shown):
        for key, value in a.arguments.items():
            other = b.arguments.get(key)
            if isinstance(value, str) and isinstance(other, str) and value and value != other:
                pairs.append((value, other))
                plain = " ".join(value.split())  # as a tool that tidies its argument repeats it
                if plain and plain != value:
                    pairs.append((plain, " ".join(other.split())))
    return pairs


def _shown(content: str, echo: list[tuple[str, str]]) -> str:
    """A result as the context shows it: where it repeats an argument as run (a search's
    `Results for "..."`), the argument as shown."""
    for value, other in echo:
        content = content.replace(value, other)
    return content


def _call_request(name: str) -> regex.Pattern[str]:
    """Text that asks for a call of `name`: `"name": "x"`, `x(`, `x.call(`, "call/use/run the x"."""
    n = regex.escape(name)
    return regex.compile(
        rf'"(?:name|function)"\s*:\s*"{n}"|\b{n}(?:\.call)?\s*\(|\b(?:call|use|run|invoke|execute|with)\s+(?:the\s+)?{n}\b',
        regex.I,
    )


def _asked_for(name: str, asked: str) -> bool:
    return bool(regex.search(rf"\b{regex.escape(name)}\b", asked, regex.I))


def asked_text(messages: list[dict[str, Any]]) -> str:
    """The user's words in a conversation (every message but the system prompt), latest last,
    turns separated by a blank line."""
    return "\n\n".join(str(m.get("content") or "") for m in messages if m.get("role") != "system")
