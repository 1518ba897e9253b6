"""The langchain-tests standard integration suites on the real parts: the chat model on
SmolLM2-135M through llama.cpp, the retriever on a real BM25 index, the tools running for real.

SmolLM2-135M is a 135M-parameter model: where a standard test asks the model itself to choose a
tool or to copy exact values, it is marked xfail with the reason (forced calls, which the grammar
makes valid, are tested and pass; the tests below check them for structure, whatever values the
model writes, since its words change with the CPU's kernels)."""

from __future__ import annotations

import os

import functools
import operator
import tempfile
from typing import Literal

import pytest
from pydantic import BaseModel, Field

pytest.importorskip("langchain_tests")
pytest.importorskip("llama_cpp")

from langchain_tests.integration_tests import (
    ChatModelIntegrationTests,
    RetrieversIntegrationTests,
    ToolsIntegrationTests,
)

from tooltoken.app.langchain import ChatTooltoken, TooltokenRetriever, to_langchain_tool
from tooltoken.tools import BM25Search, Browser, Document
from tooltoken.tools.calculator import calculator

pytestmark = [pytest.mark.integration, pytest.mark.anyio]  # the suites have async tests (anyio runs them)

@pytest.fixture
def anyio_backend():
    return "asyncio"


DOCS = [
    Document("tolstoy", "War and Peace", "War and Peace is a novel by the Russian author Leo Tolstoy, published in 1869."),
    Document("defoe", "Robinson Crusoe", "Robinson Crusoe is a novel by Daniel Defoe, first published in 1719."),
    Document("austen", "Pride and Prejudice", "Pride and Prejudice is a novel by Jane Austen, published in 1813."),
    Document("melville", "Moby-Dick", "Moby-Dick is a novel by Herman Melville, published in 1851."),
    Document("everest", "Mount Everest", "Mount Everest is Earth's highest mountain above sea level."),
]


@functools.cache
def index() -> BM25Search:
    pytest.importorskip("bm25s")
    return BM25Search.build(DOCS, tempfile.mkdtemp(prefix="tooltoken-lc-") + "/idx")


class TestRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self):
        return TooltokenRetriever

    @property
    def retriever_constructor_params(self):
        return {"backend": index()}

    @property
    def retriever_query_example(self):
        return "a novel published by an author"


class TestCalculatorToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self):
        return to_langchain_tool(calculator)

    @property
    def tool_invoke_params_example(self):
        return {"expression": "1234 * 5678"}


class TestBrowserSearchToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self):
        search = next(t for t in Browser(index()).tools() if t.name == "search")
        return to_langchain_tool(search)

    @property
    def tool_invoke_params_example(self):
        return {"query": "Tolstoy novel"}


_WEAK = "SmolLM2-135M (the CI model) does not do this unprompted; forced, grammar-checked calls are tested"
# The chat model's standard suite runs on SmolLM2 in CI; TOOLTOKEN_LC_TEST_MODEL=qwen2.5-coder-1.5b
# runs it on the default model, where the tests marked xfail for the small model must pass.
MODEL = os.environ.get("TOOLTOKEN_LC_TEST_MODEL", "smollm2-135m")
SMALL = MODEL == "smollm2-135m"


class TestChatTooltokenIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self):
        return ChatTooltoken

    @property
    def chat_model_params(self):
        return {"model": MODEL, "max_tokens": 32 if SMALL else 256, "max_call_tokens": 128 if SMALL else 512}

    @property
    def has_tool_choice(self):
        return True

    @property
    def model_override_value(self):
        # the same weights by path: a distinct agent per model name, no second model in memory
        from tooltoken._models import resolve_model

        return str(resolve_model(MODEL))

    @property
    def supports_json_mode(self):
        return True  # a forced call under the schema's grammar

    @pytest.mark.xfail(SMALL, reason=_WEAK + " (here: call a tool with tool_choice auto)", run=False)
    def test_agent_loop(self, model):
        super().test_agent_loop(model)

    # The standard tool-calling tests also check the values the model chose ({"input": 3} copied
    # from "magic_function(3)", the Chinese and Japanese names copied into `customer_name`): the
    # model's words, which a near tie on another CPU's kernels can change. On the CI model the
    # same calls are checked for what the grammar and the adapter promise, whatever the words
    # (test_tool_calling_whatever_the_values below); the default model runs them as they are.
    _VALUES = "asserts values SmolLM2-135M copies, which can change with the CPU; see the comment"

    @pytest.mark.xfail(SMALL, reason=_VALUES, run=False)
    @pytest.mark.parametrize("model", [{}, {"output_version": "v1"}], indirect=True)
    def test_tool_calling(self, model):
        super().test_tool_calling(model)

    @pytest.mark.xfail(SMALL, reason=_VALUES, run=False)
    async def test_tool_calling_async(self, model):
        await super().test_tool_calling_async(model)

    @pytest.mark.xfail(SMALL, reason=_VALUES, run=False)
    def test_unicode_tool_call_integration(self, model, **kwargs):
        super().test_unicode_tool_call_integration(model, **kwargs)

    # Structured output and JSON mode (a forced call under the schema's grammar) run as the
    # standard suite has them, on the small model too: every string in the call grammar is
    # bounded, a string that loops ends the call, and a forced call that did not close is written
    # once more under halved bounds, so the grammar closes it (they were xfail before the bounds).


