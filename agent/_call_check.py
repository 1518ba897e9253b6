"""The call check (Options.call_check): before a call the model chose to make runs, the same model
is asked on the side whether calling that function does what the request asks.

    Request: What is the mass of an electron?
    Function: calculate_current   What it does: ...   Parameters: ...
    Does calling this function do what the request asks? Answer yes or no.   → log P(yes) - log P(no)

The question is a prompt of its own, rendered with the model's chat template (the request is
untrusted text: never control tokens), evaluated by `Backend.side_logits`, which keeps the
answer's KV cache. Asked in the answer's own context right after its call, the model judged its
call right almost always; asked on its own, it separates them (figures at CHECK_QUESTION).
"""

from __future__ import annotations

import math
from typing import Any

from tooltoken.tools import Tool

from ._formats import Call
from ._template import render

# Chosen on BFCL items that no published run uses (held out), on Qwen2.5-Coder-1.5B:
# - asked in the answer's own context: 0.38 to 1.56 for calls to an unrelated function, 1.44 to 1.89
#   for right calls;
# - on its own, system prompt "You check tool calls.": -0.12 to 0.62 (and one 2.10) for 7 unrelated
#   calls, 1.15 to 2.42 for 14 right ones (threshold 0.9); on a second held-out set -0.23 to 1.46
#   for 7 unrelated, 1.21 to 2.65 for 10 right;
# - on that second set, told what yes and no mean ("Answer yes only if the function, as described,
#   does what the request asks. If the request asks for something the function does not do, answer
#   no."): -2.04 to 0.48 unrelated, 1.05 to 2.53 right. On the published items that took BFCL
#   irrelevance from 0.70 to 0.90 but dropped 8 of the first 23 simple_python calls (0.20-0.87), all
#   8 right, so it is not used. A two-example few-shot prompt did worse on the held-out set.
CHECK_SYSTEM = "You check tool calls."
CHECK_QUESTION = "Does calling this function do what the request asks? Answer yes or no."
# said to the model, in the user's turn, after a call was taken back
DECLINED_NOTE = "Calling {names} does not do what I asked. Answer me in words, without calling a tool."


def judge(backend: Any, tools: dict[str, Tool], request: str, calls: list[Call]) -> float | None:
    """The lowest yes-no log-odds over the functions `calls` name; None if the backend cannot say."""
    side = getattr(backend, "side_logits", None)
    if side is None:
        return None
    first = {w: backend.tokenize(w, special=False)[:1] for w in ("yes", "Yes", "no", "No")}
    yes = sorted({t for w in ("yes", "Yes") for t in first[w]})
    no = sorted({t for w in ("no", "No") for t in first[w]} - set(yes))
    if not yes or not no:
        return None
    scores = []
    for name in dict.fromkeys(str(c.name) for c in calls):
        logits = side(_prompt(backend, tools[name], request), yes + no)
        scores.append(_logsumexp(logits[: len(yes)]) - _logsumexp(logits[len(yes) :]))
    return min(scores) if scores else None


def opening_token(backend: Any, call_open: str) -> list[int]:
    """The call opening's token, when it is one special token (`<tool_call>`, `[TOOL_CALLS]`): what
    is banned once a call was taken back."""
    opening = call_open.strip()
    tokens = backend.tokenize(opening, special=True)
    return tokens if len(tokens) == 1 and tokens != backend.tokenize(opening, special=False) else []


def _prompt(backend: Any, tool: Tool, request: str) -> list[int]:
    props = tool.parameters.get("properties") or {}
    params = "; ".join(f"{k}: {v.get('description', '')}"[:200] for k, v in props.items() if isinstance(v, dict))
    question = (f"Request: {request[:1000]}\n\nFunction: {tool.name}\nWhat it does: {tool.description[:600]}\n"
                f"Parameters: {params[:600]}\n\n{CHECK_QUESTION}")
    messages = [{"role": "system", "content": CHECK_SYSTEM}, {"role": "user", "content": question}]
    pieces = render(backend.chat_template, messages, bos_token=backend.bos_text, eos_token=backend.eos_text,
                    trusted=frozenset({0}))
    tokens: list[int] = []
    for p in pieces:
        tokens += backend.tokenize(p.text, special=p.trusted)
    if backend.add_bos and backend.bos_text and not pieces[0].text.startswith(backend.bos_text):
        tokens = backend.tokenize(backend.bos_text, special=True) + tokens
    return tokens


def _logsumexp(xs: list[float]) -> float:
    top = max(xs)
    return top + math.log(sum(math.exp(x - top) for x in xs))
