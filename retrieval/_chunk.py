"""Cut extracted text into chunks that remember where they came from.

    >>> doc = extract(Path("notes.md"), b"# Notes\\n\\n## Milvus\\nMilvus stores vectors.\\n")
    >>> [(c.title, c.line_start, c.line_end) for c in split(doc, "/d/notes.md", "md", 200, 20)]
    [('Notes > Milvus', 1, 4)]

The splitter is langchain-text-splitters' `RecursiveCharacterTextSplitter`: Markdown and
reStructuredText get its language separators (headings first, then code blocks, paragraphs,
lines, words), everything else the generic ones. Sizes are in characters. Each chunk is found
back in the text the way langchain's own `add_start_index` does it (search from the previous
chunk's end minus the overlap), which gives the offsets that become line ranges and titles.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ._errors import RetrievalConfigError
from ._extract import Extracted
from ._types import Chunk, chunk_id

__all__ = ["MAX_CHUNK_SIZE", "check_sizes", "split"]

#: Milvus stores the text in a VARCHAR of at most 65,535 bytes; 8,000 characters of UTF-8 fit.
MAX_CHUNK_SIZE = 8000


def check_sizes(chunk_size: int, chunk_overlap: int) -> None:
    if not 50 <= chunk_size <= MAX_CHUNK_SIZE:
        raise RetrievalConfigError(f"chunk_size must be between 50 and {MAX_CHUNK_SIZE} characters, got {chunk_size}")
    if not 0 <= chunk_overlap < chunk_size // 2:
        raise RetrievalConfigError(
            f"chunk_overlap must be at least 0 and less than half of chunk_size ({chunk_size}), got {chunk_overlap}"
        )


def split(doc: Extracted, source: str, kind: str, chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """The chunks of one extracted document, in order."""
    check_sizes(chunk_size, chunk_overlap)
    pieces = _splitter(kind, chunk_size, chunk_overlap).split_text(doc.text)
    chunks: list[Chunk] = []
    for at, end in _merge_small(_locate(doc.text, pieces, chunk_overlap), doc.text, chunk_size):
        text = doc.text[at:end]
        chunks.append(
            Chunk(
                id=chunk_id(text),
                text=text,
                source=source,
                title=doc.title_for(at, end)[:1000],
                line_start=doc.line_of(at),
                line_end=doc.line_of(end - 1),
                kind=kind,
            )
        )
    return chunks


def _locate(text: str, pieces: list[str], overlap: int) -> list[tuple[int, int]]:
    """(start, end) of each piece in `text`."""
    spans: list[tuple[int, int]] = []
    start, prev_len = 0, 0
    for piece in pieces:
        if not piece.strip():
            continue
        # the same search as langchain's add_start_index: from the previous chunk's end minus
        # the overlap, so a repeated sentence is found at its own place, not its first one
        at = text.find(piece, max(0, start + prev_len - overlap))
        if at < 0:
            at = text.find(piece)
        if at < 0:  # cannot happen with the recursive splitter (it only cuts and strips)
            continue
        start, prev_len = at, len(piece)
        spans.append((at, at + len(piece)))
    return spans


def _merge_small(spans: list[tuple[int, int]], text: str, chunk_size: int) -> list[tuple[int, int]]:
    """Join a short piece to the next one when only white space lies between them. The
    Markdown separators cut before every heading, which leaves a lone "# Title" as its own
    chunk when the section under it is long; alone it is a poor thing to embed or cite."""
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(spans):
        at, end = spans[i]
        while (
            i + 1 < len(spans)
            and end - at <= chunk_size // 4
            and spans[i + 1][0] >= at
            and not text[end : spans[i + 1][0]].strip()
            and spans[i + 1][1] - at <= chunk_size + chunk_size // 4
        ):
            i += 1
            end = max(end, spans[i][1])
        out.append((at, end))
        i += 1
    return out


@lru_cache(maxsize=16)
def _splitter(kind: str, chunk_size: int, chunk_overlap: int) -> Any:
    try:
        from langchain_text_splitters import Language, RecursiveCharacterTextSplitter
    except ImportError:
        raise RetrievalConfigError("chunking needs langchain-text-splitters: pip install 'tooltoken[embed]'") from None
    language = {"md": Language.MARKDOWN, "rst": Language.RST}.get(kind)
    if language is not None:
        return RecursiveCharacterTextSplitter.from_language(
            language, chunk_size=chunk_size, chunk_overlap=chunk_overlap
        )
    return RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
