"""The turn, token by token, on one llama.cpp context (the token-level side of the `Turns` seam).

    prompt ──generate──▶ text ... trigger? ──rewind to the call's start──▶ the family's opening
        ──generate under the call grammar──▶ {"name": ..., "arguments": ...} ──canonical form──▶
        closing + result turn ──generate on the same context──▶ text ... end of turn

The backend reuses the KV cache for every prefix it already holds, so each rewind-and-insert
costs only the inserted tokens. Text that may be the start of a trigger is held back (_watch.py),
so a consumer never sees half a call. What to do with the calls is the loop's (_loop.py).
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generator, Iterator, Sequence

import regex

from tooltoken.tools import Tool
from tooltoken.tools.calculator import FENCE, OUTPUT

from ._backend import Backend, GenerateStats
from ._call_check import judge, opening_token
from ._calls import balanced, first_json
from ._events import Event, ToolCall, ToolResult, Usage
from ._families import Call, Family, trigger_pattern
from ._grammar import fit_schema, open_string, repeating, tighter
from ._loop import Answer, Stop, Turn
from ._options import Options
from ._support_check import support_odds
from ._template import Piece
from ._watch import END, Hit, Watch

__all__ = ["LlamaTurns"]

_INLINE_TAIL = 4000  # how much of the answer's end an inline trigger sees (a calculator program)
_INLINE: Any = object()  # what _free returns after an inline call: not a trigger, not the end
_PEEK_TOKENS = 24  # tokens sampled to see whether another call follows (a fenced `{"name": ...` is ~12)


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


class LlamaTurns:
    """One answer's context on a token-level backend (`LlamaBackend`, or a scripted one in tests)."""

    def __init__(self, backend: Backend, family: Family, tools: list[Tool], options: Options,
                 prompt: list[Piece], inline: list[Tool] | None = None, ban: Sequence[str] = (),
                 last_line: bool = False) -> None:
        """`ban`: tokens of text the answer may not write (each text that is one token is never sampled in free
        text; the math path bans LaTeX, so the answer's last sentence is plain). `last_line`: once
        an inline program's output is written, the answer ends with the line after it (the math
        path's one sentence that states the answer), instead of starting the work again."""
        self.b, self.fam, self.opt = backend, family, options
        self.tools = {t.name: t for t in tools}
        self.trigger = trigger_pattern(list(self.tools), family.extra_triggers, family.pythonic)
        on = options.inline_calls and options.tool_choice != "none"
        self.inline = [t for t in [*tools, *(inline or [])] if t.inline is not None] if on else []
        self.usage = Usage()
        self.stats = GenerateStats()
        static = next((k for k, p in enumerate(prompt) if p.turn), len(prompt))
        head = self.encode(prompt[:static])  # the template, system prompt and tools: the same every answer
        self.ctx = head + self.encode(prompt[static:])
        if backend.add_bos and not (backend.bos_text and prompt and prompt[0].text.startswith(backend.bos_text)):
            bos = backend.tokenize(backend.bos_text, special=True)
            self.ctx, head = bos + self.ctx, bos + head
        self._static = min(len(head), len(self.ctx) - 1)  # the prefix the prompt cache keeps
        self.usage.prompt_tokens = len(self.ctx)
        self._text_tokens = 0  # answer tokens sampled, calls not counted
        self._call_prefix = ""  # call text already sampled when a pythonic call was caught
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._ban: list[int] = []  # tokens not to sample: the call's opening, after a call was declined
        self._last_line = last_line
        self._own = ""  # the model's latest text since an inline result (last_line: a made-up output)
        self._after: str | None = None  # the text after a program's output, when last_line
        # after the output, no new code block: the model states the answer instead of starting over
        self._fences = _single_tokens(backend, ("```", " ```", "``", " ``", "``\n", " ```\n", "``,", " ``("))
        self._always = _single_tokens(backend, ban)
        self._mark = len(self.ctx)  # where the last call turn began
        self._started = False
        self.judge = partial(judge, backend)  # the call check asks the model on the side
        self.support = partial(support_odds, backend)  # and so does the support check

    # -- tokens --------------------------------------------------------------------------------
    def encode(self, pieces: list[Piece]) -> list[int]:
        out: list[int] = []
        for p in pieces:
            out += self.b.tokenize(p.text, special=p.trusted)
        return out

    def _piece(self, token: int) -> str:
        return self._decoder.decode(self.b.detokenize([token]))

    def _check_limits(self, a: Answer, in_call: bool = False) -> None:
        a.check_limits()
        if len(self.ctx) >= self.b.n_ctx - 1:
            raise Stop("context", f"the context window ({self.b.n_ctx} tokens) is full")
        if not in_call and self._text_tokens >= self.opt.max_tokens:  # calls have max_call_tokens
            raise Stop("length", f"max_tokens ({self.opt.max_tokens}) reached")

    # -- the seam ------------------------------------------------------------------------------
    def turn(self, a: Answer, step: str) -> Generator[Event, None, Turn]:
        self._check_prompt(a)
        if step not in ("auto", "none"):  # a forced call: written under the grammar at once
            allowed = list(self.tools.values()) if step == "required" else [self.tools[step]]
            return self._call_turn(a, allowed, forced=True)
        while True:
            match = yield from self._free(a, triggers=step == "auto")
            if match is None:
                return Turn()
            if match is _INLINE:  # a tool finished the answer's own text; go on from there
                continue
            if a.declined:
                return Turn(began_call=True)
            named = match.groupdict().get("name") or match.groupdict().get("fname")
            invented = named if named and named not in self.tools else None
            return self._call_turn(a, list(self.tools.values()), invented, pythonic=bool(match.groupdict().get("py")))

    def given(self, a: Answer, calls: list[Call]) -> Turn:
        """Write `calls` as the model's own call turn, in the family's canonical form."""
        self._check_prompt(a)
        self._mark = len(self.ctx)
        ids = [self.fam.call_id(len(a.calls) + k + 1) for k in range(len(calls))]
        before = len(self.ctx)
        for k, (call, sid) in enumerate(zip(calls, ids)):
            if k and self.fam.call_sep is not None:
                self.ctx += self.b.tokenize(self.fam.call_sep, special=True)
            self.ctx += self.b.tokenize(self.fam.call_open, special=True)
            self.ctx += self.encode(self.fam.canonical([call], [sid]))
            self.ctx += self.b.tokenize(self.fam.call_close, special=True)
        self.usage.inserted_tokens += len(self.ctx) - before
        self.usage.call_tokens += len(self.ctx) - before
        raws = [json.dumps({"name": c.name, "arguments": c.arguments}, ensure_ascii=False) for c in calls]
        return Turn(list(calls), ids, raws)

    def _check_prompt(self, a: Answer) -> None:
        if not self._started:
            self._started = True
            if len(self.ctx) + self.opt.answer_reserve > self.b.n_ctx:
                raise Stop("context", f"the prompt has {len(self.ctx)} tokens; the context holds {self.b.n_ctx}")
            prime = getattr(self.b, "prime", None)
            if prime is not None and self._static > 0:
                warning = prime(self.ctx[: self._static], self.stats)
                if warning:
                    a.warnings.append(warning)

    def take_back(self, note: str | None) -> None:
        del self.ctx[self._mark:]
        if note is not None:  # told why, it answers in words; its call's opening is not sampled
            if self.fam.assistant_to_user and self.fam.user_to_assistant:
                self.ctx += self.encode([Piece(self.fam.assistant_to_user, True), Piece(note, True),
                                         Piece(self.fam.user_to_assistant, True)])
            self._ban = opening_token(self.b, self.fam.call_open)

    def fit(self, contents: list[str]) -> list[tuple[str, bool]]:
        room = self.b.n_ctx - len(self.ctx) - self.opt.answer_reserve - 32 * len(contents)
        budget = min(self.opt.max_tool_output_tokens, room // max(1, len(contents)))
        if budget < 8:
            raise Stop("context", f"no room left in the context ({self.b.n_ctx} tokens) for a tool result")
        return [self._truncate(c, budget) for c in contents]

    def insert(self, items: list[tuple[str, str, str]], nudge: str, always: bool = False) -> None:
        before = len(self.ctx)
        self.ctx += self.encode(self.fam.result_pieces(items, nudge, always))
        self.usage.inserted_tokens += len(self.ctx) - before

    def finish(self, usage: Usage) -> str | None:
        for name in ("prompt_tokens", "completion_tokens", "inserted_tokens", "call_tokens", "inline_calls"):
            setattr(usage, name, getattr(self.usage, name))
        # what `prime` evaluated counts as evaluated, not as reused by the generate after it
        usage.prompt_tokens_evaluated = self.stats.evaluated + self.stats.primed
        usage.tokens_reused = self.stats.reused - self.stats.primed
        usage.prompt_tokens_restored = self.stats.restored
        return self.b.detokenize(self.ctx).decode("utf-8", "replace") if self.opt.show_prompt else None

    # -- free text -----------------------------------------------------------------------------
    def _free(self, a: Answer, triggers: bool) -> Generator[Event, None, Any]:
        """Generate until the end of turn (returns None), an inline call (_INLINE) or a trigger:
        then rewind to where the call began and return the trigger's match."""
        span = _Span(start=len(self.ctx))
        watch = Watch(self.trigger, a.in_a_result)
        self._check_limits(a)
        banned = self._ban + self._always + (self._fences if self._after is not None else [])
        more = {"ban": banned} if banned else {}
        gen = self.b.generate(list(self.ctx), grammar=None, stats=self.stats, **more)
        hit, inline = None, None
        try:
            for token in gen:
                if self.b.is_eog(token):
                    break
                self.ctx.append(token)
                self.usage.completion_tokens += 1
                self._text_tokens += 1
                piece = self._piece(token)
                span.add(token, piece)
                shown, hit = watch.feed(piece) if triggers else (watch.flush() + piece, None)
                yield from a.emit(shown)
                if hit is not None:
                    break
                if self._after is not None:
                    self._after += piece
                    if _stated(self._after):
                        break  # the line that states the answer is written: the answer ends there
                if self._last_line:
                    self._own = (self._own + piece)[-len(OUTPUT) - 8:]
                    if OUTPUT in self._own:  # the model began the calculator's output block itself
                        a.warnings.append("the model began writing the calculator's output itself; "
                                          "the answer ends there, before any value it would make up")
                        break
                inline = self._inline_hit(a, watch, piece)
                if inline is not None:
                    yield from a.emit(watch.flush())
                    break
                self._check_limits(a)
        except Stop:
            yield from a.emit(watch.flush())  # held text was text after all
            raise
        finally:
            gen.close()
            a.warnings += watch.warnings
        if inline is not None:
            yield from self._inline_call(a, *inline)
            return _INLINE
        if hit is None or hit is END:
            yield from a.emit(("" if hit is END else watch.flush()) + self._decoder.decode(b"", final=True))
            return None
        return self._rewind(a, span, watch, hit)

    def _rewind(self, a: Answer, span: _Span, watch: Watch, hit: Hit) -> Any:
        if a.calls_left() <= 0:
            raise a.too_many_calls()
        self._call_prefix = ""
        if hit.match.groupdict().get("py"):  # Llama 3.2's list is its canonical form: keep it, go on
            self._call_prefix = watch.pending
            return hit.match
        keep, leftover = span.cut(hit.at)
        del self.ctx[span.start + keep:]
        if leftover:
            self.ctx += self.b.tokenize(leftover, special=False)
        return hit.match

    # -- inline tools (the calculator finishing `195 × 144 =`) ---------------------------------
    def _inline_hit(self, a: Answer, watch: Watch, piece: str) -> tuple[Tool, dict[str, Any], str] | None:
        # a fence is held as a possible ```json call; if it closes a calculator program, it was text
        if not self.inline or watch.pending.strip() not in ("", "```") or piece.rstrip(" \n")[-1:] not in ("=", "`"):
            return None
        if self.usage.inline_calls >= self.opt.max_inline_calls:
            return None
        tail = ("".join(a.answer) + watch.pending)[-_INLINE_TAIL:]
        for tool in self.inline:
            try:
                hit = tool.inline(tail)  # type: ignore[misc]
            except Exception as exc:  # noqa: BLE001 -- a user's inline trigger failing is a warning, not a lost answer
                a.warnings.append(f"{tool.name}'s inline trigger failed: {type(exc).__name__}: {exc}")
                self.inline.remove(tool)
                return None
            if hit is not None:
                return tool, hit[0], hit[1]
        return None

    def _inline_call(self, a: Answer, tool: Tool, arguments: dict[str, Any], text: str) -> Iterator[Event]:
        """Write an inline tool's text as the answer's next words (Toolformer's `→ result`): no
        call turn, no result turn, nothing to cite; the model goes on from the new text."""
        self.usage.inline_calls += 1
        call = ToolCall(f"inline_{self.usage.inline_calls}", tool.name, arguments, inline=True)
        yield call
        tokens = self.b.tokenize(text, special=False)
        self.ctx += tokens
        self.usage.inserted_tokens += len(tokens)
        yield ToolResult(call.id, tool.name, text.strip(), 0)
        a.inline_texts.append(text)
        self._own = ""
        if self._last_line and text.lstrip().startswith(OUTPUT) and not text.endswith(FENCE):
            self._after = ""  # the output is in (or the calculator gave up): one line states the answer
        yield from a.emit(text)

    # -- the call turn -------------------------------------------------------------------------
    def _call_turn(self, a: Answer, allowed: list[Tool], invented: str | None = None,
                   pythonic: bool = False, forced: bool = False) -> Turn:
        """Write the call turn at the end of the context; return the calls read.

        The call is generated under the grammar of `allowed` after the family's opening, then
        rewritten in canonical form. `invented`: the model already named a tool that does not
        exist; that call is written as meant and answered with the real tools' names, rather
        than forced onto one. `pythonic`: Llama 3.2's `[f(a=1), g(b=2)]`, read with `ast`.
        `forced`: tool_choice asked for this call, so it must be one (see _write_call).
        Where the family allows it, the model may open further calls in the same turn (parallel
        calls): they are all written first, then run together."""
        self._mark = len(self.ctx)
        calls, texts = self._write_call(a, allowed, invented, pythonic, len(a.calls) + 1, forced)
        while (
            self.fam.call_sep is not None
            and not pythonic
            and invented is None
            and all(c.problem is None for c in calls)
            and len(calls) < a.calls_left()
            and self._another_call()
        ):
            sep = self.b.tokenize(self.fam.call_sep, special=True)
            self.ctx += sep
            self.usage.inserted_tokens += len(sep)
            more, more_texts = self._write_call(a, allowed, None, False, len(a.calls) + len(calls) + 1)
            calls, texts = calls + more, texts + more_texts
        ids = [self.fam.call_id(len(a.calls) + k + 1) for k in range(len(calls))]
        return Turn(calls, ids, texts)

    def _write_call(self, a: Answer, allowed: list[Tool], invented: str | None, pythonic: bool,
                    first: int, forced: bool = False) -> tuple[list[Call], list[str]]:
        """Write one call (or one list of calls) in canonical form; return the calls read and the
        text the model wrote for each.

        Under the grammar every string and list is bounded so that the longest call fits
        max_call_tokens: the grammar closes the call rather than the budget cutting it. A string
        that loops ends the call early; a forced call that did not close is written once more
        with every bound halved and no loop stop, so the grammar closes it; if even that yields
        no call, the answer ends with stop reason "bad_call" (never a call without a name). A call the model chose to make that cannot be
        read goes back to it as an error result, as any bad call does."""
        fam = self.fam
        open_tokens = [] if pythonic else self.b.tokenize(fam.call_open, special=True)
        self.ctx += open_tokens
        self.usage.inserted_tokens += len(open_tokens)
        body_start = len(self.ctx)
        value: Any = None
        if invented is not None:
            value = {"name": invented, fam.args_key: {}}
            text = json.dumps(value, ensure_ascii=False)
            self.ctx += self.b.tokenize(text, special=False)
            self.usage.inserted_tokens += len(self.ctx) - body_start
        elif self.opt.grammar and not pythonic:
            # bounded so the longest call the grammar allows fits the budget: it closes, not cut
            schema = fit_schema(fam.call_schema(allowed), self.opt.max_call_tokens - 1)
            text, value = self._generate_call(a, schema, body_start, pythonic)
            if value is None and forced:  # it looped inside a string: once more, every bound halved
                a.warnings.append(f"the call did not close ({text.strip()[:80]!r}...); it was written again "
                                  "with shorter bounds")
                del self.ctx[body_start:]
                # no loop stop this time: the halved bounds close the call, looping or not
                text, value = self._generate_call(a, tighter(schema), body_start, pythonic, stop_loops=False)
            if value is None and forced:
                raise Stop("bad_call", f"the model's call could not be completed under the grammar, even with "
                                       f"shorter bounds: {text.strip()[:200]!r}")
        else:
            text, value = self._generate_call(a, None, body_start, pythonic)
        calls = [a.stated(c) for c in fam.read(value, text, self.tools, allowed)]
        ids = [fam.call_id(first + k) for k in range(len(calls))]
        if not pythonic and all(c.problem is None for c in calls):
            pieces = fam.canonical(calls, ids)
            if "".join(p.text for p in pieces) != text.strip():
                del self.ctx[body_start:]
                self.ctx += self.encode(pieces)
            self.usage.inserted_tokens += len(self.ctx) - body_start
        close_tokens = self.b.tokenize(fam.pythonic_close if pythonic else fam.call_close, special=True)
        self.ctx += close_tokens
        self.usage.inserted_tokens += len(close_tokens)
        self.usage.call_tokens += len(self.ctx) - body_start + len(open_tokens)
        return calls, [text] * len(calls)

    def _another_call(self) -> bool:
        """Right after a call: does the model open another call in the same turn? A few tokens
        are sampled to see (text that cannot start a call ends the look at once); the context is
        left as it was either way (the caller writes the opening in canonical form)."""
        mark, text, found = len(self.ctx), "", False
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        gen = self.b.generate(list(self.ctx), grammar=None, stats=self.stats)
        try:
            for k, token in enumerate(gen):
                if self.b.is_eog(token) or k >= _PEEK_TOKENS:
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

    def _generate_call(self, a: Answer, schema: dict | None, body_start: int, pythonic: bool,
                       stop_loops: bool = True) -> tuple[str, Any]:
        """Sample the call body; return its text and its parsed JSON value (None if not JSON).
        `stop_loops`: end early when a string of the call repeats itself."""
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
                elif stripped[:1] and stripped[0] not in "{[" and not self.fam.bare_calls:
                    break  # not a call after all; read() says so to the model
                elif stripped[-1:] in "}]":
                    value = first_json(stripped)
                    if value is not None:
                        break
                elif stop_loops and schema is not None and stripped[-1:] != '"' and repeating(open_string(stripped) or ""):
                    break  # a string that writes itself again and again: the caller retries
                if len(self.ctx) - body_start >= self.opt.max_call_tokens:
                    break
                self._check_limits(a, in_call=True)
        finally:
            gen.close()
        return text, value

    def _truncate(self, content: str, budget: int) -> tuple[str, bool]:
        total = len(content)
        clipped = content[: budget * 8]  # no token is longer than this; spares tokenizing megabytes
        tokens = self.b.tokenize(clipped, special=False)
        if len(tokens) <= budget and len(clipped) == total:
            return content, False
        keep = max(0, budget - 24)
        text = self.b.detokenize(tokens[:keep]).decode("utf-8", "ignore")
        return f"{text}\n[... truncated by tooltoken: showing {len(text)} of {total} characters]", True


def _stated(after: str) -> bool:
    """Does the text after a program's output hold a finished line that states a number? A line
    that ends in `:` introduces one ("The answer is:"), unless a sentence before its last one
    already stated it ("Maya runs 8 km in all. The calculation is as follows:", where the
    numbered steps after it would be read as the answer)."""
    for line in after.lstrip().split("\n")[:-1]:
        line = line.rstrip()
        said = _SENTENCE_END.split(line)[:-1] if line.endswith(":") else [line]
        if any(ch.isdigit() for part in said for ch in part):
            return True
    return False


_SENTENCE_END = regex.compile(r"(?<=[.!?])\s+")


def _single_tokens(backend: Backend, texts: Sequence[str]) -> list[int]:
    """The tokens of those `texts` that are one token each (a text of several tokens is not
    banned by its first: that could be a newline)."""
    ids = (backend.tokenize(t, special=False) for t in texts)
    return sorted({t[0] for t in ids if len(t) == 1})
