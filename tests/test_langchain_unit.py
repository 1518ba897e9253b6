"""LangChain adapters without a model: the langchain-tests standard unit suites, and the adapters'
own behaviour on a scripted backend."""

from __future__ import annotations

import asyncio
import json

import pytest
from tooltoken import Sampling

pytest.importorskip("langchain_tests")

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool as lc_tool
from langchain_tests.unit_tests import ChatModelUnitTests, ToolsUnitTests
from pydantic import BaseModel, Field

from scripted import ScriptedBackend, chunks
from tooltoken import Agent, tool
from tooltoken.app.langchain import ChatTooltoken, TooltokenRetriever, from_langchain_tool, to_langchain_tool

pytestmark = pytest.mark.unit


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression."""
    if expression == "1/0":
        raise ZeroDivisionError("division by zero")
    return {"2+2": "4"}.get(expression, "0")


class TestChatTooltokenStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self):
        return ChatTooltoken

    @property
    def chat_model_params(self):
        return {"model": "smollm2-135m"}  # nothing loads until the first call

    @property
    def standard_chat_model_params(self):
        params = super().standard_chat_model_params
        params.pop("api_key")  # a local model has no key
        return params

    @property
    def init_from_env_params(self):
        return {"TOOLTOKEN_MODEL": "smollm2-135m"}, {}, {"model": "smollm2-135m"}


class TestCalculatorToolStandard(ToolsUnitTests):
    @property
    def tool_constructor(self):
        return to_langchain_tool(calculator)

    @property
    def tool_invoke_params_example(self):
        return {"expression": "2+2"}


@lc_tool
def my_adder(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


ADD = '{"name": "my_adder", "arguments": {"a": 1, "b": 2}}'


def chat_on(scripts, **kw):
    backend = ScriptedBackend(scripts)
    return ChatTooltoken(agent=Agent(backend, tools=kw.pop("tools", []), policy="plain"), **kw), backend


def test_bound_tool_call_comes_back_and_stops_the_answer():
    llm, backend = chat_on([chunks(ADD), chunks("never generated")])
    msg = llm.bind_tools([my_adder], tool_choice="any").invoke("What is 1 + 2?")
    assert msg.tool_calls == [{"name": "my_adder", "args": {"a": 1, "b": 2}, "id": msg.tool_calls[0]["id"],
                               "type": "tool_call"}]
    assert msg.response_metadata["finish_reason"] == "tool_calls"
    assert msg.usage_metadata["input_tokens"] > 0
    assert len(backend.requests) == 1 and backend.scripts == [chunks("never generated")]  # nothing after the call


def test_tool_message_history_reads_like_the_agents_own_turns():
    llm, backend = chat_on([chunks("It is 3 [1].")])
    history = [
        SystemMessage("Be brief."),
        HumanMessage("What is 1 + 2?"),
        AIMessage("", tool_calls=[{"name": "my_adder", "args": {"a": 1, "b": 2}, "id": "abc", "type": "tool_call"}]),
        ToolMessage(json.dumps({"result": 3}), tool_call_id="abc"),
    ]
    msg = llm.bind_tools([my_adder]).invoke(history)
    assert msg.content.startswith("It is 3 [1].")
    prompt = backend.detokenize(backend.requests[0][0]).decode()
    assert "Be brief." in prompt
    assert '<tool_call>\n{"name": "my_adder", "arguments": {"a": 1, "b": 2}}\n</tool_call>' in prompt
    assert '<tool_response>\n[1] my_adder\n{"result": 3}\n</tool_response>' in prompt


def test_internal_tools_run_inside_the_answer_and_report_citations():
    call = '{"name": "calculator", "arguments": {"expression": "2+2"}}'
    llm, _ = chat_on([["<tool_call>"], chunks(call), chunks("It is 4 [1].")], tools=[calculator])
    msg = llm.invoke("What is 2+2?")
    assert msg.content.startswith("It is 4 [1].") and not msg.tool_calls
    info = msg.response_metadata["tooltoken"]
    assert info["tool_results"][0]["content"] == "4"
    assert info["citations"][0]["verified"] is True


def test_stop_sequences_cut_the_text():
    llm, _ = chat_on([chunks("Hello there, friend. More.")] * 2)
    assert llm.invoke("hi", stop=["friend"]).content == "Hello there, "
    llm2, _ = chat_on([chunks("Hello there, friend. More.")], stop=["there"])
    assert llm2.invoke("hi").content == "Hello "


def test_stream_and_astream_end_with_a_last_chunk():
    llm, _ = chat_on([chunks("Hello there."), chunks("Hello there.")])
    parts = list(llm.stream("hi"))
    assert "".join(p.content for p in parts) == "Hello there."
    assert parts[-1].chunk_position == "last" and parts[-1].usage_metadata["output_tokens"] > 0

    async def collect():
        return [p async for p in llm.astream("hi")]

    aparts = asyncio.run(collect())
    assert "".join(p.content for p in aparts) == "Hello there." and aparts[-1].chunk_position == "last"


def test_structured_output_is_a_forced_call_under_the_schema():
    class Joke(BaseModel):
        """A joke."""

        setup: str = Field(description="the question")
        punchline: str = Field(description="the answer")

    call = '{"name": "Joke", "arguments": {"setup": "Why?", "punchline": "Because."}}'
    for method in ("function_calling", "json_schema", "json_mode"):
        llm, backend = chat_on([chunks(call)])
        joke = llm.with_structured_output(Joke, method=method).invoke("Tell me a joke")
        assert joke == Joke(setup="Why?", punchline="Because.")
        grammar = backend.requests[0][1]
        assert grammar["properties"]["name"] == {"const": "Joke"}
        assert set(grammar["properties"]["arguments"]["properties"]) == {"setup", "punchline"}


def test_bad_tool_choice_and_unknown_kwargs_are_clear_errors():
    llm, _ = chat_on([])
    with pytest.raises(ValueError, match="bound tool"):
        llm.bind_tools([my_adder], tool_choice="nope")
    with pytest.raises(ValueError, match="does not take"):
        llm.invoke("hi", frequency_penalty=1)


def test_tooltoken_tool_as_langchain_tool_reports_errors_and_sources():
    lc = to_langchain_tool(calculator)
    assert lc.invoke({"expression": "2+2"}) == "4"
    msg = lc.invoke({"name": "calculator", "args": {"expression": "1/0"}, "id": "1", "type": "tool_call"})
    assert msg.status == "error" and "division by zero" in msg.content
    msg = lc.invoke({"name": "calculator", "args": {"expression": "2+2"}, "id": "2", "type": "tool_call"})
    assert msg.content == "4" and msg.artifact == []


def test_langchain_tool_as_tooltoken_tool():
    t = from_langchain_tool(my_adder)
    assert t.name == "my_adder" and set(t.parameters["properties"]) == {"a", "b"}
    assert t.invoke({"a": 2, "b": 3}).content == "5"


def test_retriever_over_a_search_backend():
    from tooltoken.tools import Document, Hit

    class Backend:
        docs = {"a": Document("a", "Tolstoy", "Leo Tolstoy wrote War and Peace.", "wiki/a"),
                "b": Document("b", "Defoe", "Daniel Defoe wrote Robinson Crusoe.", "wiki/b")}

        def search(self, query, k=5):
            return [Hit(d.id, d.title, d.text[:10], 1.0 / (i + 1), d.location) for i, d in
                    enumerate(self.docs.values())][:k]

        def get(self, id):
            return self.docs[id]

    docs = TooltokenRetriever(backend=Backend(), k=2).invoke("who wrote")
    assert [d.id for d in docs] == ["a", "b"] and docs[0].page_content == "Leo Tolstoy wrote War and Peace."
    assert docs[0].metadata["location"] == "wiki/a"
    short = TooltokenRetriever(backend=Backend(), full_text=False).invoke("who wrote", k=1)
    assert [d.page_content for d in short] == ["Leo Tolsto"]


def test_sampling_settings_reach_the_model_it_loads(monkeypatch):
    import tooltoken._agent
    from scripted import ScriptedBackend as Scripted

    loads = []

    def load_backend(model, **kw):
        loads.append((model, kw))
        return Scripted([chunks("Hi.")])

    monkeypatch.setattr(tooltoken._agent, "load_backend", load_backend)
    sampling = {"temperature": 0.7, "top_k": 5, "top_p": 0.5, "min_p": 0.1, "repeat_penalty": 1.2, "seed": 7,
                "call_greedy": False}
    llm = ChatTooltoken(model="some.gguf", n_ctx=1024, **sampling)
    assert llm.invoke("hi").content == "Hi."
    [(model, kw)] = loads
    assert model == "some.gguf" and kw["n_ctx"] == 1024 and kw["sampling"] == Sampling(**sampling)


def test_each_call_browses_on_its_own():
    """The agent is cached across calls; the document one call opened is not open in the next."""
    from tooltoken.tools import Browser, Document, Hit

    class Shelf:
        def search(self, query, k=5):
            return [Hit("tolstoy", "War and Peace", "A novel by Leo Tolstoy.", 1.0)]

        def get(self, id):
            return Document("tolstoy", "War and Peace", "War and Peace is a novel by Leo Tolstoy.")

    browser = Browser(Shelf())
    llm, _ = chat_on([["<tool_call>"], chunks('{"name": "open", "arguments": {"id": "tolstoy"}}'), chunks("Read [1]."),
                      ["<tool_call>"], chunks('{"name": "find", "arguments": {"text": "Tolstoy"}}'), chunks("No [1].")],
                     tools=browser.tools())
    first = llm.invoke("Open it.").response_metadata["tooltoken"]["tool_results"][0]
    second = llm.invoke("Find Tolstoy.").response_metadata["tooltoken"]["tool_results"][0]
    assert not first["error"] and "Leo Tolstoy" in first["content"]
    assert second["error"] and "no document is open" in second["content"], second
    assert browser.document is None


def test_bound_tools_are_the_caller_s_plan_under_the_default_policy():
    """An Agent with the default (routed) policy: a word problem would take the math path, but
    tools the caller bound are its own loop's, so they are declared and the call comes back."""
    backend = ScriptedBackend([["<tool_call>"], chunks(ADD), chunks("never generated")])
    llm = ChatTooltoken(agent=Agent(backend, tools=[], router=lambda q: "math"))
    msg = llm.bind_tools([my_adder]).invoke("What is 1 + 2?")
    assert [c["name"] for c in msg.tool_calls] == ["my_adder"]
