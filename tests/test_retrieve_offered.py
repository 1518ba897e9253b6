"""`retrieve` is offered whenever an index exists: the CLI builds its tools from the one list
(`tooltoken.tools.default_tools`), as a new user runs it: `tooltoken index docs/`, then `ask`;
and a question about the indexed documents takes the lookup path over them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

TOOLTOKEN = [sys.executable, "-c", "from tooltoken.app.cli import main; main()"]


def test_after_tooltoken_index_ask_declares_and_runs_retrieve(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "policy.md").write_text("# Zorblax refunds\n\nZorblax refunds take 17 days from the day of the request.\n")
    env = {**os.environ, "TOOLTOKEN_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    ask = [*TOOLTOKEN, "ask", "How long do zorblax refunds take?", "--model", "smollm2-135m", "--json",
           "--show-prompt", "--max-tokens", "8", "--tool-choice", "retrieve"]

    before = subprocess.run(ask, env=env, capture_output=True, text=True, timeout=600)
    assert "retrieve" not in _declared(before.stderr)  # no index yet: not offered

    made = subprocess.run([*TOOLTOKEN, "index", str(docs)], env=env, capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr
    after = subprocess.run(ask, env=env, capture_output=True, text=True, timeout=600)
    assert after.returncode == 0, after.stderr
    assert "retrieve" in _declared(after.stderr)
    final = json.loads(after.stdout)
    [call] = final["tool_calls"][:1]
    assert call["name"] == "retrieve" and isinstance(call["arguments"].get("query"), str)  # a forced, valid call
    result = final["tool_results"][0]
    assert not result["error"] and "17 days" in result["content"], result  # one chunk: whatever the query, it is found

    # unforced, the question takes the lookup path: retrieve (and search) before any word of the model's
    asked = subprocess.run([*TOOLTOKEN, "ask", "How long do zorblax refunds take?", "--model", "smollm2-135m",
                            "--events", "--max-tokens", "24"], env=env, capture_output=True, text=True, timeout=600)
    assert asked.returncode == 0, asked.stderr
    events = [json.loads(line) for line in asked.stdout.splitlines() if line.startswith("{")]
    assert events[-1]["event"] == "Final" and events[-1]["route"] == "lookup"
    before = [e for e in events[: next(k for k, e in enumerate(events) if e["event"] not in ("ToolCall", "ToolResult"))]]
    assert {e["name"] for e in before if e["event"] == "ToolCall"} == {"retrieve", "search"}, before
    retrieved = next(e for e in before if e["event"] == "ToolResult" and e["name"] == "retrieve")
    assert not retrieved["error"] and "17 days" in retrieved["content"]
    assert all(e["name"] != "calculator" for e in events if e["event"] == "ToolCall")  # facts are not computed


def _declared(prompt: str) -> set[str]:
    """Names of the tools a prompt declares (`"name": "..."` of each function)."""
    import re

    return set(re.findall(r'"function": \{"name": "([a-z_]+)"', prompt)) | set(
        re.findall(r'"name": "([a-z_]+)", "description"', prompt))
