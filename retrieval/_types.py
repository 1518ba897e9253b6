"""The data that crosses retrieval's seams: chunks of documents and scored search results."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def chunk_id(text: str) -> str:
    """The id of a chunk: a hash of its text, so identical chunks are stored once and an id
    stays the same across runs while the text does."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Chunk:
    """A piece of a document, as stored and as cited.

    `source` is the file's absolute path; `line_start`/`line_end` are 1-based and inclusive, in
    the file (HTML: the source lines the text came from; PDF: lines of the extracted text, the
    page is in the title). `kind` is the file type ("md", "txt", "rst", "html", "pdf").
    """

    id: str
    text: str
    source: str
    title: str
    line_start: int
    line_end: int
    kind: str

    @property
    def location(self) -> str:
        """`path:start-end`, what a citation shows."""
        return f"{self.source}:{self.line_start}-{self.line_end}"


@dataclass(frozen=True)
class SearchResult:
    """A chunk with its score (higher is better; the scale depends on the search)."""

    chunk: Chunk
    score: float
