"""Index files into a vector store, incrementally.

    >>> with MilvusStore() as store:                                   # doctest: +SKIP
    ...     report = ingest(["./docs"], store, SentenceTransformerEmbedder())
    >>> report.files_new, [s.path for s in report.skipped]             # doctest: +SKIP
    (12, ['/home/me/docs/broken.pdf'])

Folders are walked recursively (hidden files and folders are left out) for .txt, .md, .rst,
.html and .pdf files; a file over `max_file_bytes` (default `MAX_FILE_BYTES`, 25 MiB) is skipped
unread (a 50 MB log or dump is hours of embedding on a laptop's CPU, and mostly noise to
retrieval). A manifest (see _manifest.py) holds each indexed file's SHA-256, so a run
embeds only new and changed files and removes the chunks of files deleted under the given paths;
files elsewhere in the index are left alone. A file that cannot be read or parsed is skipped,
listed in the report with the reason, and keeps whatever it had in the index before.

Work goes in batches of about `batch_chunks` chunks: embed, record the batch as pending in the
manifest, write to the store, then commit the manifest. If the process is killed, the next run
first undoes the pending batch in the store, so the index and the manifest agree again, and then
does what is left. `progress` is called with an `IngestProgress` after each step; nothing is
printed. Only one ingest runs per manifest at a time (a lock file beside it).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._chunk import check_sizes, split
from ._embed import Embedder
from ._errors import RetrievalConfigError, StoreError, StoreLockedError
from ._extract import Unreadable, extract, kind_of
from ._manifest import FileEntry, Manifest, Update
from ._store import VectorStore
from ._types import Chunk

__all__ = ["MAX_FILE_BYTES", "IngestProgress", "IngestReport", "Skipped", "ingest"]

MAX_FILE_BYTES = 25 * 1024 * 1024

_EMBED_STEP = 32


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class IngestProgress:
    """Where an ingest is. `stage` is "scan", "read", "embed" or "done"; chunk counts are those
    to embed in this run (known after "read")."""

    stage: str
    files_done: int
    files_total: int
    chunks_done: int = 0
    chunks_total: int = 0


@dataclass
class IngestReport:
    files_new: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    files_deleted: int = 0
    chunks_embedded: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    recovered: bool = False  # a batch left pending by a killed run was undone first
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0


ProgressFn = Callable[[IngestProgress], None]


def ingest(
    paths: Iterable[str | os.PathLike[str]],
    store: VectorStore,
    embedder: Embedder,
    *,
    chunk_size: int = 800,
    chunk_overlap: int = 100,
    manifest_path: str | os.PathLike[str] | None = None,
    batch_chunks: int = 256,
    progress: ProgressFn | None = None,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> IngestReport:
    """Bring the index up to date with the files under `paths` (see the module docstring)."""
    started = time.perf_counter()
    check_sizes(chunk_size, chunk_overlap)
    if batch_chunks < 1:
        raise RetrievalConfigError("batch_chunks must be at least 1")
    roots = [Path(p).expanduser().resolve() for p in paths]
    if not roots:
        raise RetrievalConfigError("give at least one file or folder to index")
    for root in roots:
        if not root.exists():
            raise RetrievalConfigError(f"{root} does not exist")
    if manifest_path is None:
        manifest_path = getattr(store, "manifest_path", None)
        if manifest_path is None:
            raise RetrievalConfigError("this store has no manifest_path; pass manifest_path=")
    report = IngestReport()
    note: ProgressFn = progress or (lambda p: None)
    lock = _lock(Path(str(manifest_path) + ".lock"))
    try:
        manifest = Manifest.load(manifest_path)
        _check_settings(manifest, embedder)
        undo = manifest.recovery()
        if undo is not None:
            _apply(store, manifest, undo, [], None)
            manifest.commit(undo)
            report.recovered = True
        params = f"{chunk_size}/{chunk_overlap}"
        todo, deleted = _scan(roots, manifest, params, report, note, max_file_bytes)
        batches = _read(todo, manifest, params, chunk_size, chunk_overlap, batch_chunks, report, note)
        total = sum(len(e.chunks) for b in batches for e, _ in b.values() if e is not None)
        files_total = sum(len(b) for b in batches)
        done = files_done = 0
        first: dict[str, tuple[FileEntry | None, list[Chunk]]] = {p: (None, []) for p in deleted}
        for batch in [first, *batches] if first else batches:
            up = manifest.plan({p: e for p, (e, _) in batch.items()})
            chunks: dict[str, Chunk] = {}
            for p, (_, cs) in batch.items():
                for c in cs:
                    if up.write.get(c.id) == p:
                        chunks.setdefault(c.id, c)  # a text twice in a file: its first place, as the manifest
            # longest first, as SentenceTransformer.encode orders a call: steps of similar
            # lengths pad little, so embedding in steps costs what one big encode call does
            todo_ids = sorted(up.write, key=lambda i: (-len(chunks[i].text), i))
            vectors = []
            for i in range(0, len(todo_ids), _EMBED_STEP):
                step = todo_ids[i : i + _EMBED_STEP]
                vectors.append(embedder.embed([chunks[c].text for c in step]))
                report.chunks_embedded += len(step)
                note(IngestProgress("embed", files_done, files_total, min(total, done + i + len(step)), total))
            manifest.begin(up)
            matrix = np.concatenate(vectors) if vectors else np.zeros((0, embedder.dim), np.float32)
            _apply(store, manifest, up, [chunks[i] for i in todo_ids], matrix)
            manifest.commit(up)
            done += sum(len(e.chunks) for e, _ in batch.values() if e is not None)
            files_done += sum(1 for e, _ in batch.values() if e is not None)
            note(IngestProgress("embed", files_done, files_total, done, total))
            report.chunks_written += len(up.write) + len(up.repoint)
            report.chunks_deleted += len(up.delete)
        store.flush()
        note(IngestProgress("done", files_total, files_total, total, total))
    finally:
        os.close(lock)
    report.seconds = time.perf_counter() - started
    return report


def _check_settings(manifest: Manifest, embedder: Embedder) -> None:
    want = {"embedder": embedder.name, "dim": int(embedder.dim)}
    have = manifest.settings
    if manifest.files and have and (have.get("embedder"), have.get("dim")) != (want["embedder"], want["dim"]):
        raise RetrievalConfigError(
            f"this index was built with the embedder {have.get('embedder')!r} ({have.get('dim')} dimensions), "
            f"not {want['embedder']!r} ({want['dim']}); index into another --db or delete this index"
        )
    manifest.settings = want


def _scan(
    roots: list[Path], manifest: Manifest, params: str, report: IngestReport, note: ProgressFn, max_bytes: int
) -> tuple[dict[str, tuple[str, bytes]], list[str]]:
    """Files to (re)index as {path: (sha256, bytes)}, and indexed files that are gone."""
    found: dict[str, Path] = {}
    for root in roots:
        for path in _walk(root):
            found.setdefault(str(path), path)
    todo: dict[str, tuple[str, bytes]] = {}
    for n, (key, path) in enumerate(sorted(found.items()), 1):
        note(IngestProgress("scan", n, len(found)))
        if kind_of(path) is None:
            report.skipped.append(Skipped(key, f"unsupported file type {path.suffix or '(none)'}"))
            continue
        try:
            size = path.stat().st_size
            if size > max_bytes:  # skipped unread; what it had in the index stays
                report.skipped.append(Skipped(key, f"larger than {_mib(max_bytes)} ({_mib(size)}); raise the limit "
                                                   "with --max-file-mb (ingest: max_file_bytes=)"))
                continue
            data = path.read_bytes()
        except OSError as exc:
            report.skipped.append(Skipped(key, f"cannot read: {exc.strerror or exc}"))
            continue
        sha = hashlib.sha256(data).hexdigest()
        old = manifest.files.get(key)
        if old is not None and old.sha256 == sha and old.params == params:
            report.files_unchanged += 1
        else:
            todo[key] = (sha, data)
    under = [str(r) for r in roots]
    deleted = [
        p
        for p in manifest.files
        if p not in found and any(p == r or p.startswith(r.rstrip(os.sep) + os.sep) for r in under) and not os.path.exists(p)
    ]
    report.files_deleted = len(deleted)
    return todo, deleted


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"


def _walk(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and kind_of(Path(name)) is not None:
                yield Path(dirpath) / name


def _read(
    todo: dict[str, tuple[str, bytes]],
    manifest: Manifest,
    params: str,
    chunk_size: int,
    chunk_overlap: int,
    batch_chunks: int,
    report: IngestReport,
    note: ProgressFn,
) -> list[dict[str, tuple[FileEntry | None, list[Chunk]]]]:
    """Extract and chunk the files to index, grouped into batches of about batch_chunks."""
    batches: list[dict[str, tuple[FileEntry | None, list[Chunk]]]] = [{}]
    size = 0
    for n, (key, (sha, data)) in enumerate(todo.items(), 1):
        note(IngestProgress("read", n, len(todo)))
        path = Path(key)
        kind = kind_of(path) or "txt"
        try:
            chunks = split(extract(path, data), key, kind, chunk_size, chunk_overlap)
        except Unreadable as exc:
            report.skipped.append(Skipped(key, str(exc)))
            continue
        if len(key.encode("utf-8")) > 8000:
            report.skipped.append(Skipped(key, "the path is too long to store"))
            continue
        if key in manifest.files:
            report.files_changed += 1
        else:
            report.files_new += 1
        entry = FileEntry(sha, kind, params, [(c.id, c.line_start, c.line_end, c.title) for c in chunks])
        if size and size + len(chunks) > batch_chunks:
            batches.append({})
            size = 0
        batches[-1][key] = (entry, chunks)
        size += len(chunks)
    return [b for b in batches if b]


def _apply(store: VectorStore, manifest: Manifest, up: Update, rows: list[Chunk], vectors: np.ndarray | None) -> None:
    """The store side of one batch: write `rows` (the chunks of `up.write`, one per row of
    `vectors`), re-point, delete; each step is idempotent."""
    if rows and vectors is not None:
        store.upsert(rows, vectors)
    if up.repoint:
        old = {c.id: c for c in store.get(list(up.repoint))}
        vecs = store.get_vectors(list(up.repoint))
        moved: list[Chunk] = []
        for i, path in up.repoint.items():
            entry = manifest.files.get(path) or (up.files.get(path))
            ref = entry.ref(i) if entry else None
            if i not in old or i not in vecs or ref is None or entry is None:
                raise StoreError(f"the index lost chunk {i} of {path}; delete the index and index again")
            moved.append(Chunk(i, old[i].text, path, ref[3], ref[1], ref[2], entry.kind))
        store.upsert(moved, np.stack([vecs[c.id] for c in moved]))
    if up.delete:
        store.delete(sorted(up.delete))


def _lock(path: Path) -> int:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StoreLockedError(f"another `tooltoken index` is updating this index ({path}); wait for it to finish") from None
    return fd
