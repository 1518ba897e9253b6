"""The ingest manifest: which files are indexed, by content hash, and which chunks they hold.

    >>> m = Manifest(Path("/tmp/m.json"))
    >>> up = m.plan({"/d/a.md": FileEntry("h1", "md", "800/100", [("c1", 1, 4, "A")])})
    >>> up.write, up.delete
    ({'c1': '/d/a.md'}, set())

Chunks are stored once per distinct text (their id is a hash of it); the manifest lists, per
file, the chunks it holds with their line ranges and titles, and records which file "owns" the
stored row (whose path and lines the row carries). `plan` turns a batch of file changes into
store operations: rows to write from this batch, rows to re-point at another file that still
holds the same text when their owner changes or goes, and rows no file holds any more.

Crash safety, with the ingester doing: plan -> embed -> `begin` -> store writes -> `commit`.
`begin` records the batch as pending (its paths and the ids it may write) in an atomic write;
`commit` applies the batch and clears it, only after the store acknowledged its writes. If the
process dies in between, `recovery` gives the operations that bring the store back to what the
manifest says without the batch: the batch's files are forgotten (the next run indexes them
again as new), their rows are deleted or re-pointed, and rows the batch may have written that
no file holds are deleted. Every write of the file is write-temp, fsync, rename, fsync-dir.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import StoreError

__all__ = ["FileEntry", "Manifest", "Update"]

_FORMAT = "tooltoken-manifest/1"

#: (chunk id, first line, last line, title)
ChunkRef = tuple[str, int, int, str]


@dataclass
class FileEntry:
    sha256: str
    kind: str
    params: str  # "chunk_size/chunk_overlap" the file was cut with
    chunks: list[ChunkRef] = field(default_factory=list)

    def ref(self, id: str) -> ChunkRef | None:
        return next((c for c in self.chunks if c[0] == id), None)


@dataclass
class Update:
    files: dict[str, FileEntry | None]  # path -> new entry, None: the file is gone
    write: dict[str, str] = field(default_factory=dict)  # chunk id -> owner path in this batch
    repoint: dict[str, str] = field(default_factory=dict)  # chunk id -> owner path outside it
    delete: set[str] = field(default_factory=set)


class Manifest:
    def __init__(self, path: Path, settings: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.settings: dict[str, Any] = dict(settings or {})
        self.files: dict[str, FileEntry] = {}
        self.owners: dict[str, str] = {}
        self.pending: dict[str, list[str]] | None = None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        path = Path(path)
        m = cls(path)
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return m
        except OSError as exc:
            raise StoreError(f"cannot read the index manifest {path}: {exc}") from None
        try:
            data = json.loads(raw)
            if data.get("format") != _FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, expected {_FORMAT!r}")
            m.settings = dict(data["settings"])
            m.files = {
                p: FileEntry(e["sha256"], e["kind"], e["params"], [tuple(c) for c in e["chunks"]])  # type: ignore[misc]
                for p, e in data["files"].items()
            }
            m.owners = dict(data["owners"])
            m.pending = data.get("pending")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StoreError(
                f"the index manifest {path} is damaged ({exc}); delete the index (its directory) and index again"
            ) from None
        return m

    def save(self) -> None:
        data = {
            "format": _FORMAT,
            "settings": self.settings,
            "files": {
                p: {"sha256": e.sha256, "kind": e.kind, "params": e.params, "chunks": e.chunks}
                for p, e in sorted(self.files.items())
            },
            "owners": self.owners,
            "pending": self.pending,
        }
        _atomic_write(self.path, json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))

    def plan(self, updates: dict[str, FileEntry | None]) -> Update:
        """The store operations that take the index from this manifest to one with `updates`."""
        touched: set[str] = set()
        for p, new in updates.items():
            old = self.files.get(p)
            touched.update(c[0] for c in (old.chunks if old else ()))
            touched.update(c[0] for c in (new.chunks if new else ()))
        after = {**self.files, **{p: e for p, e in updates.items() if e is not None}}
        for p, e in updates.items():
            if e is None:
                after.pop(p, None)
        holders: dict[str, set[str]] = {i: set() for i in touched}
        for p, e in after.items():
            for c in e.chunks:
                if c[0] in holders:
                    holders[c[0]].add(p)
        up = Update(dict(updates))
        for i in sorted(touched):
            owner = self.owners.get(i)
            if not holders[i]:
                if owner is not None:
                    up.delete.add(i)
                continue
            if owner in holders[i]:
                if owner in updates:
                    old = self.files.get(owner)
                    new = after[owner]
                    if old is None or old.ref(i) != new.ref(i):
                        up.write[i] = owner  # same text, moved lines or title: rewrite the row
                continue
            in_batch = sorted(holders[i] & updates.keys())
            if in_batch:
                up.write[i] = in_batch[0]
            else:
                up.repoint[i] = min(holders[i])
        return up

    def begin(self, up: Update) -> None:
        self.pending = {"paths": sorted(up.files), "ids": sorted(up.write)}
        self.save()

    def commit(self, up: Update) -> None:
        for p, e in up.files.items():
            if e is None:
                self.files.pop(p, None)
            else:
                self.files[p] = e
        for i, p in {**up.write, **up.repoint}.items():
            self.owners[i] = p
        for i in up.delete:
            self.owners.pop(i, None)
        self.pending = None
        self.save()

    def recovery(self) -> Update | None:
        """After a crash between `begin` and `commit`: the operations that undo the batch."""
        if not self.pending:
            return None
        up = self.plan({p: None for p in self.pending["paths"]})
        held = {c[0] for p, e in self.files.items() if p not in up.files for c in e.chunks}
        up.delete.update(i for i in self.pending["ids"] if i not in held)
        return up


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
