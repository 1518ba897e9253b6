"""Benchmark of the default search: index build time and query latency.

    >>> bench_search()                                    # doctest: +SKIP
    {'docs': 10033, 'queries': 200, 'build_s': 2.1, 'p50_ms': 1.7, 'p95_ms': 5.9, 'hit_at_5': 0.97}

The corpus is the default one (tooltoken.tools.corpus; fetched into the cache on first use, not
timed). The index is built fresh in a temporary directory, so `build_s` is the real first-use
cost (parse the JSON, tokenize, index, write) and the cached index is left alone. The 200
queries are made from the corpus itself, deterministically: half are article titles, half are
the articles' short descriptions ("1968 film by Stanley Kubrick"); `hit_at_5` is the share of
queries whose own article is in the top 5. Latency is per `search(query, k)` call, snippets
included, single-threaded. Nothing is printed; the CLI prints the dict as JSON.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tooltoken.tools.corpus import fetch_wiki_summaries, wiki_documents
from tooltoken.tools.search import BM25Search, Document, ProgressFn

__all__ = ["bench_search"]


def bench_search(
    *, queries: int = 200, k: int = 5, cache: str | os.PathLike[str] | None = None, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Build the default corpus' index and time `queries` searches; see the module docstring."""
    source = fetch_wiki_summaries(cache, progress=progress)
    with tempfile.TemporaryDirectory(prefix="tooltoken-bench-") as tmp:
        start = time.perf_counter()
        docs = list(wiki_documents(source))
        index = BM25Search.build(docs, Path(tmp) / "index", progress=progress)
        build_s = time.perf_counter() - start
        picked = _queries(docs, queries)
        index.search(picked[0][0], k)  # first call pays for lazy imports, not measured
        times, hits = [], 0
        for text, want in picked:
            t0 = time.perf_counter()
            results = index.search(text, k)
            times.append((time.perf_counter() - t0) * 1000)
            hits += any(r.id == want for r in results)
    times.sort()
    return {
        "docs": len(docs),
        "queries": len(picked),
        "build_s": round(build_s, 3),
        "p50_ms": round(statistics.median(times), 3),
        "p95_ms": round(times[min(len(times) - 1, int(0.95 * len(times)))], 3),
        "hit_at_5": round(hits / len(picked), 3),
    }


def _queries(docs: list[Document], n: int) -> list[tuple[str, str]]:
    """n (query, wanted id) pairs spread evenly over the corpus: titles, then descriptions."""
    step = max(1, len(docs) // n)
    out: list[tuple[str, str]] = []
    for i, doc in enumerate(docs[::step][:n]):
        description = doc.text.split("\n", 1)[0] if "\n" in doc.text else ""
        text = doc.title if i % 2 == 0 or not description else description
        out.append((text, doc.id))
    return out
