"""Retrieval: embedders, vector stores, ingestion and hybrid search (see the retrieval issue)."""

__all__: list[str] = []
