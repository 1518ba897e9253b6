"""Scorers: numbers, lenient answer matching, citation precision, recall@k and MRR. Pure functions.

    >>> extract_number("12 x 2 = 24, so 24 + 34 + 12 = 70.\\nAnswer: 70")
    Fraction(70, 1)
    >>> numeric_match("Answer: 1,234.0", "1234")
    True
    >>> contains_match("It was written by Leo Tolstoy [1].", ["Tolstoy"])
    True
    >>> recall_at_k(["a", "b", "c"], ["c", "z"], k=3), reciprocal_rank(["a", "b", "c"], ["c"], k=3)
    (0.5, 0.3333333333333333)

Numbers are compared exactly, as fractions: `25`, `25.0` and `25.00` are equal, `24.99` is not.
An answer's number is the one after its last "Answer:" (or "answer is"), else its last number.
Thousands separators (`1,234`), a leading currency sign and `\\boxed{}` are accepted.

Answer matching follows Toolformer (Schick et al. 2023, §4.2): lenient, the gold answer only has
to occur in the first 20 words of the prediction, after SQuAD-style normalisation (lowercase, no
punctuation, no articles, single spaces).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

import regex

__all__ = [
    "citation_precision",
    "contains_match",
    "declines",
    "extract_number",
    "narrates",
    "normalize_answer",
    "numeric_match",
    "parse_number",
    "recall_at_k",
    "reciprocal_rank",
    "source_supports",
]

_NUMBER = re.compile(r"(?<![\w.])[-−]?[$€£]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?(?![\w])")
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_FINAL = re.compile(r"(?:answer\s*(?:is|:)|=\s*\\boxed\{|\\boxed\{)", re.IGNORECASE)


def parse_number(text: str) -> Fraction | None:
    """A number written as a person or a model would: `-1,234.50`, `$12`, `3/4`, `−7`."""
    t = text.strip().replace("−", "-").replace(" ", "")
    t = re.sub(r"^(-?)[$€£]", r"\1", t).rstrip(".")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", t):
        t = t.replace(",", "")
    try:
        if "/" in t:
            num, den = t.split("/", 1)
            return Fraction(int(num), int(den)) if int(den) != 0 else None
        return Fraction(t)
    except (ValueError, ZeroDivisionError):
        return None


def extract_number(text: str, question: str = "") -> Fraction | None:
    """The final answer's number in a model's reply (see the module docstring), or None.

    With an answer marker ("Answer:", "the answer is", \\boxed{), the first number after the last
    one. Otherwise the reply's last line of prose (code blocks aside) states the answer: its last
    number that the `question` does not give ("Ana has 15 eggs left after baking 11 batches" → 15
    when the question gave 11; "19 - 12 = 7" → 7), else the last number of the reply."""
    if not text:
        return None
    start = 0
    for m in _FINAL.finditer(text):
        start = m.end()
    tail = text[start:] if start else text
    found = _NUMBER.findall(tail)
    if start and found:
        return parse_number(found[0])
    given = {parse_number(n) for n in _NUMBER.findall(question)} if question else set()
    prose = [line for line in _FENCE.sub("\n", text).splitlines() if _NUMBER.search(line)]
    if given and prose:
        fresh = [v for v in map(parse_number, _NUMBER.findall(prose[-1])) if v is not None and v not in given]
        if fresh:
            return fresh[-1]
    found = found or _NUMBER.findall(text)
    return parse_number(found[-1]) if found else None


def numeric_match(prediction: str, gold: str | float | Fraction) -> bool:
    """Exact numeric equality of the reply's final number and the gold answer."""
    want = gold if isinstance(gold, Fraction) else parse_number(str(gold))
    got = extract_number(prediction)
    return want is not None and got is not None and got == want


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lowercase, drop punctuation and a/an/the, squeeze spaces."""
    text = text.lower()
    text = "".join(ch if ch not in _PUNCT else " " for ch in text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_PUNCT = set(string.punctuation) | {"‘", "’", "“", "”", "–", "—"}


def contains_match(prediction: str, answers: Iterable[str], first_words: int | None = 20) -> bool:
    """Toolformer's lenient match: some gold answer occurs, normalised and on word boundaries,
    in the first `first_words` words of the prediction (None: anywhere)."""
    words = normalize_answer(prediction).split()
    if first_words is not None:
        words = words[:first_words]
    hay = f" {' '.join(words)} "
    for a in answers:
        na = normalize_answer(str(a))
        if na and f" {na} " in hay:
            return True
    return False


def source_supports(source: dict[str, Any], answers: Iterable[str]) -> bool:
    """A source (a tool result's `Source` as a dict) whose text or title contains a gold answer."""
    text = f" {normalize_answer(str(source.get('title', '')) + ' ' + str(source.get('text', '')))} "
    return any((na := normalize_answer(str(a))) and f" {na} " in text for a in answers)


def citation_precision(citations: Sequence[dict[str, Any]], answers: Iterable[str]) -> tuple[int, int]:
    """(supporting, verified): of the verified citations, how many point at a result with a source
    containing a gold answer. Precision is the ratio; summed over items it is micro-averaged."""
    answers = list(answers)
    verified = [c for c in citations if c.get("verified")]
    good = sum(1 for c in verified if any(source_supports(s, answers) for s in c.get("sources") or []))
    return good, len(verified)


def recall_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """Share of the relevant ids found in the first k results."""
    rel = set(relevant)
    if not rel:
        return 0.0
    return len(rel & set(ranked[:k])) / len(rel)


def reciprocal_rank(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """1 / rank of the first relevant id within the first k results (1-based); 0 if none."""
    rel = set(relevant)
    for i, r in enumerate(ranked[:k], 1):
        if r in rel:
            return 1.0 / i
    return 0.0


# Narration of tool use: the answer talks about the tools instead of answering ("I used the
# `search` function with the query ...", "The function call was ...", "The result came from
# tool number [1]", "the calculator returned ..."). Measured by the math and qa suites
# (`narrated`): an answer should state what it found, not how.
_NARRATION = regex.compile(
    r"\b(?:I|we)(?:\s+(?:have|will|shall|can)|'ll|'ve)?\s+(?:used?|call(?:ed)?|invoked?|ran|run|searched|"
    r"am\s+going\s+to\s+(?:use|call))\s+(?:the\s+|a\s+|an\s+)?(?:`\w+`|\w+\s+(?:function|tool)|calculator|search|"
    r"function|tool)"
    r"|\b(?:I|we)\s+(?:have\s+)?(?:used|called|invoked|searched)\b"
    r"|\b(?:function|tool)\s+call(?:s|ed)?\b"
    r"|\b(?:the|this|that)\s+(?:`\w+`\s+|search\s+|calculator\s+|open\s+|find\s+|quote\s+)?(?:function|tool)\s+(?:returned|gave|showed|provided|output|result)"
    r"|\b(?:error\s+message|tool|function|calculator)\s+(?:\w+\s+){0,3}(?:does\s+not|doesn't|cannot|can't)\s+(?:recognize|support|understand)"
    r"|\b(?:search|tool|function|calculator)\s+results?\s+(?:provided|returned|show(?:s|ed)?|indicate[sd]?|say|said)\b"
    r"|\b(?:the\s+)?calculator\s+(?:returned|returns|gave|shows|showed|says|said|output)\b"
    r"|\btool\s+(?:number|result)\b|\bresult\s+came\s+from\b|\b(?:let\s+me|let's)\s+(?:use|call|search)\b"
    r"|<tool_call>|\bcalled\s+the\s+`?\w+`?\s+(?:function|tool)",
    regex.I,
)


_DECLINE = regex.compile(
    r"\b(?:do|does|did)\s+not\s+(?:say|mention|state|specify|provide|contain|include|give)\b"
    r"|\b(?:don't|doesn't|didn't)\s+(?:say|mention|state|specify|provide|contain|include|give)\b"
    r"|\bno\s+(?:information|mention|answer|result)s?\b|\b(?:cannot|can't|could\s+not|couldn't)\s+(?:find|determine|answer)\b"
    r"|\bnot\s+(?:mentioned|stated|specified|provided|found|available)\b",
    regex.I,
)


def declines(answer: str) -> bool:
    """Does the answer say the sources do not hold the answer ("The results do not say ...")?"""
    return bool(_DECLINE.search(answer or ""))


def narrates(answer: str) -> bool:
    """Does the answer narrate its tool use instead of (or besides) answering? The framework's
    own unsupported-answer notice is not the model's narration."""
    from tooltoken import Options

    notice = Options.unsupported_notice or ""
    return bool(_NARRATION.search((answer or "").replace(notice, "") if notice else (answer or "")))
