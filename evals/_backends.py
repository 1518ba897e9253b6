"""Search backends for the qa and retrieval suites, chosen by a short name.

- `bm25` (the default): BM25 over the default Wikipedia corpus (`tooltoken.tools.default_search()`,
  fetched on first use);
- `dense`, `hybrid`: MiniLM vectors (and, for hybrid, Milvus' BM25 fused with them by RRF) over
  the same corpus, one lead section a chunk, in a Milvus Lite index built into the cache on first
  use (minutes; progress on stderr) and reused after (wiki_index.py);
- `module:attribute`: an object of your own that has `search(query, k)` (and `get(id)` for qa):
  the attribute is called with no arguments if it is callable (a factory), else used as it is.
  This is how a vector or hybrid retriever of tooltoken.retrieval, or any `SearchBackend`,
  is evaluated: `--backend mypkg.indexes:open_milvus`.

Ids: a hit's id is `hit.id`, or `hit.chunk.id` for retrieval's `SearchResult`s, so both kinds of
result plug in unchanged.
"""

from __future__ import annotations

import importlib
import sys
import time
from typing import Any

from tooltoken.tools import ConfigError
from tooltoken.tools.search import ProgressFn

__all__ = ["NAMES", "hit_id", "load_backend"]

NAMES = ("bm25", "dense", "hybrid")


def load_backend(spec: str) -> Any:
    if spec == "bm25":
        from tooltoken.tools import default_search

        return default_search()
    if spec in ("dense", "hybrid"):
        from .wiki_index import wiki_search

        return wiki_search(spec, progress=_on_stderr(time.monotonic()))
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"--backend takes {', '.join(NAMES)} or module:attribute, not {spec!r}")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load the search backend {spec!r}: {exc}") from None
    backend = obj() if callable(obj) and not hasattr(obj, "search") else obj
    if not callable(getattr(backend, "search", None)):
        raise ConfigError(f"{spec} gave {type(backend).__name__}, which has no search(query, k) method")
    return backend


def _on_stderr(start: float) -> ProgressFn:
    # the evals print only in the CLI, but a first-use index build takes minutes: say what it does
    def report(stage: str, done: int, total: int) -> None:
        print(f"building the Wikipedia vector index (once): {stage} {done}/{total}, {time.monotonic() - start:.0f} s",
              file=sys.stderr, flush=True)

    return report


def hit_id(hit: Any) -> str:
    if hasattr(hit, "id"):
        return str(hit.id)
    chunk = getattr(hit, "chunk", None)
    if chunk is not None and hasattr(chunk, "id"):
        return str(chunk.id)
    raise ConfigError(f"a search result of type {type(hit).__name__} has no id (nor chunk.id)")