@pytest.mark.parametrize("output_version", ["v0", "v1"])
async def test_tool_calling_whatever_the_values(output_version):
    """The standard test_tool_calling(_async) and test_unicode_tool_call_integration on the CI
    model, but for the values the model copies: a forced call, invoked, streamed and async, comes
    back as one valid LangChain tool call; non-ASCII arguments come back as text, not escapes."""
    from langchain_tests.integration_tests.chat_models import magic_function, unicode_customer

    llm = ChatTooltoken(model="smollm2-135m", max_tokens=32, max_call_tokens=128, output_version=output_version)
    bound = llm.bind_tools([magic_function], tool_choice="any")
    query = "What is the value of magic_function(3)? Use the tool."
    check_one_call(bound.invoke(query), magic_function)
    check_one_call(functools.reduce(operator.add, bound.stream(query)), magic_function)
    check_one_call(await bound.ainvoke(query), magic_function)
    check_one_call(functools.reduce(operator.add, [c async for c in bound.astream(query)]), magic_function)
    if output_version == "v0":
        bound = llm.bind_tools([unicode_customer], tool_choice="any")
        for name in ("你好啊集团", "こんにちは株式会社"):
            call = check_one_call(bound.invoke(f"Create a customer named '{name}' - a technology company"),
                                  unicode_customer)
            assert all("\\u" not in str(v) for v in call["args"].values()), call


def check_one_call(message, tool) -> dict:
    """What the standard suite's `_validate_tool_call_message` checks but the arguments' values:
    one call to `tool`, with an id, arguments valid for its schema, and the same call among the
    message's content blocks."""
    from langchain_core.messages import AIMessage

    assert isinstance(message, AIMessage) and len(message.tool_calls) == 1, message
    call = message.tool_calls[0]
    assert call["name"] == tool.name and call["id"] is not None and call.get("type") == "tool_call", call
    tool.args_schema.model_validate(call["args"])
    blocks = [b for b in message.content_blocks if b["type"] == "tool_call"]
    assert [(b["name"], b["args"], b["id"] is not None) for b in blocks] == [(tool.name, call["args"], True)]
    return call


class Sentiment(BaseModel):
    """The sentiment of a review."""

    label: Literal["positive", "negative"] = Field(description="positive or negative")
    stars: int = Field(description="1 to 5")


def test_structured_output_on_a_closed_schema():
    """Every with_structured_output method on the real model, invoked and streamed: a schema whose
    strings are an enum, so the grammar closes the JSON even on a 135M model decoding greedily.
    Which label the model picks is its judgment, and can change with the CPU's kernels; that the
    label is one of the schema's is the grammar's promise, checked here."""
    llm = ChatTooltoken(model="smollm2-135m", max_tokens=32, max_call_tokens=64)
    good = "Review: 'I loved this film, wonderful acting.' What is its sentiment?"
    bad = "Review: 'Terrible, boring, a waste of time.' What is its sentiment?"
    for method in ("function_calling", "json_schema", "json_mode"):
        result = llm.with_structured_output(Sentiment, method=method).invoke(good)
        assert isinstance(result, Sentiment), (method, result)  # validated: label is one of the enum
    chunks = list(llm.with_structured_output(Sentiment.model_json_schema(), method="json_schema").stream(bad))
    assert chunks and chunks[-1]["label"] in ("positive", "negative"), chunks
    assert isinstance(chunks[-1]["stars"], int), chunks
