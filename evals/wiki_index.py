"""Dense and hybrid search over the default Wikipedia corpus: `--backend dense` and `--backend hybrid`.

    >>> search = wiki_search("hybrid")                         # built on first use  # doctest: +SKIP
    >>> search.search("who wrote war and peace", k=1)[0].id    # doctest: +SKIP
    'enwiki:War_and_Peace'

One document is one chunk: a lead section is short (83 words on average), so its title and text
are embedded whole with the default MiniLM embedder (which reads the first 256 word pieces: the
ends of the longest leads are not seen), and Milvus' BM25 indexes the same text. The search is
tooltoken.retrieval's `Retriever` (`mode` "dense", or "hybrid": dense and BM25 fused by RRF);
hits are `Hit`s with the `enwiki:` ids and `get(id)` gives the `Document`, as from the BM25
`default_search()`, so the qa suite and the browser can use them too.

The index is a Milvus Lite database in `cache_dir()/indexes/<corpus>-<embedder>-milvus-1/`,
built once (minutes on 2 cores) in a temporary sibling directory, with a manifest written last,
then renamed into place: a half-built index is never opened. The manifest holds a hash of the
documents and the embedder's name and dimension; an index whose manifest differs is rebuilt, so
a stale one is never used. Milvus keys are at most 64 bytes and two Wikipedia ids are longer, so
a chunk's key is a hash of its document id and the id itself is the chunk's `source`.
Not handled: two processes on one index at once (Milvus Lite is single-process: the second gets
`StoreLockedError`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tooltoken.retrieval import Chunk, Embedder, MilvusStore, Retriever, chunk_id
from tooltoken.tools.corpus import DATA_NAME, cache_dir, fetch_wiki_summaries, wiki_documents
from tooltoken.tools.search import Document, Hit, ProgressFn, SearchError, passage, query_terms

__all__ = ["WikiVectorSearch", "wiki_search"]

INDEX_VERSION = "milvus-1"
_BATCH = 1000  # documents embedded per progress step (the embedder batches within)


class WikiVectorSearch:
    """A `SearchBackend` (tools/search.py) over a `Retriever` whose chunks are whole documents."""

    def __init__(self, retriever: Retriever, documents: dict[str, Document]) -> None:
        self.retriever = retriever
        self.documents = documents

    def search(self, query: str, k: int = 5) -> list[Hit]:
        terms = query_terms(query)
        docs = [(self.documents[r.chunk.source], r.score) for r in self.retriever.search(query, k)]
        return [Hit(d.id, d.title, passage(d.text, terms), score, d.location, d.attribution) for d, score in docs]

    def get(self, id: str) -> Document:
        try:
            return self.documents[id]
        except KeyError:
            raise SearchError(f"no document with id {id!r}") from None

    def close(self) -> None:
        self.retriever.close()


def wiki_search(
    mode: str = "hybrid",
    *,
    documents: Iterable[Document] | None = None,
    corpus: str = DATA_NAME,
    embedder: Embedder | None = None,
    cache: str | os.PathLike[str] | None = None,
    progress: ProgressFn | None = None,
) -> WikiVectorSearch:
    """Dense or hybrid search over `documents` (default: the Wikipedia corpus, named `corpus`),
    indexing them with `embedder` (default: MiniLM) on first use; see the module docstring."""
    root = Path(cache) if cache is not None else cache_dir()
    if documents is None:
        documents = wiki_documents(fetch_wiki_summaries(root, progress=progress))
    docs = {d.id: d for d in documents}
    if embedder is None:
        from tooltoken.retrieval import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder()
    index_dir = root / "indexes" / _safe(f"{corpus}-{embedder.name}-{INDEX_VERSION}")
    manifest = {"format": INDEX_VERSION, "documents": _digest(docs.values()), "count": len(docs),
                "embedder": embedder.name, "dim": embedder.dim}
    if _read_manifest(index_dir) != manifest:
        _build(list(docs.values()), embedder, index_dir, manifest, progress)
    return WikiVectorSearch(Retriever(MilvusStore(index_dir / "milvus.db"), embedder, mode=mode), docs)


def _build(docs: list[Document], embedder: Embedder, index_dir: Path, manifest: dict[str, Any],
           progress: ProgressFn | None) -> None:
    tmp = index_dir.with_name(f".{index_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with MilvusStore(tmp / "milvus.db") as store:
            for i in range(0, len(docs), _BATCH):
                if progress:
                    progress("embed", i, len(docs))
                batch = docs[i : i + _BATCH]
                chunks = [Chunk(chunk_id(d.id), f"{d.title}\n{d.text}", d.id, d.title, 1, d.text.count("\n") + 2, "wiki")
                          for d in batch]
                store.upsert(chunks, embedder.embed([c.text for c in chunks]))
            store.flush()
        (tmp / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")  # last: marks it whole
        old = index_dir.with_name(f".{index_dir.name}.old-{os.getpid()}")
        if index_dir.exists():
            os.replace(index_dir, old)  # a stale index: aside first, so the rename below cannot fail on it
        os.replace(tmp, index_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if progress:
        progress("embed", len(docs), len(docs))


def _read_manifest(index_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _digest(docs: Iterable[Document]) -> str:
    h = hashlib.sha256()
    for d in docs:
        h.update(json.dumps([d.id, d.title, d.text]).encode())
    return h.hexdigest()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)
