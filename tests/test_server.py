"""The OpenAI-compatible server without a model: the HTTP contract, limits and stream format
(the scripted backend answers; Starlette's TestClient speaks HTTP to the app in-process)."""

from __future__ import annotations

import json
import threading

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient

from scripted import ScriptedBackend, chunks
from tooltoken import Agent, ToolResult, tool
from tooltoken.app.server import RateLimiter, StopFilter, agent_messages, create_app
from tooltoken.tools import Browser, Document, Hit

pytestmark = pytest.mark.unit

CALL = '{"name": "calculator", "arguments": {"expression": "2+2"}}'
KEY = {"Authorization": "Bearer s3cret"}


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression."""
    return "4"


def client(scripts, **kw):
    agent = Agent(ScriptedBackend(scripts), tools=[calculator], policy="plain")
    kw.setdefault("rate_limit", 0)
    return TestClient(create_app(agent, **kw)), agent


def ask(c, **body):
    body.setdefault("messages", [{"role": "user", "content": "What is 2+2?"}])
    return c.post("/v1/chat/completions", json=body, headers=KEY)


def sse(response):
    events = [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_completion_with_citations_in_the_extra_field():
    c, _ = client([["<tool_call>"], chunks(CALL), chunks("It is 4 [1].")])
    r = ask(c, model="anything")
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "tooltoken"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "It is 4 [1]."}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    extra = body["tooltoken"]
    assert extra["citations"][0]["marker"] == 1 and extra["citations"][0]["verified"]
    assert extra["tool_calls"][0]["name"] == "calculator" and extra["tool_results"][0]["content"] == "4"


def test_stream_chunks_tool_events_and_usage():
    c, _ = client([["<tool_call>"], chunks(CALL), chunks("It is 4 [1].")])
    with c.stream("POST", "/v1/chat/completions", headers=KEY, json={
        "messages": [{"role": "user", "content": "2+2?"}], "stream": True, "stream_options": {"include_usage": True},
    }) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse(r)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert text == "It is 4 [1]."
    kinds = [e["tooltoken"]["event"] for e in events if "event" in e.get("tooltoken", {})]
    assert kinds == ["tool_call", "tool_result"]
    final = next(e for e in events if e["choices"] and e["choices"][0]["finish_reason"])
    assert final["choices"][0]["finish_reason"] == "stop" and final["tooltoken"]["citations"][0]["verified"]
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] > 0


def test_api_key_is_required_when_set():
    c, _ = client([], api_key="s3cret")
    assert c.get("/v1/models").status_code == 401
    r = c.get("/v1/models", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert r.headers["www-authenticate"] == "Bearer"
    assert c.post("/v1/chat/completions", json={"messages": []}).status_code == 401
    ok = c.get("/v1/models", headers=KEY)
    assert ok.status_code == 200 and ok.json()["data"][0]["id"] == "tooltoken"
    assert c.get("/v1/models/tooltoken", headers=KEY).json()["id"] == "tooltoken"
    assert c.get("/v1/models/gpt-4", headers=KEY).status_code == 404


def test_body_over_the_cap_is_413_even_without_content_length():
    c, _ = client([], max_body_bytes=2048)
    big = {"messages": [{"role": "user", "content": "x" * 5000}]}
    r = ask(c, **big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"

    def body():  # chunked: no Content-Length to trust
        data = json.dumps(big).encode()
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    r = c.post("/v1/chat/completions", content=body(), headers={**KEY, "Content-Type": "application/json"})
    assert r.status_code == 413


def test_max_tokens_is_capped():
    c, _ = client([chunks("a b c d e f g h i j k l")], max_tokens_cap=5)
    r = ask(c, max_tokens=1000)
    assert r.status_code == 200
    body = r.json()
    assert body["usage"]["completion_tokens"] == 5 and body["choices"][0]["finish_reason"] == "length"
    assert ask(c, max_tokens=0).status_code == 400


def test_rate_limit_per_client_is_429_with_retry_after():
    now = [0.0]
    c, _ = client([chunks("ok")] * 10, rate_limit=2, clock=lambda: now[0])
    assert c.get("/v1/models", headers=KEY).status_code == 200
    assert c.get("/v1/models", headers=KEY).status_code == 200
    r = c.get("/v1/models", headers=KEY)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(r.headers["retry-after"]) == 30
    now[0] += 30
    assert c.get("/v1/models", headers=KEY).status_code == 200
    limiter = RateLimiter(60, clock=lambda: 0.0)
    assert limiter.check("a") == 0 and limiter.check("b") == 0  # buckets are per client


def test_requests_over_the_queue_are_503():
    entered, release = threading.Event(), threading.Event()

    class SlowAgent:
        tools, fmt = [], Agent(ScriptedBackend([])).fmt

        class options:
            max_tokens = 16

        def stream(self, messages, cancel=None, **kw):
            from tooltoken import Final

            entered.set()
            release.wait(10)
            yield Final(answer="late", stop_reason="stop")

    c = TestClient(create_app(SlowAgent(), max_queue=1, rate_limit=0))
    body = {"messages": [{"role": "user", "content": "hi"}]}
    statuses = []
    first = threading.Thread(target=lambda: statuses.append(c.post("/v1/chat/completions", json=body).status_code))
    first.start()
    try:
        assert entered.wait(10)  # the first request holds the only place
        r = c.post("/v1/chat/completions", json=body)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
    finally:
        release.set()
        first.join(10)
    assert statuses == [200]
    assert c.post("/v1/chat/completions", json=body).status_code == 200  # the place is free again


def test_bad_requests_are_400_with_the_reason():
    c, _ = client([])
    cases = [
        ({"messages": []}, "non-empty list"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "role must be"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, "text only"),
        ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}, "runs its own tools"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n=1"),
        ({"messages": [{"role": "user", "content": "x"}], "tool_choice": "magic"}, "tool_choice"),
        ({"messages": [{"role": "user", "content": "x"}], "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ]
    for body, reason in cases:
        r = c.post("/v1/chat/completions", json=body, headers=KEY)
        assert r.status_code == 400 and reason in r.json()["error"]["message"], (body, r.text)
    r = c.post("/v1/chat/completions", content=b"{nope", headers=KEY)
    assert r.status_code == 400 and "not JSON" in r.json()["error"]["message"]


def test_tool_choice_names_a_server_tool():
    c, agent = client([chunks(CALL), chunks("It is 4 [1].")])
    r = ask(c, tool_choice={"type": "function", "function": {"name": "calculator"}})
    assert r.json()["tooltoken"]["tool_calls"][0]["name"] == "calculator"


def test_stop_sequences():
    c, _ = client([chunks("one two three four")] * 2)
    r = ask(c, stop="three")
    assert r.json()["choices"][0]["message"]["content"] == "one two "
    assert r.json()["tooltoken"]["message"] == "stopped at a stop sequence"
    f = StopFilter(["END", "xyz"])
    assert [f.feed(t) for t in ["ab E", "N", "xy", "D"]] + [f.flush()] == ["ab ", "", "EN", "xyD", ""]
    assert [f.feed(t) for t in ["E", "ND", "more"]] == ["", "", ""] and f.hit
    g = StopFilter(["END"])
    assert g.feed("ab EN") == "ab " and g.flush() == "EN"  # held text that was not a stop after all


def test_replayed_conversations_read_like_the_agents_own():
    msgs = agent_messages([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is "}, {"type": "text", "text": "2+2?"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "2+2"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "4"},
    ])
    assert msgs == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+2"}}\n</tool_call>'},
        {"role": "user", "content": "<tool_response>\n[1] calculator\n4\n</tool_response>"},
    ]


DOCS = {"tolstoy": Document("tolstoy", "War and Peace", "War and Peace is a novel by Leo Tolstoy."),
        "defoe": Document("defoe", "Robinson Crusoe", "Robinson Crusoe is a novel by Daniel Defoe.")}


class Shelf:
    """A two-document SearchBackend in memory."""

    def search(self, query, k=5):
        return [Hit(d.id, d.title, d.text, 1.0, d.location) for d in DOCS.values()][:k]

    def get(self, id):
        return DOCS[id]


def test_each_request_browses_on_its_own():
    """One client's open document is not another's: a find with no open() of its own fails."""
    browser = Browser(Shelf())
    agent = Agent(ScriptedBackend([
        ["<tool_call>"], chunks('{"name": "open", "arguments": {"id": "tolstoy"}}'), chunks("Read [1]."),
        ["<tool_call>"], chunks('{"name": "find", "arguments": {"text": "Tolstoy"}}'), chunks("Nothing [1]."),
    ]), tools=browser.tools(), policy="plain")
    c = TestClient(create_app(agent, rate_limit=0))
    first = ask(c, messages=[{"role": "user", "content": "Open the Tolstoy page."}]).json()["tooltoken"]
    assert first["tool_results"][0]["error"] is False and "Leo Tolstoy" in first["tool_results"][0]["content"]
    second = ask(c, messages=[{"role": "user", "content": "Find Tolstoy."}]).json()["tooltoken"]
    result = second["tool_results"][0]
    assert result["error"] is True and "no document is open" in result["content"], result
    assert browser.document is None and browser.results == []  # the agent's own Browser was never used


def test_per_answer_rebinds_only_browser_tools():
    from dataclasses import replace

    from tooltoken._per_answer import fresh_tools

    browser = Browser(Shelf(), k=1, page_lines=7, width=60)
    search, open_, find, quote = browser.tools()
    renamed = replace(search, name="lookup", timeout=3.0)  # customised after Browser.tools()
    tools = [calculator, renamed, open_, find, quote]
    fresh = fresh_tools(tools)
    assert fresh[0] is calculator
    assert [(t.name, t.timeout) for t in fresh] == [(t.name, t.timeout) for t in tools]
    assert all(a.fn is not b.fn for a, b in zip(fresh[1:], tools[1:]))
    fresh[1].invoke({"query": "novel"})
    fresh[2].invoke({"id": "1"})
    assert browser.results == [] and browser.document is None  # the old state is untouched
    assert fresh[4].call_parameters()["properties"]["text"]["enum"] == ["War and Peace is a novel by Leo Tolstoy."]
    assert "enum" not in quote.call_parameters()["properties"]["text"]  # no document open in the old Browser
    new = fresh[1].state
    assert new is not browser and all(t.state is new for t in fresh[1:])  # one fresh Browser for the four
    assert (new.backend, new.k, new.page_lines, new.width) == (browser.backend, 1, 7, 60)


def test_two_answers_streamed_at_once_from_one_agent_browse_apart():
    """The library owns per-answer state: no caller sets it up, and an answer streamed while
    another is half done does not see the other's search results."""
    search = '{"name": "search", "arguments": {"query": "novel"}}'
    open_1 = '{"name": "open", "arguments": {"id": "1"}}'
    browser = Browser(Shelf(), k=1, page_lines=7, width=60)
    agent = Agent(ScriptedBackend([["<tool_call>"], chunks(search),  # the first answer searches
                                   ["<tool_call>"], chunks(open_1), ["None."],  # the second opens "1" at once
                                   ["Tolstoy [1]."]]),  # the first answer ends
                  tools=browser.tools(), unsupported_notice=None, policy="plain")  # the model's own calls
    first = agent.stream("Find a novel.")
    for event in first:
        if isinstance(event, ToolResult):
            break
    assert "War and Peace" in event.content
    second = agent.run("Open the first result.")
    assert second.tool_results[0].error, second.tool_results[0].content  # no search in this answer
    assert list(first)[-1].answer == "Tolstoy [1]."
    assert browser.results == [] and browser.document is None  # the Agent's own Browser was never used
