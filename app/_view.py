"""Drawing one answer in a terminal, from its events (used by `chat` and `ask`; see the cli module
docstring for what a user sees): streamed text, a line per tool call and result, footnotes."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any, Callable

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.text import Text

__all__ = ["AnswerView", "answer", "args_text", "footnotes", "short_text"]


def short_text(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def args_text(arguments: dict, n: int = 100) -> str:
    return short_text(json.dumps(arguments, ensure_ascii=False), n)


class AnswerView:
    """Draws the events of one answer on `console` (see the module docstring).

    Markdown streams in a rich `Live` region that holds only the last screenful: lines that
    scroll above it are printed for good, so a long answer never redraws (or duplicates) what
    the terminal has already scrolled away."""

    def __init__(self, console: Any, markdown: bool) -> None:
        self.console = console
        self.markdown = markdown
        self.text = ""  # the text since the last tool line
        self.live: Any = None
        self.printed = 0  # lines of the current text already printed above the live region
        self.drawn_at = 0.0
        self.mid_line = False  # plain mode: the cursor is after some text, not at a line start

    def text_delta(self, text: str) -> None:
        if not self.markdown:
            self.console.print(text, end="", markup=False, highlight=False, soft_wrap=True)
            self.mid_line = not text.endswith("\n")
            return
        self.text += text
        if self.live is None:
            self.live = Live(console=self.console, refresh_per_second=12, transient=False)
            self.live.start()
        now = time.monotonic()
        if now - self.drawn_at >= 0.05:  # rendering markdown is the cost: at most 20 times a second
            self.drawn_at = now
            self._draw(final=False)

    def _draw(self, final: bool) -> None:
        lines = self._render(self.text)
        window = max(4, self.console.height - 4)
        keep = 0 if final else window  # the tail may still change as text arrives
        stable = lines[: max(0, len(lines) - keep)]
        if len(stable) > self.printed:
            self.live.console.print(Text.from_ansi("\n".join(stable[self.printed:])), highlight=False)
            self.printed = len(stable)
        self.live.update(Text.from_ansi("\n".join(lines[self.printed:])), refresh=True)

    def _render(self, text: str) -> list[str]:
        """The markdown as terminal lines (ANSI styled), at the console's width."""
        from io import StringIO

        buf = StringIO()
        Console(file=buf, width=self.console.width, force_terminal=True, color_system=self.console.color_system,
                legacy_windows=False).print(Markdown(text))
        return buf.getvalue().rstrip("\n").split("\n")

    def end_text(self) -> None:
        """Freeze the text so far, so the next line goes under it."""
        if self.live is not None:
            self._draw(final=True)
            self.live.update(Text(""), refresh=True)
            self.live.stop()
            self.live = None
        if self.mid_line:
            self.console.print()
            self.mid_line = False
        self.text, self.printed = "", 0

    def tool_call(self, ev: Any) -> None:
        if ev.inline:  # its result is the answer's next words; the text shows it
            return
        self.end_text()
        line = Text()
        line.append(f"→ {ev.name or '?'}", style="cyan")
        line.append(f"({args_text(ev.arguments, 120)})")
        self.console.print(line, highlight=False)

    def tool_result(self, ev: Any) -> None:
        if ev.source == 0:  # an inline call's
            return
        style = "red" if ev.error else "green"
        line = Text()
        line.append(f"← [{ev.source}] {short_text(ev.content, 100)}", style=style)
        line.append(f" · {ev.duration_s * 1000:.0f} ms", style="dim")
        self.console.print(line, highlight=False)

    def final(self, final: Any) -> None:
        self.end_text()
        for line in footnotes(final):
            self.console.print(line, highlight=False)


def _source_quote(final: Any, c: Any, n: int = 160) -> str:
    quote = getattr(c, "quote", "")
    if quote:
        return short_text(quote, n)
    for s in c.sources or []:
        if s.get("text"):
            return short_text(s["text"], n)
    result = next((r for r in final.tool_results if r.source == c.marker), None)
    return short_text(result.content, n) if result is not None else ""


def footnotes(final: Any) -> list[Any]:
    """The answer's sources, one rich Text a line: cited ones first (✓ or ✗; a marker that failed
    where a fact of the answer was still found in its result has both), then the uncited."""
    lines = []
    cited, shown = set(), set()
    for c in final.citations:
        if (c.marker, c.verified) in shown:
            continue
        shown.add((c.marker, c.verified))
        cited.add(c.marker)
        line = Text(f" [{c.marker}] ")
        if c.verified:
            line.append("✓ ", style="green")
            title = getattr(c, "title", "") or ""
            where = " · ".join(x for x in (title, getattr(c, "source_id", ""), getattr(c, "location", "")) if x)
            line.append(where or f"{c.tool}({args_text(c.arguments, 60)})")
            quote = _source_quote(final, c)
            if quote:
                line.append(f" — “{quote}”", style="italic")
        else:
            line.append("✗ unverified", style="red")
            line.append(f": {c.reason}" if c.reason else "")
            if getattr(c, "quote", ""):
                line.append(f" — “{short_text(c.quote, 120)}”", style="italic")
        lines.append(line)
    for r in final.tool_results:
        if r.source not in cited:
            call = next((c for c in final.tool_calls if c.id == r.id), None)
            what = f"{r.name}({args_text(call.arguments, 60)})" if call is not None else r.name
            lines.append(Text(f" [{r.source}] · {what} — not cited: “{short_text(r.content, 80)}”", style="dim"))
    if lines:
        lines.insert(0, Text("Sources", style="bold"))
    return lines


_DONE = object()


def answer(agent: Any, question: Any, history: list, view: AnswerView, on_stop: Callable[[str], None],
           **options: Any) -> Any:
    """Stream one answer into `view`; returns the Final event, or None if abandoned.

    The answer runs in a worker thread so that Ctrl-C here only sets its cancel event: the
    controller stops at the next token and still sends its Final (stop_reason "cancelled").
    A second Ctrl-C stops waiting for it."""
    cancel = threading.Event()
    events: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            for ev in agent.stream(question, history=history, cancel=cancel, **options):
                events.put(ev)
        except BaseException as exc:  # shown by the caller
            events.put(exc)
        finally:
            events.put(_DONE)

    from tooltoken import Final, TextDelta, ToolCall, ToolResult

    threading.Thread(target=work, name="tooltoken-chat", daemon=True).start()
    final, interrupts = None, 0
    while True:
        try:
            item = events.get(timeout=0.1)
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                view.end_text()
                raise item
            if interrupts:  # stopping: drop the rest, keep the Final
                if isinstance(item, Final):
                    final = item
                continue
            if isinstance(item, TextDelta):
                view.text_delta(item.text)
            elif isinstance(item, ToolCall):
                view.tool_call(item)
            elif isinstance(item, ToolResult):
                view.tool_result(item)
            elif isinstance(item, Final):
                final = item
        except queue.Empty:
            continue
        except KeyboardInterrupt:
            interrupts += 1
            cancel.set()
            if interrupts == 1:
                view.end_text()
                on_stop("(stopping…)")
            else:
                on_stop("(abandoned)")
                return None
    if final is not None:
        if final.stop_reason == "cancelled":
            view.end_text()
            on_stop("(stopped)")
        else:
            view.final(final)
    return final
