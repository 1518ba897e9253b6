"""The `tooltoken` command, run as a user runs it (a real process, the real small model)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

TOOLTOKEN = [sys.executable, "-c", "from tooltoken.app.cli import main; main()"]


def run(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", **(env or {}))
    return subprocess.run([*TOOLTOKEN, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.unit
def test_models_list_shows_both_packs():
    out = run("models", "list")
    assert out.returncode == 0, out.stderr
    assert "smollm2-135m" in out.stdout and "qwen2.5-coder-1.5b (default)" in out.stdout


@pytest.mark.unit
def test_unknown_model_is_a_clear_error_not_a_traceback():
    out = run("ask", "hi", "--model", "nope")
    assert out.returncode == 1
    assert "valid models" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.unit
@pytest.mark.parametrize("command", [["ask", "hi"], ["chat"], ["run", "q.jsonl", "-o", "a.jsonl"], ["serve"]])
def test_sampling_flags_on_every_answering_command(command):
    """--top-p 0 reaches the settings (and is refused there, before any model loads)."""
    out = run(*command, "--model", "nope", "--top-p", "0", "--temperature", "0.5")
    assert out.returncode == 1, out.stderr
    assert "top_p" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.unit
@pytest.mark.parametrize("command", [["ask", "hi"], ["chat"], ["run", "q.jsonl", "-o", "a.jsonl"], ["serve"]])
def test_draft_flag_on_every_answering_command(command):
    """--draft '' reaches the settings (and is refused there, before any model loads)."""
    out = run(*command, "--model", "nope", "--draft", "")
    assert out.returncode == 1, out.stderr
    assert "draft" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.integration
def test_ask_with_a_draft_gives_the_text_of_plain_decoding(smollm2_path):
    """`--draft prompt-lookup` against a plain run with the same (batch-invariant) settings: the
    CLI has no flag for those, so the plain side is the library's."""
    from tooltoken import Agent, LlamaBackend
    from tooltoken.tools.calculator import calculator

    question = "Repeat this sentence twice: the quick brown fox jumps over the lazy dog near the river bank."
    # Exact text is the point here, so both sides are made stable first: batch-invariant (the
    # default with a draft, pinned for the process whatever CI's configuration says) and on the
    # same number of threads (TOOLTOKEN_THREADS, if set, reaches both).
    out = run("ask", question, "--model", smollm2_path, "--json", "--tools", "calculator", "--max-tokens", "48",
              "--draft", "prompt-lookup", env={"TOOLTOKEN_BATCH_INVARIANT": "1"})
    assert out.returncode == 0, out.stderr
    plain = Agent(LlamaBackend(smollm2_path, batch_invariant=True), tools=[calculator], max_tokens=48)
    assert json.loads(out.stdout)["answer"] == plain.run(question).answer
    plain.backend.llm.close()


@pytest.mark.unit
def test_import_tooltoken_is_light():
    code = "import sys, tooltoken, tooltoken.tools; print(sorted(m for m in ('torch', 'pymilvus', 'llama_cpp') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.unit
def test_public_names_import():
    import tooltoken

    for name in tooltoken.__all__:
        assert getattr(tooltoken, name) is not None


@pytest.mark.integration
def test_ask_json_with_a_forced_call(smollm2_path, invariants):
    """Whatever expression the model writes (its words vary with the CPU's kernels): the call is
    the calculator's, its arguments validate, its exact value is inserted into the context the
    model goes on from, the KV cache is reused, the citations resolve."""
    from tooltoken.tools import Browser
    from tooltoken.tools.calculator import calculator

    out = run("ask", "What is 1234 * 5678?", "--model", smollm2_path, "--json", "--tool-choice", "calculator",
              "--max-tokens", "24", "--show-prompt")
    assert out.returncode == 0, out.stderr
    final = invariants.final(json.loads(out.stdout), [calculator, *Browser(None).tools()],
                             forced=["calculator"], fresh=True)
    invariants.calculator(final["tool_calls"][0], final["tool_results"][0])


@pytest.mark.integration
def test_ask_streams_text_and_tool_lines(smollm2_path):
    out = run("ask", "What is 2+2?", "--model", "smollm2-135m", "--tool-choice", "required", "--max-tokens", "16",
              "--show-prompt")
    assert out.returncode == 0, out.stderr
    # "required" lets the model pick any of the default tools (calculator, search, open, find, quote)
    assert re.search(r"^→ (calculator|search|open|find|quote)\(", out.stdout, re.M), out.stdout
    assert re.search(r"^← \[1\] ", out.stdout, re.M), out.stdout
    assert "<|im_start|>system" in out.stderr  # --show-prompt prints the exact prompt
