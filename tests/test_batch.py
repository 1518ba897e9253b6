"""The batch runner: JSONL in, JSONL out, resumable, failures recorded and never fatal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from scripted import ScriptedBackend, chunks
from tooltoken import Agent, Final, TextDelta, tool
from tooltoken._batch import run_batch
from tooltoken.tools import Browser, ConfigError, Document, Hit

CALL = '{"name": "calculator", "arguments": {"expression": "2+2"}}'


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression."""
    return "4"


def write_questions(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


class FakeAgent:
    """Answers "A:<question>"; raises for questions that start with "boom"; can be slow."""

    def __init__(self, delay=0.0):
        self.delay = delay
        self.asked = []
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0

    def stream(self, question, cancel=None, **options):
        with self.lock:
            self.asked.append(question)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if question.startswith("boom"):
                raise RuntimeError("the backend went away")
            deadline = time.monotonic() + self.delay
            while time.monotonic() < deadline:
                if cancel is not None and cancel.is_set():
                    yield Final(answer="", stop_reason="cancelled")
                    return
                time.sleep(0.005)
            yield TextDelta("A:" + question)
            yield Final(answer="A:" + question, stop_reason="stop")
        finally:
            with self.lock:
                self.in_flight -= 1


@pytest.mark.unit
def test_answers_with_citations_and_passthrough_fields(tmp_path):
    q = write_questions(tmp_path / "q.jsonl", [{"id": 1, "question": "What is 2+2?", "topic": "math"}])
    agent = Agent(ScriptedBackend([["<tool_call>"], chunks(CALL), chunks("It is 4 [1].")]), tools=[calculator], policy="plain")
    summary = run_batch(q, tmp_path / "a.jsonl", agent=agent)
    assert (summary.total, summary.answered, summary.failed, summary.skipped) == (1, 1, 0, 0)
    [row] = read(tmp_path / "a.jsonl")
    assert row["id"] == 1 and row["topic"] == "math" and row["error"] is None
    assert row["answer"].startswith("It is 4 [1].") and row["stop_reason"] == "stop"
    assert row["citations"][0]["verified"] and row["tool_calls"][0]["name"] == "calculator"
    assert row["tool_results"][0]["content"] == "4"
    assert row["usage"]["prompt_tokens"] > 0 and "total_s" in row["timings"]


@pytest.mark.unit
def test_failures_are_recorded_counted_and_never_fatal(tmp_path):
    q = write_questions(tmp_path / "q.jsonl", [
        {"id": "a", "question": "one"},
        {"id": "b", "question": "boom two"},
        "{not json",
        {"question": "no id"},
        {"id": "a", "question": "same id again"},
        {"id": "c"},
        {"id": "d", "question": "four"},
    ])
    seen = []
    summary = run_batch(q, tmp_path / "a.jsonl", agent=FakeAgent(), progress=lambda *a: seen.append(a))
    assert (summary.answered, summary.failed) == (2, 5)
    rows = {r["id"]: r for r in read(tmp_path / "a.jsonl")}
    assert rows["a"]["answer"] == "A:one" and rows["d"]["answer"] == "A:four"
    assert rows["b"]["error"] == {"type": "RuntimeError", "message": "the backend went away"}
    assert rows["b"]["answer"] is None
    assert "not JSON" in rows["line:3"]["error"]["message"]
    assert "no \"id\"" in rows["line:4"]["error"]["message"]
    assert "repeats id 'a'" in rows["line:5"]["error"]["message"]
    assert "no \"question\"" in rows["c"]["error"]["message"]
    assert seen[0] == (0, 7, 0) and seen[-1] == (7, 7, 5)
    assert {f["id"] for f in summary.failures} == {"b", "line:3", "line:4", "line:5", "c"}


@pytest.mark.unit
def test_resume_skips_what_is_done_and_can_retry_failures(tmp_path):
    q = write_questions(tmp_path / "q.jsonl", [{"id": i, "question": ("boom " if i == 1 else "") + f"q{i}"}
                                               for i in range(4)])
    out = tmp_path / "a.jsonl"
    first = run_batch(q, out, agent=FakeAgent())
    assert (first.answered, first.failed) == (3, 1)
    agent = FakeAgent()
    again = run_batch(q, out, agent=agent)
    assert (again.skipped, again.answered, again.failed, agent.asked) == (4, 0, 0, [])
    retry = run_batch(q, out, agent=agent, retry_failed=True)
    assert (retry.skipped, retry.failed, agent.asked) == (3, 1, ["boom q1"])
    assert [r["id"] for r in read(out)] == [0, 1, 2, 3, 1]  # the retry's line follows the old one


@pytest.mark.unit
def test_a_line_cut_by_a_crash_is_repaired_and_asked_again(tmp_path):
    q = write_questions(tmp_path / "q.jsonl", [{"id": "x", "question": "qx"}, {"id": "y", "question": "qy"}])
    out = tmp_path / "a.jsonl"
    out.write_text(json.dumps({"id": "x", "answer": "A:qx", "error": None}) + "\n" + '{"id": "y", "answ')
    agent = FakeAgent()
    summary = run_batch(q, out, agent=agent)
    assert (summary.skipped, summary.answered, agent.asked) == (1, 1, ["qy"])
    assert [r["id"] for r in read(out)] == ["x", "y"]


@pytest.mark.unit
def test_concurrency_and_cancel(tmp_path):
    q = write_questions(tmp_path / "q.jsonl", [{"id": i, "question": f"q{i}"} for i in range(6)])
    agent = FakeAgent(delay=0.05)
    summary = run_batch(q, tmp_path / "a.jsonl", agent=agent, concurrency=3)
    assert summary.answered == 6 and agent.most_in_flight == 3
    assert sorted(r["id"] for r in read(tmp_path / "a.jsonl")) == list(range(6))

    cancel = threading.Event()
    slow = FakeAgent(delay=5.0)
    threading.Timer(0.2, cancel.set).start()
    started = time.monotonic()
    summary = run_batch(q, tmp_path / "b.jsonl", agent=slow, concurrency=2, cancel=cancel)
    assert time.monotonic() - started < 3.0
    assert summary.answered == 0 and not (tmp_path / "b.jsonl").read_text()  # cancelled answers are not written
    assert len(slow.asked) == 2  # the rest never started


@pytest.mark.unit
def test_questions_from_python_objects(tmp_path):
    summary = run_batch([{"id": "p", "question": "hi"}], tmp_path / "a.jsonl", agent=FakeAgent())
    assert summary.answered == 1 and read(tmp_path / "a.jsonl")[0]["answer"] == "A:hi"


@pytest.mark.unit
def test_agent_settings_reach_the_agent_and_the_rest_each_question(tmp_path, monkeypatch):
    """Every keyword of Agent(...) (the sampling settings included) configures the agent run_batch
    makes; the others (max_tokens, tool_choice) go to each question."""
    from dataclasses import fields

    import tooltoken._agent
    from tooltoken import Sampling
    from tooltoken._batch import agent_options

    loads = []

    def load_backend(model, **kw):
        loads.append((model, kw))
        return ScriptedBackend([chunks("Hello there, friend.")])

    monkeypatch.setattr(tooltoken._agent, "load_backend", load_backend)
    sampling = {"temperature": 0.7, "top_k": 5, "top_p": 0.5, "min_p": 0.1, "repeat_penalty": 1.2, "seed": 7,
                "call_greedy": False}
    assert {f.name for f in fields(Sampling)} <= agent_options()
    q = write_questions(tmp_path / "q.jsonl", [{"id": 1, "question": "hi"}])
    summary = run_batch(q, tmp_path / "a.jsonl", model="some.gguf", tools=[], n_ctx=1024, max_tokens=5,
                        tool_choice="none", **sampling)
    assert summary.answered == 1, summary.failures
    [(model, kw)] = loads
    assert model == "some.gguf" and kw["n_ctx"] == 1024 and kw["sampling"] == Sampling(**sampling)
    [row] = read(tmp_path / "a.jsonl")
    assert row["answer"] == "Hello there, fr" and row["stop_reason"] == "length"  # 5 tokens of 3 characters
    with pytest.raises(ConfigError, match="top_k"):
        run_batch(q, tmp_path / "b.jsonl", agent=FakeAgent(), top_k=5)  # an agent given: say so, do not drop it


class Shelf:
    """A one-document SearchBackend in memory."""

    def search(self, query, k=5):
        return [Hit("tolstoy", "War and Peace", "A novel by Leo Tolstoy.", 1.0)]

    def get(self, id):
        return Document("tolstoy", "War and Peace", "War and Peace is a novel by Leo Tolstoy.")


@pytest.mark.unit
def test_each_question_browses_on_its_own(tmp_path):
    """The document q1 opened is not open in q2 (with concurrency it would be a race)."""
    browser = Browser(Shelf())
    agent = Agent(ScriptedBackend([
        ["<tool_call>"], chunks('{"name": "open", "arguments": {"id": "tolstoy"}}'), chunks("Read [1]."),
        ["<tool_call>"], chunks('{"name": "find", "arguments": {"text": "Tolstoy"}}'), chunks("None [1]."),
    ]), tools=browser.tools(), policy="plain")  # the model's own calls, not the lookup path's
    q = write_questions(tmp_path / "q.jsonl", [{"id": 1, "question": "open it"}, {"id": 2, "question": "find it"}])
    assert run_batch(q, tmp_path / "a.jsonl", agent=agent).answered == 2
    first, second = (r["tool_results"][0] for r in read(tmp_path / "a.jsonl"))
    assert not first["error"] and "Leo Tolstoy" in first["content"]
    assert second["error"] and "no document is open" in second["content"], second
    assert browser.document is None  # the agent's own Browser was never used


@pytest.mark.integration
def test_run_command_on_the_real_model(tmp_path, smollm2_path):
    q = write_questions(tmp_path / "q.jsonl", [{"id": "m1", "question": "What is 1234 * 5678?"},
                                               {"id": "m2", "question": "What is 2+2?"}])
    out = tmp_path / "a.jsonl"
    cmd = [sys.executable, "-c", "from tooltoken.app.cli import main; main()", "run", str(q), "-o", str(out),
           "--model", smollm2_path, "--tools", "calculator", "--tool-choice", "calculator", "--max-tokens", "16"]
    env = dict(os.environ, COLUMNS="120")
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stderr
    assert "2 answered, 0 failed, 0 skipped" in first.stdout
    assert "ETA" in first.stderr  # the progress bar
    rows = read(out)
    assert [r["id"] for r in rows] == ["m1", "m2"]
    assert all(r["error"] is None and r["tool_calls"] and isinstance(r["answer"], str) for r in rows), rows
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0 and "0 answered, 0 failed, 2 skipped" in again.stdout
