"""OpenAIBackend against a real server: llama-cpp-python's own (`python -m llama_cpp.server`)
serving smollm2-135m on 127.0.0.1, started here and killed at the end.

The server runs with the model's own GGUF chat template (no `--chat_format`): its handler
forces a named tool_choice with a grammar and streams the call as tool-call deltas, and the
template shows "tool" messages to the model. (`chatml-function-calling` streams calls too, but
its template drops "tool" messages, so the model never sees a result.)
"""

from __future__ import annotations

import json
import os
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


# `python -m llama_cpp.server` with llama.cpp's weight repacking off (llama-cpp-python has no flag
# for it; LlamaBackend does the same): some virtual machines advertise AMX, which repacked
# weights use, and die of SIGILL on the first prompt. This test is about the protocol; the
# repacked kernels are exercised in-process.
SERVE = """
import llama_cpp.llama as module
from llama_cpp.server.__main__ import main
default = module.llama_cpp.llama_model_default_params
def no_repack():
    params = default()
    params.use_extra_bufts = False
    return params
module.llama_cpp.llama_model_default_params = no_repack
main()
"""


@pytest.fixture(scope="module")
def llama_server(smollm2_path):
    import llama_cpp

    port = _free_port()
    # CI's numerics configuration (TOOLTOKEN_THREADS, TOOLTOKEN_BATCH_INVARIANT) reaches this server too
    invariant = ["--flash_attn", "True", "--type_k", str(llama_cpp.GGML_TYPE_Q8_0), "--type_v",
                 str(llama_cpp.GGML_TYPE_Q8_0)] if os.environ.get("TOOLTOKEN_BATCH_INVARIANT", "").strip() == "1" else []
    cmd = [sys.executable, "-c", SERVE, "--model", smollm2_path, "--host", "127.0.0.1", "--port", str(port),
           "--n_ctx", "2048", "--n_threads", os.environ.get("TOOLTOKEN_THREADS", "").strip() or "1", "--seed", "0",
           "--verbose", "False", *invariant]
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
    # the citations resolve, whatever the answer says (whether it cites [1] or restates 48213 at
    # all is the model's choice of words)
    for c in final.citations:
        if c.verified:
            assert c.tool == "population" and c.source_id.startswith("census:"), c
        else:
            assert c.reason, c
    cited = {c.marker: c for c in final.citations}
    if "[1]" in final.answer:  # checked: verified, or with the reason it is not
        assert 1 in cited, final.citations
    elif "48213" in final.answer:  # the result's fact without a marker: found all the same
        assert 1 in cited and cited[1].verified and cited[1].inferred, final.citations
    sent = json.loads(final.prompt)
    tool_msg = next(m for m in sent if m["role"] == "tool")
    assert tool_msg["content"].startswith("[1] population\n")
    assert sent[sent.index(tool_msg) - 1]["tool_calls"][0]["id"] == tool_msg["tool_call_id"]
    # one request for the forced call and one for each turn after it (the model may call again)
    assert 2 <= final.timings["requests"] <= len(final.tool_calls) + 1 and final.timings["retries"] == 0
