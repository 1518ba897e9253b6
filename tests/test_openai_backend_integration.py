"""OpenAIBackend against a real server: llama-cpp-python's own (`python -m llama_cpp.server`)
serving smollm2-135m on 127.0.0.1, started here and killed at the end.

The server runs with the model's own GGUF chat template (no `--chat_format`): its handler
forces a named tool_choice with a grammar and streams the call as tool-call deltas, and the
template shows "tool" messages to the model. (`chatml-function-calling` streams calls too, but
its template drops "tool" messages, so the model never sees a result.)
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("openai")
pytest.importorskip("fastapi")  # llama-cpp-python[server]
pytest.importorskip("sse_starlette")
pytest.importorskip("starlette_context")

from tooltoken import Agent, Final, Source, TextDelta, ToolCall, ToolOutput, ToolResult, tool  # noqa: E402
from tooltoken._openai import OpenAIBackend  # noqa: E402

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(smollm2_path):
    port = _free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", smollm2_path, "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "2048", "--n_threads", "1", "--seed", "0", "--verbose", "False"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not get ready within 120 s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@tool
def population(city: str) -> ToolOutput:
    """Look up the population of a city."""
    text = f"The population of {city} is 48213."
    return ToolOutput(text, [Source(id=f"census:{city}", title=f"{city} census", text=text)])


def test_forced_call_streams_runs_and_the_answer_cites_it(llama_server):
    agent = Agent(OpenAIBackend(llama_server, "smollm2-135m", timeout=300), tools=[population])
    events = list(agent.stream("What is the population of Zubrowka?", tool_choice="population",
                               max_tokens=60, show_prompt=True))
    final = events[-1]
    assert isinstance(final, Final) and final.stop_reason in ("stop", "length"), final.message
    call, result = events[0], events[1]
    assert isinstance(call, ToolCall) and call.name == "population" and isinstance(call.arguments.get("city"), str)
    assert isinstance(result, ToolResult) and not result.error and result.content.endswith("is 48213.")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == final.answer
    verified = [c for c in final.citations if c.verified]
    assert verified and verified[0].tool == "population" and verified[0].source_id.startswith("census:")
    sent = json.loads(final.prompt)
    tool_msg = next(m for m in sent if m["role"] == "tool")
    assert tool_msg["content"].startswith("[1] population\n")
    assert sent[-2]["tool_calls"][0]["id"] == tool_msg["tool_call_id"]
    assert final.timings["requests"] == 2 and final.timings["retries"] == 0
