"""Grounded answers on the real SmolLM2-135M: a triggered calculator call, and WebGPT-style
search → open → quote over a small corpus, with the final event's citations checked."""

from __future__ import annotations

import re

import pytest

from tooltoken import Agent
from tooltoken.tools import BM25Search, Browser, Document
from tooltoken.tools.calculator import calculate, calculator

pytestmark = pytest.mark.integration

DOCS = [
    Document("doc:tolstoy", "War and Peace",
             "War and Peace is a novel by the Russian author Leo Tolstoy.\nIt was published in 1869.", "test://tolstoy"),
    Document("doc:paris", "Paris", "Paris is the capital of France.\nIt lies on the Seine.", "test://paris"),
    Document("doc:everest", "Mount Everest", "Mount Everest is the highest mountain on Earth.", "test://everest"),
]


def test_calculator_call_gives_the_exact_product(smollm2_path):
    final = Agent(smollm2_path, tools=[calculator], max_tokens=32).run("What is 1234 * 5678?", tool_choice="calculator")
    assert final.tool_calls[0].name == "calculator"
    assert final.tool_results[0].content == "7006652"  # SmolLM2 alone said 65656
    for c in final.citations:  # every marker the model wrote is checked, none dropped
        assert c.verified == (1 <= c.marker <= len(final.tool_results)) or c.quote


def test_arithmetic_written_out_is_finished_by_the_calculator_inline(smollm2_path):
    agent = Agent(smollm2_path, tools=[calculator], max_tokens=64)
    final = agent.run("What is 195 * 144 + 17 * 23? Work it out step by step, writing each step as 'a * b = c'.")
    assert final.usage.inline_calls >= 1
    assert "28471" in final.answer  # 195 * 144 + 17 * 23
    assert final.tool_calls == [] and final.stop_reason == "stop"


def test_a_program_in_a_code_block_is_run_by_the_calculator_inline(smollm2_path):
    agent = Agent(smollm2_path, inline_tools=[calculator], max_tokens=64)
    final = agent.run("Copy this code block exactly, with nothing else:\n```python\nweeks = 2 * 12\npay = 195 * 6 * weeks\n```")
    assert final.usage.inline_calls >= 1, final.answer
    # what SmolLM2 copies varies with the KV cache's history (`195 * 6 * 2 * 12`, `195 * 6 * 2`):
    # the values written after the block are the calculator's for the program it wrote
    program, output = re.search(r"```python\n(.*?)```\n```output\n(.*?)```", final.answer, re.S).groups()
    assert output == calculate(program) + "\n" and output.startswith("weeks = 24\npay = ")


def test_search_open_quote_yields_a_verified_quote_with_its_location(smollm2_path, tmp_path):
    browser = Browser(BM25Search.build(DOCS, tmp_path / "idx"))
    agent = Agent(smollm2_path, tools=browser.tools(), max_tokens=32)
    final = agent.run("Who wrote War and Peace?", tool_choice=["search", "open", "quote", "none"])
    assert [c.name for c in final.tool_calls] == ["search", "open", "quote"]
    quote = final.tool_results[2]
    assert not quote.error, quote.content  # the quote grammar only offers sentences of the open page
    (source,) = quote.sources
    assert source["id"] == "doc:tolstoy" and "line" in source["location"]
    assert source["text"] in DOCS[0].text
    assert browser.quotes and browser.quotes[0].id == "doc:tolstoy"
    for c in final.citations:
        if c.verified:
            assert 1 <= c.marker <= 3 and c.sources
        else:
            assert c.reason  # a marker that points at nothing is reported, with why
