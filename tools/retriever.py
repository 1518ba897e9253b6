"""Your indexed documents as a tool, and as a search backend for the browser.

    >>> from tooltoken.retrieval import Retriever
    >>> retriever = Retriever.open()                         # doctest: +SKIP
    >>> retrieve = retriever_tool(retriever)                 # doctest: +SKIP
    >>> out = retrieve.invoke({"query": "how do I install it?", "k": 3})   # doctest: +SKIP
    >>> out.sources[0].location                              # doctest: +SKIP
    '/home/me/docs/install.md:1-12'
    >>> Browser(RetrieverBackend(retriever)).tools()         # search/open/find/quote  # doctest: +SKIP

`retrieve(query, k)` runs a hybrid search (tooltoken.retrieval.Retriever) and returns the
passages (each cut to its first sentence and the ones that match the query), one `Source` per
passage: id = the chunk id (stable while its text
is), title = the section it sits in, location = `path:first-last line`, text = the passage, which
is what a quote must occur in. `RetrieverBackend` is the same search behind the browser's
`SearchBackend` seam: `search` gives `Hit`s, `get(id)` the passage as a `Document`, so the
browser's open, find and quote work on indexed documents. Retrieval's own errors become
`ToolArgumentError` (bad input) or `ToolError`/`SearchError` (a failing index), which the
controller shows to the model as tool results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import ToolArgumentError, ToolError
from ._tool import Source, Tool, ToolOutput, tool
from .search import PASSAGE_CHARS, Document, Hit, SearchError, passage, query_terms

if TYPE_CHECKING:
    from tooltoken.retrieval import Retriever, SearchResult

__all__ = ["RetrieverBackend", "retriever_tool"]


def retriever_tool(retriever: Retriever, *, name: str = "retrieve", max_k: int = 10) -> Tool:
    """The `retrieve(query, k)` tool over `retriever`; `k` is clamped to 1..`max_k`."""

    def retrieve(query: str, k: int = 3) -> ToolOutput:
        """Search the user's own indexed documents (notes, manuals, papers). Returns the most
        relevant passages with their ids, files and line ranges.

        query: what to look for, as a few keywords or a question
        k: how many passages to return (1 to 10)
        """
        results = _search(retriever, query, max(1, min(int(k), max_k)))
        if not results:
            return ToolOutput(f'No passages in the indexed documents match "{query.strip()}". Try other words.')
        terms = query_terms(query)
        lines = [f'Passages for "{" ".join(query.split())}":']
        for r in results:  # unnumbered: `[n]` in an answer names a tool result, not a passage
            c = r.chunk
            lines += [f"- {c.title} (id: {c.id}, {c.location})", _indent(passage(c.text, terms, sentences=4, chars=PASSAGE_CHARS * 2, lines=True))]
        return ToolOutput("\n".join(lines), [_source(r) for r in results])

    return tool(retrieve, name=name)


class RetrieverBackend:
    """A `SearchBackend` (tools/search.py) over a `Retriever`: hits are passages of indexed files."""

    def __init__(self, retriever: Retriever, *, snippet_chars: int = PASSAGE_CHARS) -> None:
        self.retriever = retriever
        self.snippet_chars = snippet_chars

    def search(self, query: str, k: int = 5) -> list[Hit]:
        hits, terms = [], query_terms(query)
        for r in _search(self.retriever, query, k, error=SearchError):
            c = r.chunk
            hits.append(Hit(c.id, c.title, passage(c.text, terms, chars=self.snippet_chars), r.score, c.location))
        return hits

    def get(self, id: str) -> Document:
        from tooltoken.retrieval import RetrievalError

        try:
            c = self.retriever.get(id)
        except RetrievalError as exc:
            raise SearchError(str(exc)) from None
        return Document(c.id, c.title, c.text, c.location)


def _search(retriever: Retriever, query: str, k: int, error: type[ToolError] = ToolError) -> list[SearchResult]:
    from tooltoken.retrieval import RetrievalConfigError, RetrievalError

    try:
        return retriever.search(query, k)
    except RetrievalConfigError as exc:
        raise ToolArgumentError(str(exc)) from None
    except RetrievalError as exc:
        raise error(f"the document index failed: {exc}") from None


def _source(r: SearchResult) -> Source:
    return Source(r.chunk.id, r.chunk.title, r.chunk.location, r.chunk.text)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
