"""The vector store seam, and where tooltoken keeps its data on this machine."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ._types import Chunk, SearchResult

__all__ = ["VectorStore", "data_dir"]


def data_dir() -> Path:
    """`$TOOLTOKEN_DATA_DIR`, else the user's data directory for tooltoken (platformdirs)."""
    env = os.environ.get("TOOLTOKEN_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("tooltoken", appauthor=False))


@runtime_checkable
class VectorStore(Protocol):
    """Chunks with their vectors, searchable by vector (dense) and by words (BM25).

    `filters` is a dict of allowlisted fields (see `build_filter`). Scores: higher is better.
    Writes are durable when they return: the ingester records a file as indexed only after.
    """

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None: ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def get(self, ids: Sequence[str]) -> list[Chunk]: ...

    def get_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]: ...

    def search(self, vector: np.ndarray, k: int, filters: Mapping[str, Any] | None = None) -> list[SearchResult]: ...

    def text_search(self, query: str, k: int, filters: Mapping[str, Any] | None = None) -> list[SearchResult]: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
