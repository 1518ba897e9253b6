"""A torch-free embedder: all-MiniLM-L6-v2 (or another BERT sentence model) run in numpy.

    >>> emb = MiniLMEmbedder()                             # doctest: +SKIP
    >>> emb.embed(["Milvus stores vectors."]).shape        # doctest: +SKIP
    (1, 384)

`import sentence_transformers` loads torch, transformers and scikit-learn, which takes seconds
before the first vector. This module needs only numpy, `tokenizers` and `safetensors`, and computes
what `SentenceTransformerEmbedder` computes on the same folder: WordPiece tokens truncated to
`max_seq_length`, the BERT encoder in float32, mean pooling over the real tokens, L2
normalisation. The vectors agree with sentence-transformers' to within 1e-6 (tests/test_minilm.py).

Texts are sorted by token count and run in batches, so a batch is padded only to its longest
text. The large matrix products go to numpy's BLAS; attention runs one text per thread of a small
pool (see `_attend` for why). GELU uses a rational approximation of erf, because numpy has none:
within 5e-7 of the true value in float32 (a few units in the last place), well below the other
float32 differences.

Not handled: architectures other than BERT (RoBERTa, MPNet, ...), CLS or max pooling, Dense layers
after pooling, GPUs. Such a folder raises EmbedderError; use SentenceTransformerEmbedder for it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._embed import model_folder
from ._errors import EmbedderError, RetrievalConfigError

__all__ = ["MiniLMEmbedder"]

# the modules a folder may list in modules.json, by the last part of their type name
_MODULES = ("Transformer", "Pooling", "Normalize")
# OpenBLAS runs a matrix product on the calling thread up to this many multiply-adds
# (65536 * GEMM_MULTITHREAD_THRESHOLD, 4 by default), and threads larger ones
_ONE_THREAD = 65536 * 4


@dataclass(frozen=True)
class _Layer:
    """One encoder layer; weights are (out, in) as stored, used as `x @ w.T`."""

    qkv_w: np.ndarray  # query (scaled for attention), key and value stacked: (3 * hidden, hidden)
    qkv_b: np.ndarray
    attn_out_w: np.ndarray
    attn_out_b: np.ndarray
    attn_norm: tuple[np.ndarray, np.ndarray]
    up_w: np.ndarray
    up_b: np.ndarray
    down_w: np.ndarray
    down_b: np.ndarray
    out_norm: tuple[np.ndarray, np.ndarray]


class MiniLMEmbedder:
    """A BERT sentence-transformers folder (default: all-MiniLM-L6-v2) run in numpy, without torch."""

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        batch_size: int = 32,
        name: str | None = None,
    ) -> None:
        self.path, self.name = model_folder(model, batch_size, name)
        self.batch_size = batch_size
        path = self.path
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError:
            raise RetrievalConfigError(
                "embeddings need tokenizers and safetensors: pip install 'tooltoken[embed]'"
            ) from None

        encoder_dir, max_length, self.lowercase = _read_folder(path)
        config = _json(encoder_dir / "config.json")
        self.dim = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = np.float32(config.get("layer_norm_eps", 1e-12))
        positions = int(config["max_position_embeddings"])
        self.max_length = min(max_length, positions) if max_length else positions
        try:
            self.tokenizer = Tokenizer.from_file(str(encoder_dir / "tokenizer.json"))
            weights = load_file(encoder_dir / "model.safetensors")
        except Exception as exc:  # the Rust loaders raise their own exception types
            raise EmbedderError(f"cannot load the embedding model at {path}: {exc}") from exc
        # tokenizer.json carries its own padding and truncation (fixed at 128 for MiniLM)
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self._load_weights(weights, int(config["num_hidden_layers"]), path)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of strings, not one string: use embed([text])")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"embed takes strings; item {i} is {type(text).__name__}")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        if self.lowercase:
            texts = [t.lower() for t in texts]
        ids = [e.ids for e in self.tokenizer.encode_batch(texts)]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._embed_batch([ids[i] for i in rows])
        return out

    def _embed_batch(self, ids: list[list[int]]) -> np.ndarray:
        lengths = [len(row) for row in ids]
        width = max(lengths)
        tokens = np.zeros((len(ids), width), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros((len(ids), width), dtype=np.float32)
        for r, row in enumerate(ids):
            tokens[r, : len(row)] = row
            mask[r, : len(row)] = 1
        x = self.word[tokens] + self.position[:width] + self.token_type
        x = _layer_norm(x.reshape(-1, self.dim), self.embed_norm, self.eps)
        for layer in self.layers:
            x = self._layer(x, layer, lengths)
        x = x.reshape(len(ids), width, self.dim)
        pooled = np.einsum("btd,bt->bd", x, mask) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def _layer(self, x: np.ndarray, layer: _Layer, lengths: list[int]) -> np.ndarray:
        batch = len(lengths)
        qkv = x @ layer.qkv_w.T
        qkv += layer.qkv_b
        # each (batch, heads, tokens, head_dim)
        q, k, v = qkv.reshape(batch, x.shape[0] // batch, 3, self.heads, -1).transpose(2, 0, 3, 1, 4)
        _, heads, width, head_dim = q.shape
        context = np.empty((batch, width, heads, head_dim), dtype=np.float32)
        pool = self._threads()
        list(pool.map(lambda b: _attend(q[b], k[b], v[b], lengths[b], context[b]), range(batch)))
        h = context.reshape(x.shape) @ layer.attn_out_w.T
        h += layer.attn_out_b
        h += x
        x = _layer_norm(h, layer.attn_norm, self.eps)
        h = x @ layer.up_w.T
        h += layer.up_b
        _gelu(h, pool)
        h = h @ layer.down_w.T
        h += layer.down_b
        h += x
        return _layer_norm(h, layer.out_norm, self.eps)

    def _threads(self) -> ThreadPoolExecutor:
        # a forked child has the pool object but not its threads: it makes its own
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="minilm")
            self._pool_pid = os.getpid()
        return self._pool

    def _load_weights(self, weights: dict[str, np.ndarray], n_layers: int, path: Path) -> None:
        # the names may carry a prefix ("bert.", "0.auto_model."), depending on how the model was saved
        suffix = "embeddings.word_embeddings.weight"
        prefix = next((k[: -len(suffix)] for k in weights if k.endswith(suffix)), None)
        if prefix is None:
            raise EmbedderError(f"{path}: model.safetensors holds no BERT embeddings ({suffix})")

        def w(name: str) -> np.ndarray:
            try:
                return np.ascontiguousarray(weights[prefix + name], dtype=np.float32)
            except KeyError:
                raise EmbedderError(f"{path}: model.safetensors has no tensor {prefix + name!r}") from None

        def norm(name: str) -> tuple[np.ndarray, np.ndarray]:
            return w(name + ".weight"), w(name + ".bias")

        self.word = w("embeddings.word_embeddings.weight")
        self.position = w("embeddings.position_embeddings.weight")
        self.token_type = w("embeddings.token_type_embeddings.weight")[0]  # one segment: type 0
        self.embed_norm = norm("embeddings.LayerNorm")
        # the queries come out scaled by 1 / sqrt(head_dim), as attention needs them
        scale = np.float32(1 / np.sqrt(self.dim // self.heads))
        self.layers = []
        for i in range(n_layers):
            p = f"encoder.layer.{i}."
            att = p + "attention.self."
            self.layers.append(_Layer(
                qkv_w=np.concatenate([w(att + "query.weight") * scale, w(att + "key.weight"), w(att + "value.weight")]),
                qkv_b=np.concatenate([w(att + "query.bias") * scale, w(att + "key.bias"), w(att + "value.bias")]),
                attn_out_w=w(p + "attention.output.dense.weight"),
                attn_out_b=w(p + "attention.output.dense.bias"),
                attn_norm=norm(p + "attention.output.LayerNorm"),
                up_w=w(p + "intermediate.dense.weight"),
                up_b=w(p + "intermediate.dense.bias"),
                down_w=w(p + "output.dense.weight"),
                down_b=w(p + "output.dense.bias"),
                out_norm=norm(p + "output.LayerNorm"),
            ))


def _read_folder(path: Path) -> tuple[Path, int | None, bool]:
    """The encoder's folder, its max_seq_length and do_lower_case; EmbedderError for what is not handled."""
    modules = _json(path / "modules.json")
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if not kinds or kinds[0] != "Transformer" or any(k not in _MODULES for k in kinds):
        raise EmbedderError(
            f"{path}: modules {kinds} are not handled by MiniLMEmbedder (a Transformer, Pooling and "
            "Normalize only); use SentenceTransformerEmbedder"
        )
    encoder_dir = path / modules[0].get("path", "")
    config = _json(encoder_dir / "config.json")
    if config.get("model_type") != "bert" or config.get("hidden_act", "gelu") != "gelu" or (
        config.get("position_embedding_type", "absolute") != "absolute"
    ):
        raise EmbedderError(f"{path}: only BERT models with GELU and absolute positions run without torch; "
                            "use SentenceTransformerEmbedder")
    for module, kind in zip(modules, kinds):
        if kind == "Pooling":
            pooling = _json(path / module["path"] / "config.json")
            modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
            if modes != ["pooling_mode_mean_tokens"]:
                raise EmbedderError(f"{path}: pooling {modes} is not handled (mean pooling only); "
                                    "use SentenceTransformerEmbedder")
    sbert = encoder_dir / "sentence_bert_config.json"
    settings = _json(sbert) if sbert.is_file() else {}
    return encoder_dir, settings.get("max_seq_length"), bool(settings.get("do_lower_case", False))


