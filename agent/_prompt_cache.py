"""The prompt cache: the KV state of a prompt's static prefix, kept on disk between processes.

Every answer on a path starts with the same tokens (the system prompt, the path's instructions,
its tool declarations). A cold process would evaluate them again; instead the backend evaluates
them once, on their own, saves llama.cpp's state of that sequence here, and the next process
restores it (llama.cpp's server saves and restores slots the same way).

An entry is keyed by everything that decides its bytes (`entry_key`): the model file's sha256,
the exact prefix tokens, the llama.cpp build (version and the CPU features it was compiled
for) and the context settings that change the arithmetic (KV types, flash attention, batch
sizes, threads, weight repacking). A stale or foreign entry has another key and is never read.

Entries are written to a temporary file and renamed (a reader sees a whole entry or none; two
writers of one entry: the last rename wins), checked on read (magic, key, tokens, length and
sha256: a corrupt or truncated entry is deleted and rebuilt, never loaded) and evicted least
recently used beyond `max_bytes`. An unusable cache dir (read-only, full, deleted) costs the
answer its speed, never the answer: `warning` says why, once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tempfile
from array import array
from pathlib import Path
from typing import Any, Sequence

__all__ = ["DEFAULT_MAX_BYTES", "MIN_TOKENS", "PromptCache", "default_dir", "entry_key"]

MAGIC = b"TTKVv1\n\0"
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
# under this a prefix is the template's own few tokens. An entry is read back in milliseconds: the
# lookup path's 57-token system turn restored in 3 ms, where the default model evaluated it in
# 0.79 s on 2 cores (docs/results.md, "The lookup path")
MIN_TOKENS = 8
SUFFIX = ".kv"


def default_dir() -> Path:
    """`$TOOLTOKEN_CACHE_DIR/prompts`, else the user cache dir's."""
    from tooltoken.tools.corpus import cache_dir

    return cache_dir() / "prompts"


def entry_key(*, model_sha256: str, tokens: Sequence[int], build: str, settings: dict[str, Any]) -> str:
    """The name of an entry: a hash of every input that decides its bytes."""
    spec = {
        "format": MAGIC.decode("latin-1"),
        "model": model_sha256,
        "tokens": hashlib.sha256(_token_bytes(tokens)).hexdigest(),
        "n_tokens": len(tokens),
        "build": build,
        "settings": {k: settings[k] for k in sorted(settings)},
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:40]


class PromptCache:
    """A directory of entries (`<key>.kv`), bounded to `max_bytes` (least recently used go)."""

    def __init__(self, root: str | os.PathLike[str] | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root) if root is not None else default_dir()
        self.max_bytes = int(max_bytes)
        self.warning: str | None = None  # why the cache could not be used, the first time
        self._warned = False

    def __eq__(self, other: object) -> bool:  # one backend per model and cache (load_backend's key)
        return isinstance(other, PromptCache) and (self.root, self.max_bytes) == (other.root, other.max_bytes)

    def __hash__(self) -> int:
        return hash((self.root, self.max_bytes))

    def take_warning(self) -> str | None:
        """The first failure's warning, once; None after that or if nothing failed."""
        if self.warning is None or self._warned:
            return None
        self._warned = True
        return self.warning

    def get(self, key: str, tokens: Sequence[int]) -> bytes | None:
        """The state saved for `key`, or None (absent, or damaged: then it is deleted)."""
        path = self.root / f"{key}{SUFFIX}"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._fail(f"could not read {path}: {exc}")
            return None
        state = _parse(data, key, tokens)
        if state is None:  # truncated, corrupt, or another entry under this name: rebuilt
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: the last to be evicted
        return state

    def put(self, key: str, tokens: Sequence[int], state: bytes) -> bool:
        """Save `state` for `key` atomically; False if it was not saved (too big, or the dir failed)."""
        data = _pack(key, tokens, state)
        if len(data) > self.max_bytes:
            return False
        tmp = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{key}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.root / f"{key}{SUFFIX}")
            tmp = None
        except OSError as exc:
            self._fail(f"could not write to {self.root}: {exc}")
            return False
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self.evict(keep=key)
        return True

    def evict(self, keep: str | None = None) -> None:
        """Delete the least recently used entries until the rest fit in `max_bytes`."""
        try:
            entries = []
            for p in self.root.iterdir():
                if p.suffix == SUFFIX:
                    with contextlib.suppress(FileNotFoundError):
                        st = p.stat()
                        entries.append((st.st_mtime_ns, st.st_size, p))
        except OSError:
            return
        total = sum(size for _, size, _ in entries)
        for _, size, p in sorted(entries):
            if total <= self.max_bytes:
                break
            if p.stem == keep:
                continue
            with contextlib.suppress(OSError):
                p.unlink()
                total -= size

    def _fail(self, message: str) -> None:
        if self.warning is None:
            self.warning = f"prompt cache off: {message}"


def _token_bytes(tokens: Sequence[int]) -> bytes:
    return array("i", tokens).tobytes()


def _pack(key: str, tokens: Sequence[int], state: bytes) -> bytes:
    body = _token_bytes(tokens) + state
    header = json.dumps({"key": key, "tokens": len(tokens), "state": len(state),
                         "sha256": hashlib.sha256(body).hexdigest()}).encode()
    return MAGIC + struct.pack("<Q", len(header)) + header + body


def _parse(data: bytes, key: str, tokens: Sequence[int]) -> bytes | None:
    """The state in `data` if it is a whole, intact entry for `key` and `tokens`; else None."""
    start = len(MAGIC) + 8
    if len(data) < start or not data.startswith(MAGIC):
        return None
    (size,) = struct.unpack("<Q", data[len(MAGIC):start])
    try:
        header = json.loads(data[start:start + size])
        n, state_len, digest = int(header["tokens"]), int(header["state"]), str(header["sha256"])
        if header["key"] != key:
            return None
    except (ValueError, KeyError, TypeError):
        return None
    body = memoryview(data)[start + size:]
    want = _token_bytes(tokens)
    if n != len(tokens) or len(body) != len(want) + state_len or bytes(body[:len(want)]) != want:
        return None
    if hashlib.sha256(body).hexdigest() != digest:
        return None
    return bytes(body[len(want):])
