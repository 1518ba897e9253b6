"""`retrieve` is offered whenever an index exists: the CLI builds its tools from the one list
(`tooltoken.tools.default_tools`), as a new user runs it: `tooltoken index docs/`, then `ask`."""

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


def _declared(prompt: str) -> set[str]:
    """Names of the tools a prompt declares (`"name": "..."` of each function)."""
    import re

    return set(re.findall(r'"function": \{"name": "([a-z_]+)"', prompt)) | set(
        re.findall(r'"name": "([a-z_]+)", "description"', prompt))
