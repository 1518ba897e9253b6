"""Watching free text for a call, piece by piece: what may be shown now, and where a call began.

    >>> from tooltoken._families import trigger_pattern
    >>> w = Watch(trigger_pattern(["add"]), copied=lambda text: False)
    >>> w.feed("Sure. <tool"), w.feed("_call>")
    (('Sure. ', None), ('', Hit(at=6, match=...)))

Three concerns, each in its own method:
- hold-back: text that may still become a trigger is held, everything before it is shown;
- a copied call: a trigger that also occurs in a tool result is held until the model either
  departs from the result (its own call after all) or the copy ends (text: the document speaking);
- a made-up result: `<tool_response>` written by the model is its own invented tool result (the
  turn ends there), unless a call follows inside it (Qwen2.5-Coder writes calls that way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import regex

from ._calls import balanced

__all__ = ["END", "Hit", "Watch"]

# a call written inside a `<tool_response>` tag the model opened itself
_CALL_IN_RESULT = regex.compile(r'\s*\{\s*"(?:name|function)"\s*:\s*"(?P<name>[^"\\\n]{0,64})"')
COPY_LIMIT = 400  # characters of a suspected copy held before it is shown as text


@dataclass
class Hit:
    at: int  # offset in the watched text where the call begins
    match: Any  # the trigger's match (its groups name the tool, or the pythonic form)


END: Any = object()  # the model began writing a tool result itself: end its turn


class Watch:
    def __init__(self, trigger: regex.Pattern[str], copied: Callable[[str], bool]) -> None:
        self.trigger, self.copied = trigger, copied
        self.pending = ""  # held text
        self.held_from = 0  # its offset in the watched text
        self.warnings: list[str] = []
        self._suspect: Any = None  # a trigger match that also occurs in a tool result
        self._fake = 0  # length of a `<tool_response>` tag the model wrote itself (0: none)

    def feed(self, piece: str) -> tuple[str, Any]:
        """Add a piece; return (text to show now, None | Hit | END)."""
        self.pending += piece
        if self._suspect is not None:
            return self._copy()
        m = self.trigger.search(self.pending, partial=True)
        shown = self._show(m.start() if m else len(self.pending))
        if m and not m.partial and m.group("fake"):
            self._fake = len(m.group(0))
        if self._fake:
            return shown, self._made_up()
        if m and not m.partial:
            if self.copied(m.group(0)):
                self._suspect = m  # decide when the copy ends or departs from the result
                return shown, None
            return shown, Hit(self.held_from, m)
        return shown, None

    def flush(self) -> str:
        """Show what is held (the text ended, or it was text after all)."""
        return self._show(len(self.pending))

    def _show(self, cut: int) -> str:
        shown, self.pending = self.pending[:cut], self.pending[cut:]
        self.held_from += cut
        return shown

    def _copy(self) -> tuple[str, Any]:
        if not self.copied(self.pending):  # it wrote its own call after all
            return "", Hit(self.held_from, self._suspect)
        held = self.pending
        if len(held) >= COPY_LIMIT or balanced(held, "{", "}") or balanced(held, "(", ")"):
            self.warnings.append(f"a tool call copied from a tool result was left as text: {held!r}")
            self._suspect = None
            return self.flush(), None
        return "", None

    def _made_up(self) -> Any:
        call = _CALL_IN_RESULT.match(self.pending[self._fake:], partial=True)
        if call is None:  # it is making up a tool result
            self.warnings.append("the model began writing a tool result itself; its turn was ended there")
            self.pending = ""
            return END
        if not call.partial:  # Qwen2.5-Coder writes calls as <tool_response>{"function": ...}
            return Hit(self.held_from, call)
        return None
