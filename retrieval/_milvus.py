"""`MilvusStore`: chunks in a Milvus collection, through pymilvus' `MilvusClient`.

    >>> store = MilvusStore()                                  # Milvus Lite, default directory
    >>> store = MilvusStore("./my-index")                      # Milvus Lite in ./my-index
    >>> store = MilvusStore(uri="http://milvus:19530", token="root:Milvus")   # a server

One collection holds, per chunk: the id (a hash of the text), the dense vector, the text (with
Milvus' BM25 function filling a sparse vector from it), and the metadata that filters and
citations use. Reads follow writes with strong consistency.

Milvus Lite runs inside this process and is single-process, so `MilvusStore` takes an exclusive
lock file beside the Lite directory first; a second process gets `StoreLockedError` saying so.
Under Lite, unfiltered dense search goes to an in-process index of the same vectors (see
_local_index.py for why and how much faster); filtered dense search, BM25 and every write go to
Milvus. A write is durable when it returns: Milvus Lite has written its WAL through to the OS
(it survives SIGKILL of this process) and a server has acknowledged it.

Files kept beside the Lite directory `X.db`: `X.db.lock` and the ingest manifest
`X.db.<collection>.manifest.json`. For a server they live under the data directory
(`servers/<host>-<hash of the uri>/`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import RetrievalConfigError, StoreError, StoreLockedError
from ._filters import build_filter
from ._local_index import LocalIndex
from ._store import data_dir
from ._types import Chunk, SearchResult

__all__ = ["MilvusStore"]

_FIELDS = ["text", "source", "title", "kind", "line_start", "line_end"]
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_BATCH = 500


class MilvusStore:
    """See the module docstring. `path` is a Lite directory ending in `.db`, or a directory to
    keep `milvus.db` in (default: `<data dir>/index`); `uri`/`token` reach a server instead."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        uri: str | None = None,
        token: str | None = None,
        collection: str = "chunks",
        dim: int | None = None,
        local_index: bool = True,
        timeout: float = 10.0,
    ) -> None:
        if path is not None and uri is not None:
            raise RetrievalConfigError("give either a Milvus Lite path or a server uri, not both")
        if not _NAME.match(collection):
            raise RetrievalConfigError(f"collection name {collection!r} must match {_NAME.pattern}")
        self.collection = collection
        self._local: LocalIndex | None = None
        self._use_local = local_index
        self._lock_fd: int | None = None
        self._client: Any = None
        pymilvus = _import_pymilvus()
        if uri is not None and not uri.endswith(".db"):
            self.lite = False
            self.where = uri
            self.state_dir = data_dir() / "servers" / _slug(uri)
            self.manifest_path = self.state_dir / f"{collection}.manifest.json"
            kwargs: dict[str, Any] = {"uri": uri, "timeout": timeout}
            if token:
                kwargs["token"] = token
        else:
            self.lite = True
            base = Path(path if path is not None else uri or data_dir() / "index").expanduser().resolve()
            self.milvus_dir = base if base.suffix == ".db" else base / "milvus.db"
            self.where = str(self.milvus_dir)
            self.state_dir = self.milvus_dir.parent
            self.manifest_path = self.state_dir / f"{self.milvus_dir.name}.{collection}.manifest.json"
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = _lock(self.state_dir / f"{self.milvus_dir.name}.lock", self.milvus_dir)
            # the Lite server runs in this process on loopback and refuses keepalive pings with
            # no call in flight (grpc then logs "too_many_pings" to stderr): no pings needed
            kwargs = {"uri": str(self.milvus_dir), "grpc_options": {"grpc.keepalive_time_ms": 2**31 - 1}}
        try:
            self._client = pymilvus.MilvusClient(**kwargs)
            self._dim = self._open(dim)
        except BaseException as exc:
            self.close()
            if isinstance(exc, (StoreError, RetrievalConfigError)):
                raise
            if isinstance(exc, Exception):
                raise StoreError(f"cannot open Milvus at {self.where}: {_why(exc)}") from exc
            raise

    # --- the VectorStore seam ------------------------------------------------------------

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if not chunks:
            return
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(chunks), vectors.shape[-1]):
            raise RetrievalConfigError(f"upsert: {len(chunks)} chunks but vectors of shape {vectors.shape}")
        if self._dim is None:
            self._dim = self._create(int(vectors.shape[1]))
        if vectors.shape[1] != self._dim:
            raise StoreError(f"vectors have {vectors.shape[1]} dimensions, the collection at {self.where} {self._dim}")
        last = {c.id: n for n, c in enumerate(chunks)}  # one row per id; the last one wins
        keep = sorted(last.values())
        rows = [_row(chunks[n], vectors[n]) for n in keep]
        for i in range(0, len(rows), _BATCH):
            self._call("write to", self._client.upsert, self.collection, rows[i : i + _BATCH])
        if self._local is not None:
            self._local.add([chunks[n].id for n in keep], vectors[keep])

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(dict.fromkeys(ids))
        if not ids or self._dim is None:
            return
        for i in range(0, len(ids), _BATCH):
            self._call("delete from", self._client.delete, self.collection, ids=ids[i : i + _BATCH])
        if self._local is not None:
            self._local.remove(ids)

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        """The chunks with these ids that exist, in the order asked."""
        rows = self._get(ids, _FIELDS)
        return [_chunk(rows[i]) for i in ids if i in rows]

    def get_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        rows = self._get(ids, ["vector"])
        return {i: np.asarray(r["vector"], dtype=np.float32) for i, r in rows.items()}

    def search(self, vector: np.ndarray, k: int, filters: Mapping[str, Any] | None = None) -> list[SearchResult]:
        """Dense search by inner product (cosine for normalised vectors)."""
        expr = build_filter(filters)
        if self._dim is None or k <= 0:
            return []
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if self.lite and self._use_local and not expr:
            pairs = self._local_index().search(vector, k)
            chunks = {c.id: c for c in self.get([i for i, _ in pairs])}
            return [SearchResult(chunks[i], s) for i, s in pairs if i in chunks]
        params = {"metric_type": "IP", "params": {} if self.lite else {"ef": max(64, k)}}
        return self._search([vector.tolist()], "vector", k, expr, params)

    def text_search(self, query: str, k: int, filters: Mapping[str, Any] | None = None) -> list[SearchResult]:
        """BM25 over the chunk texts (Milvus' analyzer and BM25 function)."""
        expr = build_filter(filters)
        if self._dim is None or k <= 0 or not query.strip():
            return []
        hits = self._search([query], "sparse", k, expr, {"metric_type": "BM25"})
        # Milvus Lite 3.x reports -score for BM25 (its "smaller is closer" convention), a server
        # +score; BM25 is never negative, so the magnitude is the score on both
        return [SearchResult(h.chunk, abs(h.score)) for h in hits]

    def flush(self) -> None:
        if self._dim is not None:
            self._call("flush", self._client.flush, self.collection)

    def close(self) -> None:
        """Disconnect (and stop Milvus Lite and release its lock). Safe to call twice."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            finally:
                if self.lite:
                    _release_lite(str(self.milvus_dir))
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def __enter__(self) -> MilvusStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- extras --------------------------------------------------------------------------

    def ids(self) -> set[str]:
        """Every chunk id in the collection (reads them all: for checks, not for hot paths)."""
        return {r["id"] for r in self._all_rows(["id"])}

    def count(self) -> int:
        if self._dim is None:
            return 0
        rows = self._call("count rows in", self._client.query, self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    # --- internals -----------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._client is None:
            raise StoreError(f"the store at {self.where} is closed")
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # pymilvus raises MilvusException and grpc errors alike
            raise StoreError(f"cannot {what} Milvus at {self.where}: {_why(exc)}") from exc

    def _open(self, dim: int | None) -> int | None:
        if not self._call("list collections in", self._client.has_collection, self.collection):
            return self._create(dim) if dim else None
        info = self._call("describe", self._client.describe_collection, self.collection)
        have = next((f.get("params", {}).get("dim") for f in info["fields"] if f["name"] == "vector"), None)
        if have is None or {f["name"] for f in info["fields"]} < {"id", "vector", "sparse", *_FIELDS}:
            raise StoreError(f"collection {self.collection!r} at {self.where} was not made by tooltoken; use another")
        if dim and int(have) != dim:
            raise StoreError(
                f"collection {self.collection!r} at {self.where} holds {have}-dimensional vectors, the embedder "
                f"makes {dim}; index into another --db/collection or delete this one"
            )
        self._call("load", self._client.load_collection, self.collection)
        return int(have)

    def _create(self, dim: int) -> int:
        from pymilvus import DataType, Function, FunctionType

        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, max_length=64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("text", DataType.VARCHAR, max_length=65535, enable_analyzer=True)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("source", DataType.VARCHAR, max_length=8192)
        schema.add_field("title", DataType.VARCHAR, max_length=4096)
        schema.add_field("kind", DataType.VARCHAR, max_length=16)
        schema.add_field("line_start", DataType.INT64)
        schema.add_field("line_end", DataType.INT64)
        schema.add_function(
            Function(name="text_bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"])
        )
        index = self._client.prepare_index_params()
        if self.lite:  # Milvus Lite searches FLAT for filtered queries; the rest go to LocalIndex
            index.add_index("vector", index_type="FLAT", metric_type="IP")
        else:
            index.add_index("vector", index_type="HNSW", metric_type="IP", params={"M": 16, "efConstruction": 200})
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        self._call(
            "create a collection in", self._client.create_collection, self.collection, schema=schema, consistency_level="Strong"
        )
        # sync=False: the wait for an index build asks the server for a timestamp, which Milvus
        # Lite does not implement (it logs a traceback); on an empty collection there is no wait
        self._call("index", self._client.create_index, self.collection, index, sync=False)
        self._call("load", self._client.load_collection, self.collection)
        if self.lite and self._use_local:
            self._local = LocalIndex(dim)  # empty and in step from the start: no load needed
        return dim

    def _local_index(self) -> LocalIndex:
        if self._local is None:
            assert self._dim is not None
            local = LocalIndex(self._dim)
            rows = self._all_rows(["vector"])
            if rows:
                local.add([r["id"] for r in rows], np.asarray([r["vector"] for r in rows], dtype=np.float32))
            self._local = local
        return self._local

    def _all_rows(self, fields: list[str]) -> list[dict[str, Any]]:
        if self._dim is None:
            return []
        rows: list[dict[str, Any]] = []
        # one query per leading hex digit of the id (chunk_id makes hex ids) keeps each reply
        # a sixteenth of the collection; other ids are caught by the count check
        for h in "0123456789abcdef":
            rows += self._call("read from", self._client.query, self.collection, filter=f'id like "{h}%"', output_fields=fields)
        if len(rows) != self.count():
            rows = self._call("read from", self._client.query, self.collection, filter='id != ""', output_fields=fields)
        return rows

    def _get(self, ids: Sequence[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        ids = list(dict.fromkeys(ids))
        if not ids or self._dim is None:
            return {}
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), _BATCH):
            for r in self._call("read from", self._client.get, self.collection, ids=ids[i : i + _BATCH], output_fields=fields):
                out[r["id"]] = r
        return out

    def _search(self, data: list[Any], field: str, k: int, expr: str, params: dict[str, Any]) -> list[SearchResult]:
        res = self._call(
            "search",
            self._client.search,
            self.collection,
            data=data,
            anns_field=field,
            limit=k,
            filter=expr,
            output_fields=_FIELDS,
            search_params=params,
        )
        return [SearchResult(_chunk({"id": h["id"], **h["entity"]}), float(h["distance"])) for h in res[0]]


def _row(c: Chunk, v: np.ndarray) -> dict[str, Any]:
    return {
        "id": c.id,
        "vector": v,
        "text": c.text,
        "source": c.source,
        "title": c.title,
        "kind": c.kind,
        "line_start": c.line_start,
        "line_end": c.line_end,
    }


def _chunk(r: Mapping[str, Any]) -> Chunk:
    return Chunk(
        id=r["id"],
        text=r["text"],
        source=r["source"],
        title=r["title"],
        line_start=int(r["line_start"]),
        line_end=int(r["line_end"]),
        kind=r["kind"],
    )


def _import_pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError:
        raise RetrievalConfigError("the Milvus store needs pymilvus and milvus-lite: pip install 'tooltoken[milvus]'") from None
    return pymilvus


def _slug(uri: str) -> str:
    host = re.sub(r"^[a-z]+://", "", uri).split("/")[0]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", host)[:60] + "-" + hashlib.sha256(uri.encode()).hexdigest()[:8]


def _why(exc: BaseException) -> str:
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(msg).split())[:500]


def _lock(path: Path, what: Path) -> int:
    """An exclusive, non-blocking flock on `path`; the kernel drops it if the process dies."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "another process"
        os.close(fd)
        raise StoreLockedError(
            f"the Milvus Lite index {what} is in use by process {holder}; Milvus Lite is single-process: "
            "wait for it to finish or stop it, or serve the index with a Milvus server and use --uri"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _release_lite(path: str) -> None:
    """Stop the in-process Milvus Lite server pymilvus started for `path`, freeing its LOCK."""
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return
    server_manager_instance.release_server(path)
