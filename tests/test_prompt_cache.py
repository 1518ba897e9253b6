"""The prompt cache's store (agent/_prompt_cache.py): keys, atomic entries, damage, eviction."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tooltoken._prompt_cache import MAGIC, PromptCache, entry_key

pytestmark = pytest.mark.unit

TOKENS = list(range(100, 200))
STATE = bytes(range(256)) * 64
BASE = dict(model_sha256="a" * 64, tokens=TOKENS, build="0.3.36 AVX2 = 1",
            settings={"n_ctx": 4096, "type_k": 1, "type_v": 1, "n_threads": 2, "repacked": True})


@pytest.mark.parametrize("change", [
    {"model_sha256": "b" * 64},  # another model file
    {"tokens": TOKENS[:-1] + [7]},  # another prefix
    {"tokens": TOKENS[:-1]},  # a shorter one
    {"build": "0.3.37 AVX2 = 1"},  # another llama-cpp-python
    {"build": "0.3.36 AVX512 = 1"},  # the same version built for other kernels
    {"settings": {**BASE["settings"], "type_k": 8}},  # a Q8_0 KV cache
    {"settings": {**BASE["settings"], "n_threads": 1}},
    {"settings": {**BASE["settings"], "repacked": False}},
    {"settings": {**BASE["settings"], "n_ctx": 2048}},
])
def test_the_key_changes_with_every_input_that_decides_the_bytes(change):
    assert entry_key(**{**BASE, **change}) != entry_key(**BASE)


def test_the_key_is_stable_and_ignores_the_order_of_settings():
    again = {**BASE, "settings": dict(reversed(list(BASE["settings"].items())))}
    assert entry_key(**again) == entry_key(**BASE)


def test_an_entry_round_trips_and_leaves_no_temporary_file(tmp_path):
    cache = PromptCache(tmp_path)
    key = entry_key(**BASE)
    assert cache.get(key, TOKENS) is None
    assert cache.put(key, TOKENS, STATE)
    assert cache.get(key, TOKENS) == STATE
    assert [p.name for p in tmp_path.iterdir()] == [f"{key}.kv"]
    assert cache.take_warning() is None


@pytest.mark.parametrize("damage", ["truncate", "flip", "magic", "empty", "header"])
def test_a_damaged_entry_is_deleted_not_loaded(tmp_path, damage):
    cache, key = PromptCache(tmp_path), entry_key(**BASE)
    cache.put(key, TOKENS, STATE)
    path = tmp_path / f"{key}.kv"
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 100]
    elif damage == "flip":
        data[-10] ^= 0xFF
    elif damage == "magic":
        data[:4] = b"GGUF"
    elif damage == "empty":
        data = bytearray()
    else:
        data[len(MAGIC) + 8:len(MAGIC) + 12] = b"{{{{"
    path.write_bytes(bytes(data))
    assert cache.get(key, TOKENS) is None
    assert not path.exists()  # rebuilt on the next save
    assert cache.put(key, TOKENS, STATE) and cache.get(key, TOKENS) == STATE


def test_an_entry_for_other_tokens_or_under_another_name_is_not_loaded(tmp_path):
    cache, key = PromptCache(tmp_path), entry_key(**BASE)
    cache.put(key, TOKENS, STATE)
    assert cache.get(key, TOKENS[:-1] + [1]) is None  # same name, other prefix (a collision)
    cache.put(key, TOKENS, STATE)
    other = entry_key(**{**BASE, "model_sha256": "c" * 64})
    os.replace(tmp_path / f"{key}.kv", tmp_path / f"{other}.kv")  # a file renamed by hand
    assert cache.get(other, TOKENS) is None


def test_least_recently_used_entries_go_beyond_the_bound(tmp_path):
    size = len(STATE) + len(TOKENS) * 4 + 300
    cache = PromptCache(tmp_path, max_bytes=int(size * 2.5))
    keys = [entry_key(**{**BASE, "build": str(k)}) for k in range(3)]
    cache.put(keys[0], TOKENS, STATE)
    cache.put(keys[1], TOKENS, STATE)
    os.utime(tmp_path / f"{keys[0]}.kv", (1, 1))
    os.utime(tmp_path / f"{keys[1]}.kv", (2, 2))
    assert cache.get(keys[0], TOKENS) == STATE  # used: now the most recent
    cache.put(keys[2], TOKENS, STATE)
    assert sorted(p.stem for p in tmp_path.iterdir()) == sorted([keys[0], keys[2]])
    assert not PromptCache(tmp_path, max_bytes=100).put(keys[1], TOKENS, STATE)  # bigger than the bound


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_a_read_only_dir_warns_once(tmp_path):
    tmp_path.chmod(0o500)
    try:
        cache = PromptCache(tmp_path / "prompts")
        assert not cache.put(entry_key(**BASE), TOKENS, STATE)
        assert "prompt cache off" in (cache.take_warning() or "")
        assert cache.take_warning() is None
    finally:
        tmp_path.chmod(0o700)


def test_a_dir_that_cannot_be_made_warns_once_and_the_rest_goes_on(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = PromptCache(blocker / "prompts")
    key = entry_key(**BASE)
    assert not cache.put(key, TOKENS, STATE)
    assert cache.get(key, TOKENS) is None
    warning = cache.take_warning()
    assert warning and "prompt cache off" in warning and str(blocker) in warning
    assert not cache.put(key, TOKENS, STATE)
    assert cache.take_warning() is None  # one warning, however many failures


def test_a_dir_deleted_while_running_is_made_again(tmp_path):
    root = tmp_path / "prompts"
    cache, key = PromptCache(root), entry_key(**BASE)
    cache.put(key, TOKENS, STATE)
    for p in root.iterdir():
        p.unlink()
    root.rmdir()
    assert cache.get(key, TOKENS) is None
    assert cache.put(key, TOKENS, STATE) and cache.get(key, TOKENS) == STATE


def test_two_processes_writing_one_entry_at_once(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from tooltoken._prompt_cache import PromptCache
        cache = PromptCache({str(tmp_path)!r})
        tokens, state = list(range(100, 200)), bytes(range(256)) * 4096 * int(sys.argv[1])
        for _ in range(20):
            assert cache.put("k" * 40, tokens, state)
            got = cache.get("k" * 40, tokens)
            assert got is None or len(got) % (256 * 4096) == 0  # a whole entry, one writer's or the other's
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)]) for n in (1, 2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    got = PromptCache(tmp_path).get("k" * 40, TOKENS)
    assert got is not None and len(got) in (256 * 4096, 2 * 256 * 4096)
    assert [p.name for p in tmp_path.iterdir()] == ["k" * 40 + ".kv"]
