"""Is an answer supported by what its tools returned? The rule behind the unsupported-answer notice.

    >>> supported("There are 5 green blocks.", "2 black, 4 white; 11 in all. How many green?",
    ...           ["black = 2\\nwhite = 4\\ngreen = 5"])
    True
    >>> supported("He painted it in 1483-1488.", "When did Michelangelo paint the ceiling?",
    ...           ["Michelangelo painted the ceiling between 1508 and 1512."])
    False
    >>> supported("The results do not say.", "Who won?", ["Weather in Oslo: rain."]) is None
    True

The notice ("No tool result supports this answer") is worth showing only when it is true: a
notice that fires on a right, sourced answer teaches users to ignore it. An answer's claims are
its figures (numbers, clock times, with `1,234` = 1234 and `12.50` = 12.5) and its names
(capitalised words); what the question itself says is not a claim of the answer. The rule:

- no claim left (a decline, "I could not find it"): None, nothing to support, no notice;
- every figure the answer states occurs among the figures of some result, and at least one
  figure or one name occurs there: True;
- otherwise False: the answer states a figure no result gave, or nothing it states is in one.

Code blocks and the calculator's output blocks are not the answer's claims: what the answer says
after them is. Numbers from two to ninety-nine in words count as figures ("twenty-four" = 24).
Not handled: other figures in words ("one", "three hundred"), units and rounding ("about 2.4 km" for
2.43), and names written differently in the result. Measured on labelled answers in
tests/test_support.py (false positives and false negatives counted there).
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

import regex

from tooltoken.tools.search import SENTENCE_BREAK, query_terms

__all__ = ["SENTENCES", "claims", "figures_of", "holds", "prose", "relevant", "supported"]

_FENCED = regex.compile(r"```.*?(?:```|\Z)", regex.S)
_CLOCK = regex.compile(r"(?<![\d:])(\d{1,2}):([0-5]\d)(?![\d:])")
# a comma after a number with thousands separators ends it when no digit follows ("$429,400, which")
_NUMBER = regex.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d|,\d)|(?<![\w.,])-?\d+(?:\.\d+)?(?![\d])")
_NAME = regex.compile(r"\b\p{Lu}[\p{Ll}'’-]{2,}(?:\s+(?:of\s+|the\s+|de\s+|da\s+|von\s+)?\p{Lu}[\p{Ll}'’-]+)*")
_MARKER = regex.compile(r"\[\d{1,3}\]")
SENTENCES = SENTENCE_BREAK  # where an answer's sentences end: where a source's do
# capitalised words that start sentences and name nothing
_COMMON = frozenset("""The This That These Those There Their They Then Thus Therefore Here His Her Its It
He She We You Your Our And But Yes No Not None Answer Total Result Results Step Steps First Second Third
Finally So Since Because After Before When Where Which What Who How Why According Based Each Every
All Some Many Most One Two Three Four Five Six Seven Eight Nine Ten Hence Also However While If
Hello Hi Hey Sure Sorry Thanks Thank Please Great Good Okay Well Note Let Let's Done Now Next Last
Yes Certainly Of Unfortunately Below Above Using With For From In On At To As By Is Are Was Were""".split())


_UNITS = "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen \
eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
# numbers written in words, two to ninety-nine ("one" is too often not a count: "one of the")
_DIGITS = ["one", *_UNITS[:8]]
_WORDS = {w: n for n, w in enumerate(_UNITS, 2)} | {w: 10 * n for n, w in enumerate(_TENS, 2)} | {
    f"{t} {u}": 10 * n + m for n, t in enumerate(_TENS, 2) for m, u in enumerate(_DIGITS, 1)} | {"dozen": 12}
_NUMBER_WORD = regex.compile(
    r"(?<![\p{L}-])(?:(?:" + "|".join(_TENS) + r")[- ](?:" + "|".join(_DIGITS) + r")|" + "|".join(_TENS + _UNITS)
    + r"|dozen)(?![\p{L}])", regex.I)


def figures_of(text: str) -> set[str]:
    """The figures in `text`, normalised: clock times as H:MM, numbers as exact values, and
    numbers from two to ninety-nine written in words ("twenty-four" is 24; a dozen is 12)."""
    out = {f"{int(h)}:{m}" for h, m in _CLOCK.findall(text)}
    rest = _CLOCK.sub(" ", text)
    for n in _NUMBER.findall(rest):
        value = _value(n.replace(",", ""))
        if value is not None:
            out.add(str(value))
    for w in _NUMBER_WORD.findall(rest):
        value = _WORDS.get(" ".join(w.lower().replace("-", " ").split()))
        if value is not None:
            out.add(str(value))
    return out


def _found(figure: str, found: set[str]) -> bool:
    """Whether `figure` is among the `found` figures: as it is, as a clock time's parts, or as
    one of them rounded to the figure's decimals ("about 1052.31 minutes" from 1052.307692...)."""
    if figure in found or _clock_parts(figure) <= found:
        return True
    value = _value(figure)
    if value is None or value.denominator == 1:  # a whole number is matched exactly
        return False
    places = next((d for d in range(1, 7) if 10 ** d % value.denominator == 0), None)
    if places is None:  # not a decimal as written (2/3)
        return False
    half = Fraction(1, 2 * 10 ** places)
    return any(v is not None and abs(v - value) <= half for v in map(_value, found))


