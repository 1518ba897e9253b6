"""The errors of tooltoken.retrieval: a branch of the one tree (`tooltoken._errors`).

    TooltokenError
    └── RetrievalError              our bug or the user's bad input: raised, with what to do
    ├── RetrievalConfigError        bad arguments or settings; a missing optional extra
    │   └── FilterError             a metadata filter names an unknown field or holds a bad value
    ├── EmbedderError               an embedding model is missing, not local, or cannot be loaded
    └── StoreError                  the vector store cannot be opened, read or written
        └── StoreLockedError        another process holds the Milvus Lite directory

retrieval/ is the lowest room: of the others it imports only the leaf `tooltoken._errors`. The
retriever tool (tooltoken.tools.retriever) turns these into tool errors where a model
is the caller. Files that cannot be read while indexing are not errors: they are skipped and
listed in the `IngestReport`.
"""

from __future__ import annotations

from tooltoken._errors import TooltokenError

__all__ = ["EmbedderError", "FilterError", "RetrievalConfigError", "RetrievalError", "StoreError", "StoreLockedError"]


class RetrievalError(TooltokenError):
    """Base class of every error tooltoken.retrieval raises on purpose."""


class RetrievalConfigError(RetrievalError):
    """Bad arguments or settings given by the user, or a missing optional dependency."""


class FilterError(RetrievalConfigError):
    """A metadata filter names a field that is not allowed, or has a value of the wrong type."""


class EmbedderError(RetrievalError):
    """An embedding model is missing, is not a local path, or cannot be loaded."""


class StoreError(RetrievalError):
    """The vector store could not be opened, read or written."""


class StoreLockedError(StoreError):
    """The Milvus Lite directory is held by another process (Milvus Lite is single-process)."""
