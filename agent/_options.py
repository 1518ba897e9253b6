"""`Options`: what one answer may do (tool choice, limits, checks), one set of defaults for every
interface. Sampling is the model's (`Sampling`, _sampling.py), not the answer's."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Options"]


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
    # said after an answer that used tools when what it states is not what they returned
    # (agent/_support.py has the rule; None: say nothing)
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
    # the model answers in words. None: no check; "auto": the answer policy's (agent/_policy.py: on,
    # at CALL_CHECK, for a caller's own tools on the direct path; off elsewhere and under "plain").
    call_check: float | str | None = "auto"
    # the support check (_support_check.py), off by default: an answer's verified citation keeps
    # its ✓ only if the model, asked on the side, says the cited source states the answer; below
    # this score (yes-no log-odds) the citations are shown unverified and the answer gets the
    # notice. On the default model's dev answers it flagged more right answers than wrong ones
    # (docs/results.md, "The support check"). None: no check.
    support_check: float | None = None
    # leave out of a call the optional string values that no user turn or tool result states, so
    # the function's default applies (_unstated.py); a warning names each value left out
    drop_unstated: bool = False
    # the answer policy (agent/_policy.py): "routed" sends each question down the math, lookup or
    # direct path; "plain" declares every tool and lets the model decide. A tool_choice other
    # than "auto" is the caller's own plan, and is answered plainly.
    policy: str = "routed"
