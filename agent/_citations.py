"""Checking citations: every `[n]` in an answer is matched to the n-th tool result of that answer.

A citation is verified (shown ✓) only when the cited result supports what the answer says there:
- the result exists and did not fail;
- one of its sources (a search hit, a passage, an open document; the result text for a tool
  without sources) holds the sentence the marker sits in: its figures all occur there, and one
  of its figures or names (support.holds); a quote right before the marker ("..." or “...”)
  must occur there verbatim (whitespace aside), and a quote made with the browser's `quote` tool
  is its own evidence;
- that source is about the question: it shares a word or a figure with it (support.relevant).
  A calculator's `0.1` is never shown as the answer to "How long do refunds take?".
The citation names the source that holds the sentence (a search result's matching hit, not its
first one). Markers that point at nothing, or at a result that does not hold the sentence, are
kept and marked unverified with the reason, never dropped.

Small models often state a tool's fact without any marker ("Leo Tolstoy", "7006652"). Such facts
(numbers, names) found in a relevant result the answer did not cite get an `inferred` citation
whose quote is that fact: the framework cites the passage the fact was read from, so the user
still sees where each fact came from. A sentence whose names and figures are all the question's
or the call's own ("Orange is a tertiary colour in the RGB colour model") is cited by its other
words instead, when the source holds the sentence as support.holds asks of a marked one (with no
new figure or name: half its words beyond the question's); the quote is the first of them. A
fact the call itself named (the lookup path searches for the model's closed-book guess beside
the question) is cited only where a document's text holds the whole sentence that way too.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import regex

from tooltoken.tools.search import query_terms

from ._events import Citation, ToolCall, ToolResult
from ._support import SENTENCES, claims, figures_of, holds, prose, relevant

_MARKER = regex.compile(r"\[(\d{1,3})\]")
# a quoted span that ends at most ~3 characters before the marker: "words" [1] / “words,” [1]
_QUOTE = regex.compile(r'(?:"([^"\n]{3,400})"|“([^”\n]{3,400})”)\W{0,3}$')
# where the sentence of a marker begins (looking back) and ends (looking ahead)
_BACK = regex.compile(r"(?:[.!?](?=\s)|\n|\[\d{1,3}\])(?!.*(?:[.!?](?=\s)|\n|\[\d{1,3}\]))", regex.S)
_AHEAD = regex.compile(r"[.!?](?:\s|$)|\n|\[\d{1,3}\]")


def _norm(text: str) -> str:
    return " ".join(text.split())


def _sentence(answer: str, start: int, end: int) -> tuple[str, str]:
    """The words of the marker's sentence before it, and after it up to the sentence's end."""
    before = answer[max(0, start - 600):start].rstrip()
    if before.endswith((".", "!", "?")):  # "... is Gosse. [1]": the marker closes the sentence before it
        before = before[:-1]
    back = _BACK.search(before)
    head = before[back.end():] if back else before
    after = answer[end:end + 600]
    ahead = _AHEAD.search(after)
    return head, after[:ahead.start()] if ahead else after


def _evidence(result: ToolResult) -> list[dict[str, Any]]:
    """What a result offers as evidence: its sources, or its own text for a tool with none."""
    if result.sources:
        return [s for s in result.sources if s.get("text")] or [{"text": result.content}]
    return [{"text": result.content}]


def _supporting(claim: str, question: str, result: ToolResult, quote: str, asked: str) -> tuple[dict[str, Any] | None, str]:
    """The source of `result` that holds `claim` and is about the question (with `asked`, the
    call's arguments: `2+2` makes a calculator's `4` about "What is 2+2?"), or None and why not."""
    candidates = _evidence(result)
    if quote:
        candidates = [s for s in candidates if _norm(quote) in _norm(s.get("text", ""))]
        if not candidates and _norm(quote) in _norm(result.content):
            candidates = [{"text": result.content}]
        if not candidates:
            return None, "the quote does not occur in the cited result"
    about = [s for s in candidates if relevant(question, f"{s.get('title', '')} {s.get('text', '')} {asked}")]
    if not about:
        return None, "the cited result is not about the question"
    for source in about:
        said = holds(claim, question, source.get("text", ""))
        if said or (said is None and quote):
            return source, ""
        if said is None:
            return None, "the sentence states nothing the result could support"
    return None, "the cited result does not hold what the sentence states"


def check_citations(answer: str, calls: list[ToolCall], results: list[ToolResult], question: str = "") -> list[Citation]:
    """The citations of `answer`, checked against `results` (see the module docstring);
    `question`: the user's question, against which a source's relevance is judged."""
    by_id = {c.id: c for c in calls}
    out: list[Citation] = []
    seen: dict[int, Citation] = {}
    for m in _MARKER.finditer(answer):
        n = int(m.group(1))
        q = _QUOTE.search(answer[max(0, m.start() - 420) : m.start()])
        quote = (q.group(1) or q.group(2)) if q else ""
        if n in seen and not quote:
            continue
        if not 1 <= n <= len(results):
            citation = Citation(n, False, quote=quote, reason="no tool result has this number")
        else:
            r = results[n - 1]
            call = by_id.get(r.id)
            first = r.sources[0] if r.sources else {}
            citation = Citation(
                n, False, tool=r.name, arguments=call.arguments if call else {}, sources=r.sources,
                source_id=first.get("id", ""), title=first.get("title", ""), location=first.get("location", ""),
                quote=quote, reason="the tool failed" if r.error else "",
            )
            if not r.error:
                head, tail = _sentence(answer, m.start(), m.end())
                claim = head if any(claims(head, question)) else head + tail  # "According to [1], ..."
                asked = " ".join(str(v) for v in (call.arguments.values() if call else ()))
                source, why = _supporting(claim, question, r, quote, asked)
                citation.verified, citation.reason = source is not None, why
                if source is not None and source.get("id"):
                    citation.source_id = source["id"]
                    citation.title, citation.location = source.get("title", ""), source.get("location", "")
        seen.setdefault(n, citation)  # a later, quoted use of the same marker is checked too
        out.append(citation)
    verified = {n for n, c in seen.items() if c.verified}
    return out + _inferred(answer, calls, results, verified, question)


def _inferred(answer: str, calls: list[ToolCall], results: list[ToolResult], cited: set[int],
              question: str) -> list[Citation]:
    """Citations for what the answer states without a marker: the first claim of a sentence (a
    figure or a name beyond the question's) that a relevant source of a result not cited with a
    verified marker holds, found by the tool, not just echoed back from its call. The citation's
    quote is that claim. A sentence whose own marker to a result was not verified is never cited
    to that result this way ("... within 38 days. The policy says so [1]": the first sentence can
    be, the second not)."""
    by_id = {c.id: c for c in calls}
    # each uncited result's relevant sources, with what a fact is matched against, worked out once
    offered = []
    for r in results:
        if r.error or r.source in cited:
            continue
        call = by_id.get(r.id)
        args = " ".join(str(v) for v in (call.arguments.values() if call else ())).lower()
        echoed = figures_of(args)  # found by the tool, not just echoed back from its call
        sources = [(s, figures_of(t), echoed, t.lower(), query_terms(t))
                   for s in _evidence(r) for t in [s.get("text", "")]
                   if relevant(question, f"{s.get('title', '')} {t} {args}")]
        offered.append((r, call, args, sources))
    out: list[Citation] = []
    done: set[int] = set()
    for marked in SENTENCES.split(prose(answer, markers=True)):
        failed = {int(n) for n in _MARKER.findall(marked)}  # its markers (a verified one is in `cited`)
        sentence = prose(marked)
        figures, names = claims(sentence, question)
        low = sentence.lower()
        said = sorted([*figures, *names], key=lambda c: (low.find(c.lower()) % (len(low) + 1), c))  # as written
        # what else it says ("a tertiary colour", "uchigatana"): its words beyond the question's
        words = sorted(query_terms(sentence) - query_terms(question), key=lambda w: (low.find(w), w))
        for r, call, args, sources in offered if said or words else ():
            if r.source in done or r.source in failed:
                continue
            for source, every, echoed, text_low, terms in sources:
                found = [c for c in said if (c in every - echoed if c in figures else c in text_low and c not in args)]
                if not found and said and r.sources and holds(sentence, question, text_low):
                    # the call named it (the lookup path's query holds the model's closed-book
                    # guess), but a document's own text holds the sentence as a marked one must
                    found = [c for c in said if c in (every if c in figures else text_low)]
                if not found and words:  # the source holds the sentence (support.holds), by words not
                    hit = [w for w in words if w in terms]  # all echoed from the call
                    new = r.sources or any(w not in args for w in hit)  # a document's words are its own
                    found = hit if new and holds(sentence, question, text_low) else []
                if found:  # the fact came from this source (what else its sentence says is not checked)
                    out.append(Citation(
                        r.source, True, tool=r.name, arguments=call.arguments if call else {}, sources=r.sources,
                        source_id=source.get("id", ""), title=source.get("title", ""),
                        location=source.get("location", ""), quote=_span(source.get("text", ""), _shown(found[0])),
                        inferred=True,
                    ))
                    done.add(r.source)
                    break
    return out


def _shown(fact: str) -> str:
    """A claim as a reader writes it: a figure kept as an exact fraction (`23/10`) as a decimal."""
    if "/" in fact and ":" not in fact:
        return format(float(Fraction(fact)), "g")
    return fact


def _span(text: str, fact: str) -> str:
    """`fact` as `text` writes it (claims are lower-cased names or normalised figures)."""
    at = text.lower().find(fact.lower())
    return text[at:at + len(fact)] if at >= 0 else fact
