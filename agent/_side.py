"""Asking the model on the side: a yes-or-no question in a prompt of its own, rendered with the
model's chat template (the question holds untrusted text: never control tokens) and evaluated by
`Backend.side_logits`, which keeps the answer's KV cache, so the answer goes on where it was.
The score is log P(yes) - log P(no) over the first tokens of "yes"/"Yes" and "no"/"No".

The call check (_call_check.py) and the support check (_support_check.py) ask this way: asked
in the answer's own context, the model judged its own work right almost always; asked on its
own, it separates right from wrong (docs/results.md).
"""

from __future__ import annotations

import math
from typing import Any

from ._template import render


def yes_no(backend: Any) -> tuple[list[int], list[int]] | None:
    """The first tokens of "yes"/"Yes" and of "no"/"No"; None when the backend cannot say."""
    if getattr(backend, "side_logits", None) is None:
        return None
    first = {w: backend.tokenize(w, special=False)[:1] for w in ("yes", "Yes", "no", "No")}
    yes = sorted({t for w in ("yes", "Yes") for t in first[w]})
    no = sorted({t for w in ("no", "No") for t in first[w]} - set(yes))
    return (yes, no) if yes and no else None


def odds(backend: Any, system: str, question: str, words: tuple[list[int], list[int]]) -> float:
    """log P(yes) - log P(no) of the model's reply to `question` under `system`."""
    yes, no = words
    logits = backend.side_logits(tokens(backend, system, question), yes + no)
    return _logsumexp(logits[: len(yes)]) - _logsumexp(logits[len(yes) :])


def tokens(backend: Any, system: str, question: str) -> list[int]:
    """The side prompt: our system turn, the question as the user's (no control tokens in it)."""
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    pieces = render(backend.chat_template, messages, bos_token=backend.bos_text, eos_token=backend.eos_text,
                    trusted=frozenset({0}))
    out: list[int] = []
    for p in pieces:
        out += backend.tokenize(p.text, special=p.trusted)
    if backend.add_bos and backend.bos_text and not pieces[0].text.startswith(backend.bos_text):
        out = backend.tokenize(backend.bos_text, special=True) + out
    return out


def _logsumexp(xs: list[float]) -> float:
    top = max(xs)
    return top + math.log(sum(math.exp(x - top) for x in xs))
