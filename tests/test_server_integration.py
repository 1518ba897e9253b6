"""The server for real: uvicorn on 127.0.0.1, SmolLM2-135M behind it, and real clients — the
official `openai` package and LangChain's `ChatOpenAI` — with and without streaming; concurrent
requests queue on the one model; `tooltoken serve` starts as a command and enforces its key."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")

from tooltoken import Agent
from tooltoken.app.server import create_app
from tooltoken.tools.calculator import calculator

pytestmark = pytest.mark.integration

KEY = "test-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class InFlight:
    """ASGI wrapper: how many chat completions the server holds at once (now and at most)."""

    def __init__(self, app):
        self.app, self.now, self.most = app, 0, 0

    async def __call__(self, scope, receive, send):
        counted = scope["type"] == "http" and scope["path"].endswith("/chat/completions")
        if counted:  # one event loop: no lock needed
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            await self.app(scope, receive, send)
        finally:
            if counted:
                self.now -= 1


@pytest.fixture(scope="module")
def served(smollm2_path):
    import uvicorn

    agent = Agent(model=smollm2_path, tools=[calculator], max_tokens=24, max_call_tokens=48)
    app = InFlight(create_app(agent, api_key=KEY, max_tokens_cap=32, rate_limit=0))
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False,
                                        lifespan="off"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1", app
    srv.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def server(served):
    return served[0]


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server, api_key=KEY, max_retries=0, timeout=600)


def test_openai_client_completion_with_a_server_side_tool_call(client, invariants):
    assert [m.id for m in client.models.list()] == ["tooltoken"]
    r = client.chat.completions.create(
        model="tooltoken", messages=[{"role": "user", "content": "What is 1234 * 5678?"}],
        tool_choice={"type": "function", "function": {"name": "calculator"}}, max_tokens=16,
    )
    assert r.choices[0].message.role == "assistant" and isinstance(r.choices[0].message.content, str)
    extra = r.model_extra["tooltoken"]
    assert extra["tool_calls"][0]["name"] == "calculator"
    calculator.validate(extra["tool_calls"][0]["arguments"])
    # the exact value of the expression the model wrote, whatever it is (1234 * 5678 is one
    # CPU's greedy choice)
    invariants.calculator(extra["tool_calls"][0], extra["tool_results"][0])
    assert r.usage.completion_tokens > 0 and r.usage.prompt_tokens > 0


def test_openai_client_stream(client):
    stream = client.chat.completions.create(
        model="tooltoken", messages=[{"role": "user", "content": "What is 2+2?"}], stream=True,
        tool_choice="required", max_tokens=16, stream_options={"include_usage": True},
    )
    text, events, finish, usage, stop_reason = "", [], None, None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        if not chunk.choices:
            continue
        text += chunk.choices[0].delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
        ext = (chunk.model_extra or {}).get("tooltoken") or {}
        if "event" in ext:
            events.append(ext["event"])
        stop_reason = ext.get("stop_reason", stop_reason)
    assert events[:2] == ["tool_call", "tool_result"]
    assert finish in ("stop", "length") and usage.completion_tokens > 0
    # an answer that ends by itself or at max_tokens streams words (the model's, or the notice
    # that nothing supports them); one that ends at a further call's limit may have none
    assert text or stop_reason in ("repeated_call", "max_tool_calls"), (events, stop_reason)


def test_wrong_key_is_refused(server):
    bad = openai.OpenAI(base_url=server, api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_langchain_chat_openai_against_the_server(server):
    lc = pytest.importorskip("langchain_openai")
    llm = lc.ChatOpenAI(base_url=server, api_key=KEY, model="tooltoken", max_tokens=16, max_retries=0, timeout=600)
    msg = llm.invoke("Say hello.")
    assert isinstance(msg.content, str) and msg.content
    chunks = list(llm.stream("Say hello."))
    assert "".join(c.content for c in chunks) and len(chunks) > 2  # streamed, not one piece


def test_concurrent_requests_queue_on_one_model(client):
    results, errors = [], []

    def one(i: int) -> None:
        try:
            r = client.chat.completions.create(model="tooltoken", max_tokens=8,
                                               messages=[{"role": "user", "content": f"Count to {i}."}])
            results.append(r.choices[0].message.content)
        except Exception as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors and len(results) == 3


def test_run_batch_sends_questions_concurrently_to_a_server_backend(served, tmp_path):
    """run_batch over OpenAIBackend: `concurrency` requests in flight at the server at once (they
    queue there on its one model), every answer written with its passthrough fields."""
    from tooltoken import OpenAIBackend, run_batch

    url, inflight = served
    agent = Agent(OpenAIBackend(url, "tooltoken", api_key=KEY, timeout=600, max_retries=0))
    questions = [{"id": f"q{i}", "question": f"Count to {i + 2}.", "n": i} for i in range(4)]
    inflight.most = 0
    summary = run_batch(questions, tmp_path / "a.jsonl", agent=agent, concurrency=3, max_tokens=8)
    assert (summary.answered, summary.failed) == (4, 0), summary.failures
    assert inflight.most >= 2, inflight.most  # the requests overlapped
    rows = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["q0", "q1", "q2", "q3"]
    assert all(isinstance(r["answer"], str) and r["n"] == int(r["id"][1]) and r["usage"]["completion_tokens"] > 0
               for r in rows), rows


def test_serve_command(smollm2_path, tmp_path):
    port = free_port()
    env = dict(os.environ, TOOLTOKEN_API_KEY=KEY, XDG_CONFIG_HOME=str(tmp_path))
    cmd = [sys.executable, "-c", "from tooltoken.app.cli import main; main()", "serve", "--model", smollm2_path,
           "--tools", "calculator", "--port", str(port), "--max-tokens-cap", "8"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(base + "/models", timeout=5)
            except urllib.error.HTTPError as exc:
                assert exc.code == 401  # up, and the key from the environment is required
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "tooltoken serve did not start"
                time.sleep(0.3)
        req = urllib.request.Request(base + "/chat/completions", method="POST",
                                     data=json.dumps({"messages": [{"role": "user", "content": "Hi"}],
                                                      "max_tokens": 500}).encode(),
                                     headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
        body = json.loads(urllib.request.urlopen(req, timeout=600).read())
        assert body["usage"]["completion_tokens"] <= 8  # --max-tokens-cap
    finally:
        proc.terminate()
        out = proc.communicate(timeout=60)[0]
    assert "serving" in out and f"127.0.0.1:{port}" in out
