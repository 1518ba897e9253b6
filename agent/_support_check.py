"""The support check (Options.support_check, off by default): an answer whose citation was
verified keeps its ✓ only if the model, asked on the side, says the cited source states it.

    Source: Shenzhen: Shenzhen is a prefecture-level city in Guangdong, China. ... bordering
            Hong Kong to the south, Dongguan to the north, ... and Macau to the southwest.
    Question: Which city borders Macau to the north and west?
    Answer: Shenzhen
    Does the source state this answer to the question? Answer yes or no.   → log P(yes) - log P(no)

A verified citation (agent/_citations.py) proves that the answer's names and figures occur in a
source about the question: string support. A small reader often copies the wrong name from the
right passage, and string support then puts a ✓ on a wrong answer. Below the threshold the
answer's citations are shown unverified, with the score as the reason, and the answer gets the
unsupported-answer notice, so a user is told what the sources do not back.

The answer checked is its first sentence that states something (the lookup path asks for the
answer first); the source is the one its first verified citation names, cut to the sentences that
share most words with the question and the answer (tools/search.py `passage`), so the side prompt
stays short (~150 tokens, 1.4 s on 2 cores). Asked on the side (agent/_side.py), never in the
answer's own context; an OpenAI-compatible server cannot be asked this way, so there it never runs.

Off by default: on the default model's dev answers (docs/results.md, "The support check") this
wording separated right from wrong answers with an AUC of 0.83, but at any threshold it flagged
more right answers than wrong ones (at 2.0: 8 of 75 right, 5 of 13 wrong), and a notice that is
wrong more often than right teaches users to ignore it. A larger model may judge better.
"""

from __future__ import annotations

from typing import Any

import regex

from tooltoken.tools.search import passage, query_terms

from ._events import Citation
from ._side import odds, yes_no
from ._support import SENTENCES, claims, prose

SUPPORT_SYSTEM = "You check answers against sources."
SUPPORT_QUESTION = ("Source: {source}\n\nQuestion: {question}\nAnswer: {answer}\n\n"
                    "Does the source state this answer to the question? Answer yes or no.")
SOURCE_SENTENCES, SOURCE_CHARS = 2, 500  # of the cited source shown to the check
_SPACE = regex.compile(r"\s+([.,;:!?])")  # where a marker was: "wrote it [1]." -> "wrote it."


def support_odds(backend: Any, question: str, answer: str, source: dict[str, Any]) -> float | None:
    """The model's yes-no log-odds that `source` states `answer` (one sentence) to `question`;
    None when the backend cannot say."""
    words = yes_no(backend)
    if words is None:
        return None
    text = passage(str(source.get("text", "")), query_terms(f"{question} {answer}"), sentences=SOURCE_SENTENCES,
                   chars=SOURCE_CHARS)
    title = str(source.get("title", "")).strip()
    shown = SUPPORT_QUESTION.format(source=f"{title}: {text}" if title else text, question=question[:1000],
                                    answer=answer[:300])
    return odds(backend, SUPPORT_SYSTEM, shown, words)


def first_claim(answer: str, question: str) -> str:
    """The answer's first sentence that states something beyond the question ("" if none), as
    written, without its `[n]` markers."""
    for sentence in SENTENCES.split(prose(answer)):
        if any(claims(sentence, question)):
            return _SPACE.sub(r"\1", " ".join(sentence.split()))
    return ""


def claim_and_source(answer: str, question: str, citations: list[Citation]) -> tuple[str, dict[str, Any]] | None:
    """The answer's first claim (first_claim) and the source of its first verified citation;
    None when there is nothing to check."""
    verified = [c for c in citations if c.verified]
    sentence = first_claim(answer, question) if verified else ""
    if not sentence:
        return None
    c = verified[0]
    source = next((s for s in c.sources or [] if s.get("id") and s.get("id") == c.source_id and s.get("text")), None)
    source = source or next((s for s in c.sources or [] if s.get("text")), None)
    return (sentence, source) if source is not None else None


def withdraw(citations: list[Citation], score: float, threshold: float) -> None:
    """Show `citations` unverified: the model judged the source does not state the answer."""
    why = ("asked whether the source states this answer, the model judged not "
           f"(yes-no log-odds {score:.2f} < {threshold:g})")
    for c in citations:
        if c.verified:
            c.verified, c.reason = False, why
