"""OpenAIBackend against a real HTTP server on 127.0.0.1 that plays scripted SSE chunks.

Each request the server receives plays the next script: an HTTP error, a delay, or a list of
chunks (dicts sent as JSON, strings sent as they are, so a chunk can be malformed on purpose).
Every request body is recorded, so the tests see exactly what the backend sent.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("openai")

from tooltoken import Agent, ConfigError, Final, TextDelta, ToolCall, ToolError, tool  # noqa: E402
from tooltoken._openai import OpenAIBackend  # noqa: E402

pytestmark = pytest.mark.unit


# -- the scripted server ----------------------------------------------------------------------
class Scripted:
    def __init__(self) -> None:
        self.scripts: list[dict] = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner.lock:
                    owner.requests.append(body)
                    script = owner.scripts.pop(0) if owner.scripts else {"chunks": [text("(no script left)")]}
                time.sleep(script.get("delay", 0))
                status = script.get("status", 200)
                if status != 200:
                    data = json.dumps(script.get("body", {"error": {"message": "error"}})).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                try:
                    for chunk in script["chunks"]:
                        time.sleep(script.get("chunk_delay", 0))
                        data = chunk if isinstance(chunk, str) else json.dumps(chunk)
                        self.wfile.write(f"data: {data}\n\n".encode())
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):  # the client stopped reading early
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def play(self, *scripts: dict) -> None:
        self.scripts += scripts

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Scripted()
    yield s
    s.close()


def chunk(delta: dict | None = None, finish: str | None = None, **extra) -> dict:
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}


def text(s: str) -> dict:
    return chunk({"content": s})


def call(index: int, *, id: str | None = None, name: str | None = None, args: str | None = None) -> dict:
    tc: dict = {"index": index, "function": {}}
    if id:
        tc["id"], tc["type"] = id, "function"
    if name is not None:
        tc["function"]["name"] = name
    if args is not None:
        tc["function"]["arguments"] = args
    return chunk({"tool_calls": [tc]})


def split(s: str, n: int) -> list[str]:
    return [s[i : i + n] for i in range(0, len(s), n)]


def answer(*pieces: str) -> dict:
    return {"chunks": [chunk({"role": "assistant", "content": ""}), *map(text, pieces), chunk(finish="stop")]}


def one_call(name: str, args: str, id: str = "srv_1", pieces: int = 3) -> dict:
    return {"chunks": [call(0, id=id, name=name, args=""), *[call(0, args=a) for a in split(args, pieces)],
                       chunk(finish="tool_calls")]}


# -- tools ------------------------------------------------------------------------------------
@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


MEET = threading.Barrier(2)  # two concurrent lookups meet here; one alone waits, then fails


@tool
def slow_lookup(key: str) -> str:
    """Look a key up (waits for the other lookup of a parallel pair)."""
    try:
        MEET.wait(timeout=30)
    except threading.BrokenBarrierError:
        MEET.reset()
        raise ToolError("not run concurrently with the other lookup") from None
    return {"alpha": "Alpha is 1111.", "beta": "Beta is 2222."}[key]


@tool
def long_text() -> str:
    """A long document."""
    return "word " * 2000


def agent_on(server, tools=(multiply,), **kw):
    kw.setdefault("unsupported_notice", None)
    backend = OpenAIBackend(server.url, "m", timeout=kw.pop("timeout", 5), max_retries=kw.pop("max_retries", 2))
    backend.backoff = 0.01
    return Agent(backend, tools=list(tools), **kw)


def check(events) -> Final:
    final = events[-1]
    assert isinstance(final, Final) and not any(isinstance(e, Final) for e in events[:-1])
    shown = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert shown == final.answer
    for leak in ("<tool_call>", "<tool", '{"name"'):
        assert leak not in shown
    return final


# -- native tools -----------------------------------------------------------------------------
def test_tool_call_deltas_split_across_chunks_are_assembled_run_and_cited(server):
    server.play(one_call("multiply", '{"a": 1234, "b": 5678}', pieces=2), answer("It is ", "7006652 ", "[1]."))
    events = list(agent_on(server).stream("What is 1234 * 5678?"))
    final = check(events)
    assert [type(e).__name__ for e in events[:2]] == ["ToolCall", "ToolResult"]
    assert events[0] == ToolCall("call_1", "multiply", {"a": 1234, "b": 5678}, raw='{"name": "multiply", "arguments": {"a": 1234, "b": 5678}}')
    assert events[1].content == "7006652" and events[1].source == 1 and not events[1].error
    assert final.stop_reason == "stop" and final.answer == "It is 7006652 [1]."
    assert final.citations[0].marker == 1 and final.citations[0].verified and final.citations[0].tool == "multiply"
    first, second = server.requests
    assert first["stream"] is True and first["tool_choice"] == "auto"
    assert first["tools"] == [multiply.schema()] and first["temperature"] == 0.0
    assistant, result = second["messages"][-2:]
    assert assistant["role"] == "assistant" and assistant["tool_calls"][0]["id"] == "srv_1"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"a": 1234, "b": 5678}
    assert result == {"role": "tool", "tool_call_id": "srv_1", "content": "[1] multiply\n7006652"}
    assert final.usage.tool_calls == 1 and final.usage.completion_tokens > 0
    assert final.timings["requests"] == 2 and final.timings["retries"] == 0 and "roundtrip_s" in final.timings


def test_name_repeated_in_every_delta_as_llama_cpp_python_sends_it(server):
    server.play({"chunks": [call(0, id="x", name="multiply", args='{"a": 2,'),
                            call(0, id="x", name="multiply", args=' "b": 3}'), chunk(finish="tool_calls")]},
                answer("6 [1]"))
    final = agent_on(server).run("2*3?")
    assert final.tool_calls[0].name == "multiply" and final.tool_results[0].content == "6"


def test_parallel_calls_run_concurrently_and_results_go_back_in_order(server):
    chunks = [call(0, id="a", name="slow_lookup", args='{"key":'), call(1, id="b", name="slow_lookup", args='{"ke'),
              call(0, args=' "alpha"}'), call(1, args='y": "beta"}'), chunk(finish="tool_calls")]
    server.play({"chunks": chunks}, answer("Alpha is 1111 [1] and beta is 2222 [2]."))
    events = list(agent_on(server, tools=(slow_lookup,)).stream("alpha and beta?"))
    final = check(events)
    assert [type(e).__name__ for e in events[:4]] == ["ToolCall", "ToolCall", "ToolResult", "ToolResult"]
    assert [r.content for r in final.tool_results] == ["Alpha is 1111.", "Beta is 2222."]
    assert [r.source for r in final.tool_results] == [1, 2]
    # each lookup waited for the other inside the tool (a barrier, not a clock): they ran at once
    tool_msgs = [m for m in server.requests[1]["messages"] if m["role"] == "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in tool_msgs] == [
        ("a", "[1] slow_lookup\nAlpha is 1111."), ("b", "[2] slow_lookup\nBeta is 2222.")]
    assert all(c.verified for c in final.citations) and len(final.citations) == 2


def test_text_streams_before_the_call_in_the_same_message(server):
    server.play({"chunks": [text("Let me compute. "), call(0, id="c1", name="multiply", args='{"a": 2, "b": 21}'),
                            chunk(finish="tool_calls")]}, answer("42 [1]"))
    events = list(agent_on(server).stream("2*21?"))
    assert isinstance(events[0], TextDelta) and events[0].text == "Let me compute. "
    assert check(events).answer == "Let me compute. 42 [1]"
    assert server.requests[1]["messages"][-2]["content"] == "Let me compute. "


def test_a_call_written_as_text_in_native_mode_is_caught(server):
    server.play(answer("Sure. ", '{"name": "mul', 'tiply", "arguments": {"a": 3, "b": 4}}', " and more"),
                answer("12 [1]"))
    events = list(agent_on(server).stream("3*4?"))
    final = check(events)
    assert final.answer == "Sure. 12 [1]" and final.tool_calls[0].arguments == {"a": 3, "b": 4}


def test_held_back_text_that_is_no_call_is_shown_in_full(server):
    server.play(answer("Use <tool", "s> wisely; ", '{"nam', "e is ok"))
    events = list(agent_on(server).stream("hi"))
    final = events[-1]
    assert final.answer == 'Use <tools> wisely; {"name is ok' and not final.tool_calls


def test_bad_arguments_and_unknown_tools_are_told_to_the_model(server):
    chunks = [call(0, id="a", name="multiply", args='{"a": "x"'), call(1, id="b", name="divide", args="{}"),
              chunk(finish="tool_calls")]
    server.play({"chunks": chunks}, answer("Sorry."))
    final = agent_on(server).run("?")
    assert [r.error for r in final.tool_results] == [True, True]
    assert "could not read" in final.tool_results[0].content or "JSON object" in final.tool_results[0].content
    assert "unknown tool 'divide'" in final.tool_results[1].content
    assert final.stop_reason == "stop"


# -- options ----------------------------------------------------------------------------------
def test_tool_choice_name_required_none_and_lists(server):
    server.play(one_call("multiply", '{"a": 1, "b": 2}'), answer("2 [1]"))
    agent_on(server).run("?", tool_choice="multiply")
    assert server.requests[0]["tool_choice"] == {"type": "function", "function": {"name": "multiply"}}
    assert server.requests[1]["tool_choice"] == "auto"

    server.requests.clear()
    server.play(one_call("multiply", '{"a": 1, "b": 2}'), answer("2 [1]"))
    agent_on(server, tools=(multiply, slow_lookup)).run("?", tool_choice=["required", "none"])
    assert server.requests[0]["tool_choice"] == "required" and server.requests[1]["tool_choice"] == "none"

    server.requests.clear()
    server.play(one_call("multiply", '{"a": 1, "b": 2}'), answer("2 [1]"))
    agent_on(server).run("?", tool_choice="required")  # one tool: named, which more servers honour
    assert server.requests[0]["tool_choice"]["function"]["name"] == "multiply"

    server.requests.clear()
    server.play(answer("No tools."))
    final = agent_on(server).run("?", tool_choice="none")
    assert "tools" not in server.requests[0] and final.answer == "No tools."
    assert "Tool results are numbered" not in server.requests[0]["messages"][0]["content"]

    final = agent_on(server).run("?", tool_choice="nosuch")
    assert final.stop_reason == "bad_call"


def test_a_forced_call_the_server_ignored_is_a_warning(server):
    server.play(answer("I just answer."))
    final = agent_on(server).run("?", tool_choice="multiply")
    assert final.answer == "I just answer." and "was not followed" in final.warnings[0]


def test_max_tool_calls_and_repeated_calls(server):
    server.play(*[one_call("multiply", f'{{"a": {i}, "b": 1}}') for i in range(3)])
    final = agent_on(server).run("?", max_tool_calls=2)
    assert final.stop_reason == "max_tool_calls" and len(final.tool_calls) == 2

    server.play(*[one_call("multiply", '{"a": 5, "b": 5}') for _ in range(3)])
    final = agent_on(server).run("?", max_repeated_calls=2)
    assert final.stop_reason == "repeated_call" and len(final.tool_calls) == 2
    assert final.tool_results[1].error and "[1]" in final.tool_results[1].content  # not run again


def test_tool_output_is_cut_to_its_budget(server):
    server.play(one_call("long_text", "{}"), answer("Done."))
    final = agent_on(server, tools=(long_text,)).run("?", max_tool_output_tokens=100)
    result = final.tool_results[0]
    assert result.truncated and len(result.content) < 100 * 4 + 80 and "truncated by tooltoken" in result.content
    assert server.requests[1]["messages"][-1]["content"] == f"[1] long_text\n{result.content}"


def test_tool_timeout_is_a_result_not_a_hang(server):
    @tool
    def stuck() -> str:
        """Never returns in time."""
        time.sleep(2)
        return "late"

    server.play(one_call("stuck", "{}"), answer("It failed."))
    final = agent_on(server, tools=(stuck,)).run("?", tool_timeout=0.2)
    assert final.tool_results[0].error and "timed out" in final.tool_results[0].content


def test_show_prompt_usage_notice_and_length(server):
    server.play(one_call("multiply", '{"a": 2, "b": 2}'),
                {"chunks": [text("It is 5."), chunk(finish="stop"),
                            {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [],
                             "usage": {"prompt_tokens": 50, "completion_tokens": 3, "total_tokens": 53,
                                       "prompt_tokens_details": {"cached_tokens": 40}}}]})
    final = agent_on(server, unsupported_notice="(unsupported)").run("2*2?", show_prompt=True)
    sent = json.loads(final.prompt)
    assert sent == server.requests[-1]["messages"] and sent[-1]["role"] == "tool"
    assert final.answer == "It is 5.\n\n(unsupported)"  # a figure no result gave (agent/_support.py)
    assert server.requests[0]["stream_options"] == {"include_usage": True}
    assert final.usage.prompt_tokens == 50 and final.usage.tokens_reused == 40
    assert final.usage.prompt_tokens_evaluated == 10

    server.play({"chunks": [text("a b c d"), chunk(finish="length")]})
    final = agent_on(server).run("?", max_tokens=3)
    assert final.stop_reason == "length" and server.requests[-1]["max_tokens"] == 3


def test_max_time_s_ends_a_slow_stream(server):
    server.play({"chunks": [text(f"{i} ") for i in range(50)], "chunk_delay": 0.05})
    final = agent_on(server).run("?", max_time_s=0.5)
    # cut before the stream's end (50 chunks, 2.5 s), with what came so far (no wall clock: the
    # machine may be loaded)
    assert final.stop_reason == "timeout" and final.answer and len(final.answer.split()) < 50


def test_cancel_stops_between_chunks(server):
    server.play({"chunks": [text(f"{i} ") for i in range(50)], "chunk_delay": 0.02})
    cancel = threading.Event()
    events = []
    for e in agent_on(server).stream("?", cancel=cancel):
        events.append(e)
        if len(events) == 3:
            cancel.set()
    assert events[-1].stop_reason == "cancelled" and len(events) < 10


def test_async_twin(server):
    server.play(one_call("multiply", '{"a": 6, "b": 7}'), answer("42 [1]"))
    final = asyncio.run(agent_on(server).arun("6*7?"))
    assert final.answer == "42 [1]" and final.citations[0].verified


# -- failures ---------------------------------------------------------------------------------
def test_500_then_success_is_retried(server):
    server.play({"status": 500, "body": {"error": {"message": "boom"}}}, answer("Fine."))
    final = agent_on(server).run("?")
    assert final.stop_reason == "stop" and final.answer == "Fine." and final.timings["retries"] == 1


def test_5xx_every_time_ends_in_a_backend_error(server):
    server.play(*[{"status": 503, "body": {"error": {"message": "overloaded"}}}] * 3)
    final = agent_on(server, max_retries=2).run("?")
    assert final.stop_reason == "backend_error" and len(server.requests) == 3
    assert "HTTP 503: overloaded" in final.message and "3 attempts" in final.message


def test_malformed_chunk_is_retried_before_any_text(server):
    server.play({"chunks": ["{this is not json"]}, answer("Fine."))
    final = agent_on(server).run("?")
    assert final.answer == "Fine." and final.timings["retries"] == 1


def test_malformed_chunk_after_text_ends_the_answer_clearly(server):
    server.play({"chunks": [text("Half an ans"), "{broken", text("wer")]})
    events = list(agent_on(server).stream("?"))
    final = check(events)
    assert final.stop_reason == "backend_error" and final.answer == "Half an ans"
    assert "malformed chunk" in final.message and len(server.requests) == 1  # never shown twice


def test_misshapen_chunk_is_malformed_too(server):
    server.play({"chunks": [{"choices": "oops"}]}, {"chunks": [{"choices": [{"delta": {"content": 5}}]}]},
                {"chunks": [{"choices": "oops"}]})
    final = agent_on(server).run("?")
    assert final.stop_reason == "backend_error" and "malformed" in final.message


def test_timeout_is_retried_then_a_backend_error(server):
    server.play(*[{"delay": 1.5, "chunks": [text("late")]}] * 2)
    final = agent_on(server, timeout=0.3, max_retries=1).run("?")
    assert final.stop_reason == "backend_error" and "timed out" in final.message and final.answer == ""


def test_connection_refused_is_a_backend_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    backend = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m", max_retries=1)
    backend.backoff = 0.01
    final = Agent(backend, tools=[multiply]).run("?")
    assert final.stop_reason == "backend_error" and "could not connect" in final.message


def test_other_client_errors_are_not_retried(server):
    server.play({"status": 401, "body": {"error": {"message": "bad key"}}})
    final = agent_on(server).run("?")
    assert final.stop_reason == "backend_error" and "HTTP 401: bad key" in final.message
    assert len(server.requests) == 1


def test_a_full_context_is_a_context_stop(server):
    server.play({"status": 400, "body": {"error": {"message": "This model's maximum context length is 2048 tokens"}}})
    assert agent_on(server).run("?").stop_reason == "context"


def test_fields_the_server_refuses_are_dropped_once(server):
    server.play({"status": 400, "body": {"error": {"message": "Unrecognized request argument: stream_options"}}},
                answer("ok"))
    backend_agent = agent_on(server)
    assert backend_agent.run("?").answer == "ok"
    assert "stream_options" in server.requests[0] and "stream_options" not in server.requests[1]


# -- prompt-based fallback --------------------------------------------------------------------
CALL = '<tool_call>\n{"name": "multiply", "arguments": {"a": 6, "b": 7}}\n</tool_call>'


def test_server_rejecting_tools_falls_back_to_calls_in_the_text(server):
    server.play({"status": 400, "body": {"error": {"message": "This model does not support tools"}}},
                answer("Let me see. ", *split(CALL, 3), " and then I ramble"),
                answer("It is 42 [1]."))
    agent = agent_on(server)
    events = list(agent.stream("6*7?"))
    final = check(events)
    assert final.answer == "Let me see. It is 42 [1]." and final.citations[0].verified
    assert "rejected tools" in final.warnings[0]
    rejected, plain, after = server.requests
    assert "tools" in rejected and "tools" not in plain and "tool_choice" not in plain
    system = plain["messages"][0]["content"]
    assert "<tools>" in system and '"name": "multiply"' in system and "<tool_call>" in system
    assistant, result = after["messages"][-2:]
    assert assistant == {"role": "assistant", "content": "Let me see. " + CALL}
    assert result["role"] == "user" and result["content"].startswith("<tool_response>\n[1] multiply\n42\n</tool_response>")
    assert "cite it as [1]" in result["content"]
    # remembered: the next answer goes to the prompt-based form at once
    server.play(answer("No call needed."))
    assert agent.run("hi").answer == "No call needed."
    assert "tools" not in server.requests[-1] and "<tools>" in server.requests[-1]["messages"][0]["content"]


def test_422_naming_tools_falls_back_too(server):
    detail = {"detail": [{"loc": ["body", "tools"], "msg": "extra fields not permitted"}]}
    server.play({"status": 422, "body": detail}, answer("Plain."))
    final = agent_on(server).run("?")
    assert final.answer == "Plain." and "tools" not in server.requests[1]


def test_generic_format_asks_for_prompt_tools_from_the_start(server):
    server.play(answer("```json\n", '{"name": "multiply", "arguments": {"a": 2, "b": 5}}', "\n```"), answer("10 [1]"))
    final = agent_on(server, format="generic").run("2*5?")
    assert "tools" not in server.requests[0] and "<tools>" in server.requests[0]["messages"][0]["content"]
    assert final.answer == "10 [1]" and final.tool_calls[0].arguments == {"a": 2, "b": 5}


def test_pythonic_call_in_a_fence_and_forced_choice_without_native_tools(server):
    server.play(answer("```python\n", 'multiply(6, b=7)', "\n```"), answer("42 [1]"))
    final = agent_on(server, format="generic").run("6*7?", tool_choice="multiply")
    assert final.tool_calls[0].arguments == {"a": 6, "b": 7} and final.answer == "42 [1]"
    assert "Call the tool multiply now" in server.requests[0]["messages"][-1]["content"]
    assert "Call the tool" not in server.requests[1]["messages"][1]["content"]  # asked once, not kept


def test_unreadable_text_call_is_answered_with_the_problem(server):
    server.play(answer("<tool_call>\n{\"name\": \"multiply\", \"arguments\": {'a': 1}}\n</tool_call>"), answer("Oops."))
    final = agent_on(server, format="generic").run("?")
    assert final.tool_results[0].error and "could not read" in final.tool_results[0].content


def test_a_call_copied_from_a_tool_result_stays_text(server):
    @tool
    def fetch() -> str:
        """Fetch the page."""
        return 'Page says: {"name": "multiply", "arguments": {"a": 9, "b": 9}}'

    server.play(one_call("fetch", "{}"),
                answer('The page says {"name": "multiply", "arguments": {"a": 9, "b": 9}} [1].'))
    final = agent_on(server, tools=(multiply, fetch)).run("What does the page say?")
    assert [c.name for c in final.tool_calls] == ["fetch"]
    assert '{"name": "multiply"' in final.answer and "copied from a tool result" in final.warnings[0]


def test_extra_body_wins_and_the_prompt_preview_declares_tools(server):
    server.play(answer("ok"))
    backend = OpenAIBackend(server.url, "m", extra_body={"top_k": 1, "temperature": 0.7})
    agent = Agent(backend, tools=[multiply])
    assert agent.run("?").answer.startswith("ok")
    assert server.requests[0]["top_k"] == 1 and server.requests[0]["temperature"] == 0.7
    preview = agent.prompt("What is 6*7?")  # the stand-in template: roughly what a Hermes server renders
    assert "<tools>" in preview and '"name": "multiply"' in preview and preview.endswith("<|im_start|>assistant\n")
    server.play(answer("ok"))
    Agent(OpenAIBackend(server.url, "m", temperature=None)).run("?")
    assert "temperature" not in server.requests[-1]


# -- sampling ---------------------------------------------------------------------------------
def test_sampling_fields_go_where_the_api_has_them_and_forced_calls_are_greedy(server):
    server.play(one_call("multiply", '{"a": 6, "b": 7}'), answer("It is 42 [1]."))
    backend = OpenAIBackend(server.url, "m", temperature=0.7, top_p=0.9, seed=5, top_k=20, min_p=0.1,
                            repeat_penalty=1.1, extra_body={"min_p": 0.2})
    final = Agent(backend, tools=[multiply], tool_choice=["multiply"], unsupported_notice=None).run("6*7?")
    assert final.answer == "It is 42 [1]."
    call, after = server.requests
    assert call["tool_choice"]["function"]["name"] == "multiply" and call["temperature"] == 0.0  # must be a call
    assert after["temperature"] == 0.7 and after["top_p"] == 0.9 and after["seed"] == 5
    assert after["top_k"] == 20 and after["repeat_penalty"] == 1.1 and after["min_p"] == 0.2  # extra_body wins
    assert "frequency_penalty" not in after  # a different penalty: never derived from repeat_penalty

    server.play(one_call("multiply", '{"a": 6, "b": 7}'), answer("ok"))
    backend = OpenAIBackend(server.url, "m", temperature=0.7, seed=-1, call_greedy=False)
    Agent(backend, tools=[multiply], tool_choice=["multiply"]).run("6*7?")
    assert [r["temperature"] for r in server.requests[2:]] == [0.7, 0.7]
    for name in ("seed", "top_p", "top_k", "min_p", "repeat_penalty"):  # unset (or -1): the server's own
        assert name not in server.requests[2]
    with pytest.raises(ConfigError, match=r"top_p must be in \(0, 1\]"):
        OpenAIBackend(server.url, "m", top_p=1.5)


def test_a_sampling_field_the_server_refuses_is_dropped_once_with_a_warning(server):
    refusal = {"status": 400, "body": {"error": {"message": "Unrecognized request argument supplied: min_p"}}}
    server.play(refusal, answer("ok"))
    agent = Agent(OpenAIBackend(server.url, "m", min_p=0.1, top_k=20), tools=[multiply])
    final = agent.run("?")
    assert final.answer.startswith("ok") and "refused min_p" in final.warnings[0]
    assert server.requests[0]["min_p"] == 0.1 and "min_p" not in server.requests[1]
    assert server.requests[1]["top_k"] == 20 and agent.backend.min_p is None
    # a field the user put in extra_body is theirs: not dropped, the refusal is the answer
    server.play(refusal)
    agent = Agent(OpenAIBackend(server.url, "m", extra_body={"min_p": 0.1}, max_retries=0), tools=[multiply])
    final = agent.run("?")
    assert final.stop_reason == "backend_error" and "min_p" in final.message


def test_drop_unstated_leaves_out_optional_values_nobody_stated(server):
    @tool
    def distance(origin: str, unit: str = "km") -> str:
        """Driving distance from a place."""
        return f"312 {unit}"

    args = '{"origin": "Paris", "unit": "miles"}'
    server.play(one_call("distance", args), answer("312 km [1]."), one_call("distance", args), answer("194 [1]."))
    events = list(agent_on(server, tools=[distance], drop_unstated=True).stream("How far is Lyon from Paris?"))
    final = check(events)
    assert events[0].arguments == {"origin": "Paris"} and events[1].content == "312 km"
    assert any("unit='miles'" in w for w in final.warnings)
    sent = json.loads(server.requests[1]["messages"][-2]["tool_calls"][0]["function"]["arguments"])
    assert sent == {"origin": "Paris"}  # the server is told the call that ran
    final = agent_on(server, tools=[distance], drop_unstated=True, system="Answer in miles.").run("Lyon from Paris?")
    assert final.tool_calls[0].arguments == {"origin": "Paris", "unit": "miles"} and final.warnings == []


def test_the_lookup_path_on_a_server_recalls_then_searches_and_shows_the_reader_the_question(server):
    from tooltoken.tools import Browser, Hit

    class Shelf:
        queries: list[str] = []

        def search(self, query, k=5):
            self.queries.append(query)
            return [Hit("nile", "Nile", "The Nile flows into the Mediterranean Sea.", 1.0)]

    shelf = Shelf()
    server.scripts += [answer("The Mediterranean Sea.\nIt is long."), answer("The Mediterranean Sea [1].")]
    agent = agent_on(server, tools=Browser(shelf).tools(), router=lambda q: "lookup")
    final = check(list(agent.stream("Into which sea does the Nile empty?")))
    assert final.route == "lookup" and final.answer == "The Mediterranean Sea [1]."
    query = "Into which sea does the Nile empty? The Mediterranean Sea."
    assert shelf.queries == [query] and final.tool_calls[0].arguments == {"query": query}
    recall, reader = server.requests
    assert "tools" not in recall and recall["messages"][-1]["content"] == "Into which sea does the Nile empty?"
    sent = json.dumps(reader["messages"])
    assert "The Mediterranean Sea." not in sent  # the reader never sees the guess
    assert 'Results for \\"Into which sea does the Nile empty?\\"' in sent
