"""`Deferred`: an object built on its first use, so start-up pays only for what a question needs.

The built-in tools stand on heavy parts (the corpus's BM25 index, a Milvus Lite index with its
embedder and torch); `default_tools` hands them over as `Deferred(factory)`, and the first search
builds them. A failure is raised at that use, each time it is tried, as the tool's own error.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

__all__ = ["Deferred"]


class Deferred:
    """Stands in for `factory()`: any attribute is looked up on the object, built once, on first use."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._object: Any = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        return self._object is not None

    def get(self) -> Any:
        """The object, built now if it was not."""
        with self._lock:
            if self._object is None:
                self._object = self._factory()
            return self._object

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not ours and not the object's internals (copy, pickle probes)
            raise AttributeError(name)
        return getattr(self.get(), name)
