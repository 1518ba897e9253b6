"""The call check (Options.call_check): before a call the model chose to make runs, the same model
is asked on the side two questions, each in two wordings, each wording in a prompt of its own:
whether calling that function does what the request asks, and whether the request gives the
values the call passes.

    Request: What is the mass of an electron?
    Function: calculate_current   What it does: ...   Parameters: ...
    Does calling this function do what the request asks? Answer yes or no.   → log P(yes) - log P(no)

    Tool: calculate_current   Description: ...   Arguments: ...
    Request: What is the mass of an electron?
    Is this tool the right one to carry out the request? Answer yes or no.   → log-odds

    Request: What is the mass of an electron?
    Call: calculate_current(voltage=10, resistance=5)
    Does the request give, or clearly imply, every argument value in this call? ...  → log-odds
    (and: Are the argument values of this call taken from the request, or clearly implied by it?)

A question's score is the mean of its two wordings' log-odds; the call's score is the lower of
the function question's and the values question's plus VALUES_OFFSET (one threshold).

The question is a prompt of its own, rendered with the model's chat template (the request is
untrusted text: never control tokens), evaluated by `Backend.side_logits`, which keeps the
answer's KV cache. Asked in the answer's own context right after its call, the model judged its
call right almost always; asked on its own, it separates them (figures at CHECK_QUESTION).
"""

from __future__ import annotations

import json
import math
from typing import Any

from tooltoken.tools import Tool

from ._families import Call
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
# - the values question (2026-12-04; 30 held-out irrelevance items, 23 calls to a declared function,
#   5 to invented ones; 46 right calls of 30 simple_python and 20 multiple held-out items): values
#   log-odds -0.38 to 0.90 for the unrelated calls, 0.20 to 1.42 for the right ones, where the
#   function question alone gives -0.31 to 2.14 and 0.89 to 2.48. Declining below 0.9 on the function
#   question or below 0.35 on the values one made no call on 28 of 30 irrelevance items (function
#   question alone: 21 of 30) and kept 44 of 46 right calls (alone: 45 of 46). Asking the function
#   question with the call shown did not separate better (unrelated 0.17 to 1.75, right 1.13 to 2.30).
# - the second wordings (2026-12-04, stop 15), chosen on a held-out set built from 40 simple_python
#   items no run had used: each question with its own function and the 3 functions of other items
#   most like it below MiniLM similarity 0.5 ('multiple'-like: 33 right calls), and alone with the
#   first of those ('irrelevance'-like: 25 calls, after leaving out 3 whose function could serve
#   the request). The first wordings alone (threshold 0.9): 32 of 33 right
#   calls kept, 23 of 25 unrelated declined, lowest right 0.90 against unrelated up to 0.98 (and one
#   1.54). The mean of both wordings: lowest right 1.11, unrelated up to 1.06 (and one 1.60); at
#   1.05, 33 of 33 kept and 23 of 25 declined (at 1.1, 24 of 25, but 0.01 below the lowest right
#   call). The second wordings alone overlap more (lowest right 0.97, unrelated up to 1.08), and a
#   relative question listing every declared function ("Answer with its number, or 0 if none") did
#   not separate at all (right calls -2.32 to 0.47, unrelated -0.43 to 0.22).
CHECK_SYSTEM = "You check tool calls."
CHECK_QUESTION = "Does calling this function do what the request asks? Answer yes or no."
CHECK_QUESTION_2 = "Is this tool the right one to carry out the request? Answer yes or no."
VALUES_QUESTION = "Does the request give, or clearly imply, every argument value in this call? Answer yes or no."
VALUES_QUESTION_2 = ("Are the argument values of this call taken from the request, or clearly implied by it? "
                     "Answer yes or no.")
VALUES_OFFSET = 0.55  # the values question's threshold sits this much below the function question's
# said to the model, in the user's turn, after a call was taken back
DECLINED_NOTE = "Calling {names} does not do what I asked. Answer me in words, without calling a tool."


def judge(backend: Any, tools: dict[str, Tool], request: str, calls: list[Call]) -> float | None:
    """The lowest score over `calls`: min(function log-odds, values log-odds + VALUES_OFFSET), each
    the mean over its two wordings, the function question asked once a function; None if the backend
    cannot say."""
    side = getattr(backend, "side_logits", None)
    if side is None:
        return None
    first = {w: backend.tokenize(w, special=False)[:1] for w in ("yes", "Yes", "no", "No")}
    yes = sorted({t for w in ("yes", "Yes") for t in first[w]})
    no = sorted({t for w in ("no", "No") for t in first[w]} - set(yes))
    if not yes or not no:
        return None

    def odds(*questions: str) -> float:
        total = 0.0
        for question in questions:
            logits = side(_tokens(backend, question), yes + no)
            total += _logsumexp(logits[: len(yes)]) - _logsumexp(logits[len(yes) :])
        return total / len(questions)

    scores = [odds(*_function_questions(tools[name], request)) for name in dict.fromkeys(str(c.name) for c in calls)]
    scores += [odds(*_values_questions(c, request)) + VALUES_OFFSET for c in calls if c.arguments]
    return min(scores) if scores else None


def opening_token(backend: Any, call_open: str) -> list[int]:
    """The call opening's token, when it is one special token (`<tool_call>`, `[TOOL_CALLS]`): what
    is banned once a call was taken back."""
    opening = call_open.strip()
    tokens = backend.tokenize(opening, special=True)
    return tokens if len(tokens) == 1 and tokens != backend.tokenize(opening, special=False) else []


def _function_questions(tool: Tool, request: str) -> tuple[str, str]:
    props = tool.parameters.get("properties") or {}
    params = "; ".join(f"{k}: {v.get('description', '')}"[:200] for k, v in props.items() if isinstance(v, dict))
    what, params, request = tool.description[:600], params[:600], request[:1000]
    return (f"Request: {request}\n\nFunction: {tool.name}\nWhat it does: {what}\nParameters: {params}\n\n"
            f"{CHECK_QUESTION}",
            f"Tool: {tool.name}\nDescription: {what}\nArguments: {params}\n\nRequest: {request}\n\n"
            f"{CHECK_QUESTION_2}")


def _values_questions(call: Call, request: str) -> tuple[str, str]:
    args = ", ".join(f"{k}={json.dumps(v, default=str)[:200]}" for k, v in call.arguments.items())
    shown = f"Request: {request[:1000]}\n\nCall: {call.name}({args[:800]})\n\n"
    return shown + VALUES_QUESTION, shown + VALUES_QUESTION_2


def _tokens(backend: Any, question: str) -> list[int]:
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
