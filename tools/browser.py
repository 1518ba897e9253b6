"""WebGPT's action set as tools: search, open a result, find in page, quote.

    >>> browser = Browser(backend)                       # doctest: +SKIP
    >>> print(browser.search("war and peace author").content)   # doctest: +SKIP
    - War and Peace (id: enwiki:War_and_Peace)
        War and Peace is a literary work by the Russian author Leo Tolstoy. ...
    >>> browser.open("1").content.splitlines()[3]        # doctest: +SKIP
    'L1: War and Peace is a literary work by the Russian author Leo Tolstoy. It is regarded ...'
    >>> browser.quote("the Russian author Leo Tolstoy").sources[0].id   # doctest: +SKIP
    'enwiki:War_and_Peace'

One `Browser` per answer: it holds the last results and the open document. `Browser.tools()`
gives the four `Tool`s for the controller. Every output is a `ToolOutput` whose `Source`s carry
the backend's stable ids, so the controller can number and check citations:
- search: one source per hit (text = the passage shown: the hit's first sentence and the ones
  that match the query). Hits are not numbered: an answer's `[n]` names the n-th tool result,
  and a citation of a search result is checked against each of its hits;
- open and find: the document (text = the whole document, location = URL plus the line range);
- quote: the document, with the quoted span as text and its lines in the location. A quote is
  accepted only if it occurs verbatim in the open document; only whitespace is normalised
  (runs of spaces and line breaks match each other), never case or punctuation.

Documents are shown as numbered lines (`L12: ...`) wrapped at `width` characters, `page_lines`
lines per page. Mistakes (no open document, unknown id, quote not found) raise `BrowserError`
with a message meant for the model; the controller turns it into a tool result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from ._errors import ToolError
from ._tool import Source, Tool, ToolOutput, tool
from .search import Document, Hit, SearchBackend, split_sentences

__all__ = ["Browser", "BrowserError"]

_MAX_QUOTE = 1000
_MAX_SENTENCES = 200  # of the open document, offered to the quote grammar
_MAX_QUERY = 200  # characters of a search query (the call grammar stops a looping model there)


class BrowserError(ToolError):
    """A browsing action the model asked for cannot be done (the message says what to do)."""


@dataclass
class _Page:
    """An open document cut into lines: (start, end) character offsets into `doc.text`."""

    doc: Document
    lines: list[tuple[int, int]]
    norm: str  # the text with every run of whitespace made one space
    norm_to_text: list[int]  # offset in `norm` -> offset in `doc.text`


class Browser:
    """Browsing state for one answer over a `SearchBackend` (see the module docstring)."""

    def __init__(self, backend: SearchBackend, *, k: int = 3, page_lines: int = 30, width: int = 100) -> None:
        self.backend = backend
        self.k = k
        self.page_lines = page_lines
        self.width = width
        self.results: list[Hit] = []
        self.quotes: list[Source] = []
        self._page: _Page | None = None

    @property
    def document(self) -> Document | None:
        return self._page.doc if self._page else None

    def search(self, query: str) -> ToolOutput:
        query = " ".join(query.split())
        if not query:
            raise BrowserError("search needs a query: a few words about what you are looking for")
        self.results = self.backend.search(query, self.k)
        if not self.results:
            return ToolOutput(f'No results for "{query}". Try other or fewer words.')
        out = [f'Results for "{query}":']
        for hit in self.results:  # unnumbered: `[n]` in an answer names a tool result, not a hit
            out.append(f"- {hit.title} (id: {hit.id})")
            if hit.snippet:
                out.append(f"    {hit.snippet}")
        out += _attribution_lines({h.attribution for h in self.results})
        out.append(f'Open a result with open(id), e.g. open(id="{self.results[0].id}").')
        sources = [Source(h.id, h.title, h.location, h.snippet) for h in self.results]
        return ToolOutput("\n".join(out), sources)

    def open(self, id: str, page: int = 1) -> ToolOutput:
        doc = self.backend.get(self._resolve(id))
        self._page = _cut(doc, self.width)
        return self._show(page)

    def find(self, text: str) -> ToolOutput:
        page = self._need_page()
        needle = " ".join(text.split()).lower()
        if not needle:
            raise BrowserError("find needs some text to look for")
        haystack = page.norm.lower()
        found: list[int] = []
        at = haystack.find(needle)
        while at >= 0 and len(found) < 10:
            first, last = _span_lines(page, at, at + len(needle))
            found += [n for n in range(first, last + 1) if n not in found]
            at = haystack.find(needle, at + 1)
        doc = page.doc
        if not found:
            return ToolOutput(f'"{text.strip()}" does not occur in {doc.title} (id: {doc.id}).')
        out = [f'"{text.strip()}" in {doc.title} (id: {doc.id}):']
        for n in found:
            out.append(f"L{n + 1} (page {n // self.page_lines + 1}): {_line(page, n)}")
        return ToolOutput("\n".join(out), [Source(doc.id, doc.title, doc.location, doc.text)])

    def quote(self, text: str) -> ToolOutput:
        page = self._need_page()
        doc = page.doc
        needle = " ".join(text.split())
        if not needle:
            raise BrowserError("quote needs the exact words to quote from the open document")
        if len(needle) > _MAX_QUOTE:
            raise BrowserError(f"a quote may be at most {_MAX_QUOTE} characters; quote the sentence that matters")
        at = page.norm.find(needle)
        if at < 0:
            hint = "use find(text) to locate the words, then copy them exactly"
            if page.norm.lower().find(needle.lower()) >= 0:
                hint = "the words are there but with different letter case; copy them exactly"
            raise BrowserError(f"that text does not occur verbatim in {doc.title} (id: {doc.id}); {hint}")
        start, end = page.norm_to_text[at], page.norm_to_text[at + len(needle) - 1] + 1
        first, last = _span_lines(page, at, at + len(needle))
        lines = f"lines {first + 1}-{last + 1}" if last > first else f"line {first + 1}"
        location = f"{doc.location} ({lines})" if doc.location else lines
        source = Source(doc.id, doc.title, location, doc.text[start:end])
        self.quotes.append(source)
        return ToolOutput(f'Quote saved from {doc.title} (id: {doc.id}, {lines}): "{needle}"', [source])

    def tools(self) -> list[Tool]:
        """The four actions as `Tool`s named search, open, find and quote."""

        def search(query: Annotated[str, Field(max_length=_MAX_QUERY)]) -> ToolOutput:
            """Search the knowledge base. Returns results with ids, titles and passages.

            query: a few keywords that name what the question asks about
            """
            return self.search(query)

        def open(id: str, page: int = 1) -> ToolOutput:
            """Open a search result and read it as numbered lines (long documents have pages).

            id: the id of a result from the last search
            page: which page of the document to show, starting at 1
            """
            return self.open(id, page)

        def find(text: str) -> ToolOutput:
            """Find text in the open document; returns the matching lines with their numbers.

            text: the words to look for (case does not matter)
            """
            return self.find(text)

        def quote(text: str) -> ToolOutput:
            """Save a quote from the open document to cite in the answer. The text must be copied
            exactly from the document.

            text: the exact words from the open document
            """
            return self.quote(text)

        tools = [tool(f) for f in (search, open, find, quote)]
        tools[1].grammar_parameters = self._open_schema
        tools[3].grammar_parameters = self._quote_schema
        for t in tools:
            t.state = self  # each answer browses on a fresh() copy (Tool.state)
        return tools

    def fresh(self) -> "Browser":
        """A new Browser over the same search backend: no results, no open document."""
        return Browser(self.backend, k=self.k, page_lines=self.page_lines, width=self.width)

    def _open_schema(self) -> dict | None:
        """After a search, `open` takes one of its results (by id or number): the call grammar
        offers only those, so a small model cannot open an id it made up."""
        if not self.results:
            return None
        ids = [h.id for h in self.results] + [str(k) for k in range(1, len(self.results) + 1)]
        return {
            "type": "object",
            "properties": {"id": {"type": "string", "enum": list(dict.fromkeys(ids))},
                           "page": {"type": "integer", "minimum": 1}},
            "required": ["id"],
            "additionalProperties": False,
        }

    def _quote_schema(self) -> dict | None:
        """While a document is open, a quote can only be one of its sentences, verbatim: the call
        grammar enforces what `quote` checks, so even a small model quotes exactly."""
        if self._page is None:
            return None
        options = list(dict.fromkeys(s for s in split_sentences(self._page.doc.text) if 8 <= len(s) <= _MAX_QUOTE))
        options = options[:_MAX_SENTENCES]
        if not options:
            return None
        return {
            "type": "object",
            "properties": {"text": {"type": "string", "enum": options}},
            "required": ["text"],
            "additionalProperties": False,
        }

    # --- internals ------------------------------------------------------------------------

    def _resolve(self, id: str) -> str:
        """An id from the results, or a result's number; other ids go to the backend as they are."""
        key = id.strip().strip("\"'").strip("[]").strip()
        if not key:
            raise BrowserError("open needs the id of a search result")
        if any(h.id == key for h in self.results):
            return key
        if key.isdigit() and 1 <= int(key) <= len(self.results):
            return self.results[int(key) - 1].id
        return key

    def _need_page(self) -> _Page:
        if self._page is None:
            raise BrowserError("no document is open; search, then open(id) a result first")
        return self._page

    def _show(self, page: int) -> ToolOutput:
        cut = self._need_page()
        doc = cut.doc
        pages = max(1, -(-len(cut.lines) // self.page_lines))
        if not 1 <= page <= pages:
            raise BrowserError(f"page {page} does not exist; {doc.title} has {pages} page{'s' * (pages > 1)}")
        first = (page - 1) * self.page_lines
        last = min(first + self.page_lines, len(cut.lines))
        span = f"lines {first + 1}-{last}" if last > first else "no text"
        out = [f"{doc.title} (id: {doc.id})"]
        if doc.location:
            out.append(doc.location)
        out.append(f"Page {page} of {pages}, {span} of {len(cut.lines)}:")
        out += [f"L{n + 1}: {_line(cut, n)}" for n in range(first, last)]
        if page < pages:
            out.append(f'More: open(id="{doc.id}", page={page + 1}).')
        out += _attribution_lines({doc.attribution})
        location = f"{doc.location} ({span})" if doc.location else span
        return ToolOutput("\n".join(out), [Source(doc.id, doc.title, location, doc.text)])


def _cut(doc: Document, width: int) -> _Page:
    """Wrap each paragraph at `width` characters on word boundaries, keeping offsets; and build
    the whitespace-normalised text that find and quote search in."""
    lines: list[tuple[int, int]] = []
    for para in re.finditer(r"[^\n]+", doc.text):
        start = end = -1
        for word in re.finditer(r"\S+", para.group()):
            ws, we = para.start() + word.start(), para.start() + word.end()
            if start < 0:
                start, end = ws, we
            elif we - start > width:
                lines.append((start, end))
                start, end = ws, we
            else:
                end = we
        if start >= 0:
            lines.append((start, end))
    norm: list[str] = []
    norm_to_text: list[int] = []
    for word in re.finditer(r"\S+", doc.text):
        if norm:
            norm.append(" ")
            norm_to_text.append(word.start() - 1)
        norm.append(word.group())
        norm_to_text.extend(range(word.start(), word.end()))
    return _Page(doc, lines, "".join(norm), norm_to_text)


def _span_lines(page: _Page, norm_start: int, norm_end: int) -> tuple[int, int]:
    """Indexes of the first and last line that a span of the normalised text falls on."""
    start, end = page.norm_to_text[norm_start], page.norm_to_text[norm_end - 1]
    first = next(i for i, (s, e) in enumerate(page.lines) if e > start)
    last = next(i for i in range(len(page.lines) - 1, -1, -1) if page.lines[i][0] <= end)
    return first, max(first, last)


def _line(page: _Page, n: int) -> str:
    start, end = page.lines[n]
    return page.doc.text[start:end]


def _attribution_lines(attributions: set[str]) -> list[str]:
    return [f"Source: {a}" for a in sorted(a for a in attributions if a)]