def _json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EmbedderError(f"cannot read {file}: {exc}") from exc


def _layer_norm(x: np.ndarray, norm: tuple[np.ndarray, np.ndarray], eps: np.float32) -> np.ndarray:
    """LayerNorm over the last axis of the (tokens, hidden) array `x`, in place."""
    x -= x.mean(axis=-1, keepdims=True)
    x *= 1 / np.sqrt(np.einsum("ij,ij->i", x, x)[:, None] / np.float32(x.shape[-1]) + eps)
    x *= norm[0]
    x += norm[1]
    return x


def _attend(q: np.ndarray, k: np.ndarray, v: np.ndarray, length: int, out: np.ndarray) -> None:
    """Self-attention of one text of `length` tokens; q (scaled), k and v are (heads, width, head_dim).

    Writes `out` (width, heads, head_dim). Only the text's own keys are used, so padding needs no
    mask; padding rows get zeros. The queries go in blocks small enough that OpenBLAS runs each
    product on the calling thread, and the texts of a batch run in parallel on the pool: thousands
    of small products threaded by OpenBLAS each wait for its threads, which made attention 30 times
    slower when another process kept one of two cores busy.
    """
    heads, _, head_dim = q.shape
    # a contiguous copy of the keys, transposed, makes the small products twice as fast
    keys = np.ascontiguousarray(k[:, :length].transpose(0, 2, 1))[:, None]
    values = v[:, None, :length]
    step = max(1, _ONE_THREAD // (length * head_dim))  # query rows per product
    whole = length // step * step
    for start, stop, rows in ((0, whole, step), (whole, length, length - whole)):
        if stop == start:
            continue
        scores = q[:, start:stop].reshape(heads, -1, rows, head_dim) @ keys  # (heads, blocks, rows, keys)
        scores -= scores.max(axis=-1, keepdims=True)  # softmax over the keys; its division comes last
        np.exp(scores, out=scores)
        context = scores @ values
        context /= scores.sum(axis=-1, keepdims=True)
        out[start:stop] = context.reshape(heads, stop - start, head_dim).transpose(1, 0, 2)
    out[length:] = 0


# erf(u) ~ u * P(u^2) / Q(u^2) on [-4, 4] (Eigen's float32 erf: 7e-8 in exact arithmetic, 5e-7 once
# evaluated in float32; float64 would halve the speed of the whole layer for nothing visible in the
# vectors); outside that range erf is +-1 in float32
_ERF_P = [np.float32(c) for c in (
    -2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
    -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)]
_ERF_Q = [np.float32(c) for c in (
    -1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
    -1.42647390514189e-02)]
_BLOCK = 65536  # elements per step: the temporaries stay in the CPU cache
_TASK = 16 * _BLOCK  # elements per task on the pool


def _gelu(x: np.ndarray, pool: ThreadPoolExecutor) -> None:
    """GELU with the exact erf, x * (1 + erf(x / sqrt 2)) / 2, in place on the float32 array `x`."""
    flat = x.reshape(-1)
    list(pool.map(_gelu_blocks, (flat[i : i + _TASK] for i in range(0, flat.size, _TASK))))


def _gelu_blocks(x: np.ndarray) -> None:
    u, u2, p, q = (np.empty(min(_BLOCK, x.size), dtype=np.float32) for _ in range(4))
    for start in range(0, x.size, _BLOCK):
        block = x[start : start + _BLOCK]
        n = block.size
        _gelu_block(block, u[:n], u2[:n], p[:n], q[:n])


def _gelu_block(x: np.ndarray, u: np.ndarray, u2: np.ndarray, p: np.ndarray, q: np.ndarray) -> None:
    np.multiply(x, np.float32(np.sqrt(0.5)), out=u)
    np.clip(u, -4, 4, out=u)
    np.multiply(u, u, out=u2)
    np.multiply(u2, _ERF_P[0], out=p)
    for c in _ERF_P[1:-1]:
        p += c
        p *= u2
    p += _ERF_P[-1]
    p *= u
    np.multiply(u2, _ERF_Q[0], out=q)
    for c in _ERF_Q[1:-1]:
        q += c
        q *= u2
    q += _ERF_Q[-1]
    p /= q  # erf(x / sqrt 2)
    p += 1
    p *= 0.5
    x *= p


def default_embedder(model: str | os.PathLike[str] | None = None) -> Any:
    """The embedder for a model folder (default all-MiniLM-L6-v2): `MiniLMEmbedder` when it can
    run the folder (no torch: a process that only embeds questions starts in a blink), else
    `SentenceTransformerEmbedder`. Both give the same vectors for the folders both run."""
    from ._embed import SentenceTransformerEmbedder

    try:
        return MiniLMEmbedder(model)
    except (EmbedderError, RetrievalConfigError):
        return SentenceTransformerEmbedder(model)