def _value(figure: str) -> Fraction | None:
    try:
        return Fraction(figure)
    except (ValueError, ZeroDivisionError):
        return None


def _clock_parts(figure: str) -> set[str]:
    """A clock time's hours and minutes as figures (a program may work them out apart: `hours =
    15`, `minutes = 15`); an empty set keeps every other figure unmatched."""
    if ":" not in figure:
        return {figure + ":"}  # not a figure: never a subset of what was found
    hours, minutes = figure.split(":")
    return {str(int(hours)), str(int(minutes))}


def _names(text: str) -> set[str]:
    return {m.lower() for m in _NAME.findall(text) if m.split()[0] not in _COMMON}


def prose(answer: str, markers: bool = False) -> str:
    """What an answer says in words: code blocks, output blocks and (unless `markers`) `[n]`
    markers left out."""
    text = _FENCED.sub(" ", answer)
    return text if markers else _MARKER.sub(" ", text)


# the numbers of a numbered list ("1. Find the GCD", "2) Divide"): where a line opens one, they
# are the list's, not figures the answer states
_LIST_OPENS = regex.compile(r"(?m)^[ \t]*1[.)][ \t]+\S")
_ENUMERATOR = regex.compile(r"(?m)^([ \t]*)\d{1,2}[.)](?=[ \t]+\S)")


def claims(answer: str, question: str) -> tuple[set[str], set[str]]:
    """(figures, names) the answer states that the question does not (a name the question
    writes in lower case, "orange", is the question's too; a numbered list's own numbers are
    not figures)."""
    said, asked = prose(answer), question.lower()
    if _LIST_OPENS.search(said):
        said = _ENUMERATOR.sub(r"\1", said)
    names = {n for n in _names(said) - _names(question) if not regex.search(rf"(?<!\w){regex.escape(n)}(?!\w)", asked)}
    return figures_of(said) - figures_of(question), names


_words = query_terms  # topic words: lower-cased, no stop words (as passages are cut)


def holds(text: str, question: str, evidence: str) -> bool | None:
    """Does `evidence` hold what `text` (one sentence of an answer) states beyond the question?
    Its figures must all occur there, and one of its figures or names; a sentence with neither
    needs half of its own words there. None: the sentence states nothing beyond the question."""
    figures, names = claims(text, question)
    if not figures and not names:
        words = _words(prose(text)) - _words(question)
        if not words:
            return None
        return 2 * len(words & _words(evidence)) >= len(words)
    found = figures_of(evidence)
    if any(not _found(f, found) for f in figures):
        return False
    low = evidence.lower()
    return bool(figures) or any(name in low for name in names)


def relevant(question: str, evidence: str) -> bool:
    """Is `evidence` about the question at all: does it share a word (not a stop word) or a
    figure with it? A calculator's `1000 / 10000 = 0.1` is not about "How long do refunds
    take?", whatever figure an answer copies from it. An empty question: everything is."""
    words = _words(question)
    if not words and not figures_of(question):
        return True
    return bool(words & _words(evidence)) or bool(figures_of(question) & figures_of(evidence))


def supported(answer: str, question: str, results: Iterable[str]) -> bool | None:
    """True: the answer's claims come from the results; False: they do not; None: no claim."""
    figures, names = claims(answer, question)
    if not figures and not names:
        return None
    texts = [t for t in results if t]
    found = set().union(*(figures_of(t) for t in texts)) if texts else set()
    missing = {f for f in figures - found if not _found(f, found)}
    if missing:
        return False
    joined = " ".join(texts).lower()
    return bool(figures) or any(name in joined for name in names)
