"""Hybrid search: dense vectors and BM25, fused by reciprocal rank fusion.

    >>> rrf([["a", "b", "c"], ["c", "a"]], k=60)[:2]
    [('a', 0.03252247488101534), ('c', 0.032266458495966696)]

`Retriever.search(query, k)` embeds the query, asks the store for the best `candidates` chunks
both ways (`VectorStore.search` and `.text_search`, with the same filters), and ranks the union
by RRF: score(d) = sum over the rankings of 1 / (k_rrf + rank of d), rank from 1 (Cormack et al.,
2009; k_rrf = 60 as there). RRF needs no score calibration between cosine and BM25, which live
on unrelated scales. `mode="dense"` or `"bm25"` searches one way only.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from ._embed import Embedder
from ._errors import RetrievalConfigError, RetrievalError
from ._store import VectorStore
from ._types import Chunk, SearchResult

__all__ = ["Retriever", "rrf"]

_MODES = ("hybrid", "dense", "bm25")


def rrf(rankings: Sequence[Sequence[str]], k: int = 60) -> list[tuple[str, float]]:
    """Fuse ranked id lists; best first, ties broken by id so the order is deterministic."""
    scores: dict[str, float] = defaultdict(float)
    for ranking in rankings:
        for rank, id in enumerate(dict.fromkeys(ranking), 1):
            scores[id] += 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


class Retriever:
    """Search over a `VectorStore` with an `Embedder` (see the module docstring)."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder | None,
        *,
        mode: str = "hybrid",
        candidates: int = 30,
        rrf_k: int = 60,
        filters: Mapping[str, Any] | None = None,
    ) -> None:
        if mode not in _MODES:
            raise RetrievalConfigError(f"unknown search mode {mode!r} (valid modes: {', '.join(_MODES)})")
        if embedder is None and mode != "bm25":
            raise RetrievalConfigError(f"search mode {mode!r} needs an embedder")
        self.store = store
        self.embedder = embedder
        self.mode = mode
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.filters = dict(filters or {})

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        uri: str | None = None,
        token: str | None = None,
        collection: str = "chunks",
        model: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> Retriever:
        """A hybrid retriever on a `MilvusStore` (Lite at `path`, or a server at `uri`) with the
        folder's `default_embedder` (`model`: a local folder; default all-MiniLM-L6-v2).
        Close it with `close()` (or `with`) to release Milvus Lite for other processes."""
        from ._milvus import MilvusStore
        from ._minilm import default_embedder

        store = MilvusStore(path, uri=uri, token=token, collection=collection)  # first: a held lock fails fast
        try:
            return cls(store, default_embedder(model), **kwargs)
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Retriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def search(self, query: str, k: int = 5, filters: Mapping[str, Any] | None = None) -> list[SearchResult]:
        """The best `k` chunks for `query`; `filters` add to the retriever's own."""
        query = " ".join(query.split())
        if not query:
            raise RetrievalConfigError("the search query is empty")
        if k <= 0:
            return []
        where = {**self.filters, **(filters or {})}
        n = max(k, self.candidates)
        rankings: list[list[SearchResult]] = []
        if self.mode != "bm25":
            assert self.embedder is not None
            vector = self.embedder.embed([query])[0]
            rankings.append(self.store.search(vector, n, where))
        if self.mode != "dense":
            rankings.append(self.store.text_search(query, n, where))
        if len(rankings) == 1:
            return rankings[0][:k]
        chunks: dict[str, Chunk] = {r.chunk.id: r.chunk for ranking in rankings for r in ranking}
        fused = rrf([[r.chunk.id for r in ranking] for ranking in rankings], self.rrf_k)
        return [SearchResult(chunks[i], score) for i, score in fused[:k]]

    def get(self, id: str) -> Chunk:
        """The chunk with this id; `RetrievalError` if there is none."""
        found = self.store.get([id])
        if not found:
            raise RetrievalError(f"no indexed chunk has the id {id!r}")
        return found[0]
