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

The question is a prompt of its own, asked on the side (agent/_side.py: the model's chat
template, the request as untrusted text, `Backend.side_logits`, the answer's KV cache kept).
Asked in the answer's own context right after its call, the model judged its call right almost
always; asked on its own, it separates them (docs/results.md, "How the call check was chosen").
"""

from __future__ import annotations

import json
from typing import Any

from tooltoken.tools import Tool

from ._families import Call
from ._side import odds, yes_no

# How the wordings, the prompt and the thresholds were chosen, on held-out BFCL items, and what
# did worse: docs/results.md, "How the call check was chosen".
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
    words = yes_no(backend)
    if words is None:
        return None

    def mean(*questions: str) -> float:
        return sum(odds(backend, CHECK_SYSTEM, q, words) for q in questions) / len(questions)

    scores = [mean(*_function_questions(tools[name], request)) for name in dict.fromkeys(str(c.name) for c in calls)]
    scores += [mean(*_values_questions(c, request)) + VALUES_OFFSET for c in calls if c.arguments]
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
