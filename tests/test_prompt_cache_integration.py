"""The prompt cache on the real small model: a second process restores the prefix the first
evaluated, and gives the same answer token for token (batch-invariant settings on both)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

TOOLTOKEN = [sys.executable, "-c", "from tooltoken.app.cli import main; main()"]
QUESTION = "A shop sells pens at 3 dollars each. Tom buys 14 pens and pays with a 50 dollar note. What is his change?"


def ask(model: str, cache: str, *flags: str) -> dict:
    env = dict(os.environ, TOOLTOKEN_BATCH_INVARIANT="1", TOOLTOKEN_CACHE_DIR=cache, COLUMNS="200")
    out = subprocess.run([*TOOLTOKEN, "ask", QUESTION, "--model", model, "--tools", "calculator", "--json",
                          "--max-tokens", "48", *flags], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def entries(cache) -> list:
    return sorted((cache / "prompts").glob("*.kv"))


def test_a_second_process_restores_the_prefix_and_answers_the_same(smollm2_path, tmp_path):
    first = ask(smollm2_path, str(tmp_path))
    assert first["usage"]["prompt_tokens_restored"] == 0
    assert len(entries(tmp_path)) == 1, first["route"]
    second = ask(smollm2_path, str(tmp_path))
    restored = second["usage"]["prompt_tokens_restored"]
    assert restored >= 64  # the path's static prefix: template and instructions
    # only the question and what follows it were evaluated
    assert second["usage"]["prompt_tokens_evaluated"] == first["usage"]["prompt_tokens_evaluated"] - restored
    assert second["answer"] == first["answer"] and second["tool_calls"] == first["tool_calls"]
    assert second["warnings"] == first["warnings"] == []

    # a damaged entry is rebuilt, never loaded; the answer is the same
    (entry,) = entries(tmp_path)
    entry.write_bytes(entry.read_bytes()[:-4096])
    third = ask(smollm2_path, str(tmp_path))
    assert third["usage"]["prompt_tokens_restored"] == 0 and third["answer"] == first["answer"]
    assert ask(smollm2_path, str(tmp_path))["usage"]["prompt_tokens_restored"] == restored

    # --no-prompt-cache: nothing restored, nothing written
    off = tmp_path / "off"
    assert ask(smollm2_path, str(off), "--no-prompt-cache")["usage"]["prompt_tokens_restored"] == 0
    assert not (off / "prompts").exists()


def test_an_entry_of_another_model_or_build_is_never_loaded(smollm2_path, tmp_path):
    from tooltoken import Agent, LlamaBackend
    from tooltoken._backend import GenerateStats
    from tooltoken._prompt_cache import PromptCache

    backend = LlamaBackend(smollm2_path, prompt_cache=PromptCache(tmp_path))
    prefix = backend.tokenize("<|im_start|>system\n" + "You answer questions about the sea. " * 12, special=True)
    stats = GenerateStats()
    assert backend.prime(prefix, stats) is None and stats.primed == len(prefix)
    backend.llm.n_tokens = 0  # a new process: the KV cache is empty
    assert backend.prime(prefix, stats) is None and stats.restored == len(prefix)
    for field, other in (("model", "0" * 64), ("build", "0.0.0 another build")):
        saved = dict(backend._cache_base)
        backend._cache_base[field] = other
        backend.llm.n_tokens = 0
        fresh = GenerateStats()
        backend.prime(prefix, fresh)
        assert fresh.restored == 0 and fresh.primed == len(prefix), field
        backend._cache_base = saved
    assert len(list(tmp_path.glob("*.kv"))) == 3
    # an Agent's prefix (template, its system prompt) is saved by its first answer, restored by the next
    backend.llm.n_tokens = 0
    agent = Agent(backend, system="You answer questions about the sea. " * 12, max_tokens=8)
    first = agent.run("Name one ocean.")
    backend.llm.n_tokens = 0
    again = agent.run("Name one ocean.")
    assert first.usage.prompt_tokens_restored == 0 and again.usage.prompt_tokens_restored > 60
    assert again.usage.prompt_tokens_evaluated == first.usage.prompt_tokens_evaluated - again.usage.prompt_tokens_restored
    assert again.answer == first.answer and again.stop_reason in ("stop", "length")
    backend.llm.close()


def test_an_unusable_cache_dir_costs_one_warning_not_the_answer(smollm2_path, tmp_path):
    from tooltoken import Agent, LlamaBackend
    from tooltoken._prompt_cache import PromptCache

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    backend = LlamaBackend(smollm2_path, prompt_cache=PromptCache(blocker / "prompts"))
    agent = Agent(backend, system="You answer questions about the sea. " * 12, max_tokens=8)
    first = agent.run("Name one ocean.")
    assert first.stop_reason in ("stop", "length") and first.answer
    assert [w for w in first.warnings if "prompt cache off" in w], first.warnings
    backend.llm.n_tokens = 0
    second = agent.run("Name one sea.")
    assert not [w for w in second.warnings if "prompt cache" in w]  # one warning, not one an answer
    backend.llm.close()
