"""Checking citations: every `[n]` in an answer is matched to the n-th tool result of that answer.

A citation is verified when the result exists and did not fail. When the answer quotes words
right before the marker ("..." or “...”), the quote must occur verbatim (whitespace aside) in one
of that result's sources or in the result text itself; a quote made with the browser's `quote`
tool is its own evidence. Markers that point at nothing are kept and marked unverified, never
dropped.

Small models often state a tool's fact without any marker ("Leo Tolstoy", "7006652"). Such facts
(numbers, names, quoted words) found verbatim in a result the answer did not cite get an
`inferred` citation, so the user still sees where each fact came from.
"""

from __future__ import annotations

import regex

from ._events import Citation, ToolCall, ToolResult

_MARKER = regex.compile(r"\[(\d{1,3})\]")
# a quoted span that ends at most ~3 characters before the marker: "words" [1] / “words,” [1]
_FACT = regex.compile(r"\d[\d,.]*\d|\d{2,}|\p{Lu}\p{Ll}+(?:\s+(?:of\s+|the\s+|de\s+)?\p{Lu}\p{Ll}+)+")
_QUOTE = regex.compile(r'(?:"([^"\n]{3,400})"|“([^”\n]{3,400})”)\W{0,3}$')


def _norm(text: str) -> str:
    return " ".join(text.split())


def check_citations(answer: str, calls: list[ToolCall], results: list[ToolResult]) -> list[Citation]:
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
                n,
                not r.error,
                tool=r.name,
                arguments=call.arguments if call else {},
                sources=r.sources,
                source_id=first.get("id", ""),
                title=first.get("title", ""),
                location=first.get("location", ""),
                quote=quote,
                reason="" if not r.error else "the tool failed",
            )
            if quote and citation.verified:
                hit = next((s for s in r.sources if _norm(quote) in _norm(s.get("text", ""))), None)
                if hit is None and _norm(quote) not in _norm(r.content):
                    citation.verified = False
                    citation.reason = "the quote does not occur in the cited result"
                elif hit is not None:
                    citation.source_id = hit["id"]
                    citation.title, citation.location = hit.get("title", ""), hit.get("location", "")
        seen.setdefault(n, citation)  # a later, quoted use of the same marker is checked too
        out.append(citation)
    return out + _inferred(answer, calls, results, set(seen))


def _inferred(answer: str, calls: list[ToolCall], results: list[ToolResult], cited: set[int]) -> list[Citation]:
    facts = list(dict.fromkeys(m.group(0) for m in _FACT.finditer(_MARKER.sub("", answer))))
    by_id = {c.id: c for c in calls}
    out = []
    for r in results:
        if r.error or r.source in cited:
            continue
        call = by_id.get(r.id)
        args = " ".join(str(v) for v in (call.arguments.values() if call else ()))
        for fact in facts:
            if fact in r.content and fact not in args:  # found by the tool, not just echoed back
                hit = next((s for s in r.sources if fact in s.get("text", "")), r.sources[0] if r.sources else {})
                out.append(Citation(
                    r.source, True, tool=r.name, arguments=call.arguments if call else {}, sources=r.sources,
                    source_id=hit.get("id", ""), title=hit.get("title", ""), location=hit.get("location", ""),
                    quote=fact, inferred=True,
                ))
                break
    return out
