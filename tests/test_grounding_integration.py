"""Grounded answers on the real SmolLM2-135M: a triggered calculator call, and WebGPT-style
search → open → quote over a small corpus, with the final event's citations checked."""

from __future__ import annotations

import warnings

import pytest

from tooltoken import Agent, TextDelta
from tooltoken.tools import BM25Search, Browser, Document
from tooltoken.tools.calculator import calculator

pytestmark = pytest.mark.integration

DOCS = [
    Document("doc:tolstoy", "War and Peace",
             "War and Peace is a novel by the Russian author Leo Tolstoy.\nIt was published in 1869.", "test://tolstoy"),
    Document("doc:paris", "Paris", "Paris is the capital of France.\nIt lies on the Seine.", "test://paris"),
    Document("doc:everest", "Mount Everest", "Mount Everest is the highest mountain on Earth.", "test://everest"),
]


class Opening:
    """The real model, with the first words of its answer written for it (as an assistant
    prefill would): they go through the real tokenizer, the controller and the KV cache as if
    sampled, and the model goes on from them. A test can then ask the model to write arithmetic
    without depending on which words one CPU's kernels make it choose."""

    def __init__(self, backend, opening: str):
        self.backend, self.opening = backend, opening

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def generate(self, tokens, **kw):
        given = [] if kw.get("call") or kw.get("grammar") is not None else self.backend.tokenize(self.opening, False)
        if given:
            self.opening = ""
            yield from given  # the consumer may stop inside them (at a trigger): that is the point
        yield from self.backend.generate(list(tokens) + given, **kw)


def held(backend) -> str:
    """The text llama.cpp's KV cache holds."""
    llm = backend.llm
    return llm.detokenize(llm.input_ids[: llm.n_tokens].tolist(), special=True).decode("utf-8", "replace")


@pytest.fixture(scope="module")
def model(smollm2_path):
    from tooltoken import LlamaBackend

    backend = LlamaBackend(smollm2_path)
    yield backend
    backend.llm.close()


def test_calculator_call_gives_the_exact_product(smollm2_path, invariants):
    """Whatever expression the model writes (`1234 * 5678` here, but that is one CPU's greedy
    choice), the result is its exact value, with Python's fractions as the reference; the call
    validates, its result is in the context, the citations resolve."""
    final = Agent(smollm2_path, tools=[calculator], max_tokens=32, show_prompt=True).run(
        "What is 1234 * 5678?", tool_choice="calculator")
    d = invariants.final(final, [calculator], forced=["calculator"])
    invariants.calculator(d["tool_calls"][0], d["tool_results"][0])  # SmolLM2 alone said 65656


def test_arithmetic_written_out_is_finished_by_the_calculator_inline(model, invariants):
    question = "What is 195 * 144 + 17 * 23? Work it out step by step, writing each step as 'a * b = c'."
    # the model's own steps, whatever they are: each inline value is exact
    events = list(Agent(model, tools=[calculator], max_tokens=64).stream(question))
    invariants.inline(events)
    invariants.final(events[-1], [calculator])
    # and a step written for it: the calculator finishes it, and the model goes on from the value
    events = list(Agent(Opening(model, "195 * 144 ="), tools=[calculator], max_tokens=64).stream(question))
    final = events[-1]
    assert final.usage.inline_calls >= 1 and final.answer.startswith("195 * 144 = 28080"), final.answer
    first = next(e for e in events if getattr(e, "inline", False))
    assert first.arguments == {"expression": "195 * 144"}
    assert "195 * 144 = 28080" in held(model)  # the value was evaluated: the model went on from it
    invariants.inline(events)
    invariants.final(final, [calculator])


def test_a_program_whose_result_cannot_stand_gets_a_second_look_closed_book(model, invariants):
    from tooltoken._policy import MATH_SYSTEM, NOT_LIKELY

    question = "A tank holds 40 litres. 40 litres are drained and then 15 more are drained. How many litres are left?"
    program = "```python\nleft = 40 - 40 - 15\n```"  # written for it: the result is -15 on every CPU
    agent = Agent(Opening(model, program), tools=[calculator], router=lambda q: "math", max_tokens=200)
    events = list(agent.stream(question))
    final = events[-1]
    assert final.route == "math" and final.answer.startswith(program + "\n```output\nleft = -15\n```\n"), final.answer
    why = NOT_LIKELY.format(value="-15")
    assert why in final.answer and final.timings["second_look_s"] > 0, final.answer
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == final.answer
    assert "```output" not in final.answer.split(why, 1)[1]  # closed book: nothing ran after the doubt
    context = held(model)  # the second look was answered on the bare prompt, in a fresh context
    assert MATH_SYSTEM not in context and question in context
    invariants.final(final, [calculator])


def test_a_program_in_a_code_block_is_run_by_the_calculator_inline(model, invariants):
    question = "Copy this code block exactly, with nothing else:\n```python\nweeks = 2 * 12\npay = 195 * 6 * weeks\n```"
    # what SmolLM2 copies varies with the kernels and the KV cache's history (`195 * 6 * 2 * 12`,
    # `195 * 6 * 2`): whatever program it writes, the values after the block are its steps'
    invariants.inline(list(Agent(model, inline_tools=[calculator], max_tokens=64).stream(question)))
    # and the block written for it: run, its values written after it, the model goes on
    block = "```python\nweeks = 2 * 12\npay = 195 * 6 * weeks\n```"
    events = list(Agent(Opening(model, block), inline_tools=[calculator], max_tokens=64).stream(question))
    final = events[-1]
    assert final.usage.inline_calls >= 1, final.answer
    assert final.answer.startswith(block + "\n```output\nweeks = 24\npay = 28080\n```\n"), final.answer
    assert "pay = 28080" in held(model)
    invariants.inline(events)


def test_search_open_quote_yields_a_verified_quote_with_its_location(smollm2_path, tmp_path, invariants):
    """The quote comes from the document the model opened (one of its search's results: the
    grammar offers only those), occurs in it verbatim, with its line. Which document that is
    (doc:tolstoy here) follows the model's query and pick, which are its words, not the tools'."""
    browser = Browser(BM25Search.build(DOCS, tmp_path / "idx"))
    agent = Agent(smollm2_path, tools=browser.tools(), max_tokens=32, show_prompt=True)
    final = agent.run("Who wrote War and Peace?", tool_choice=["search", "open", "quote", "none"])
    invariants.final(final, browser.tools(), forced=["search", "open", "quote"])
    search, opened, quote = final.tool_results
    hits = [s["id"] for s in search.sources]
    if opened.error:  # only if the model's query shared no word with the corpus: then it says so
        assert not hits and quote.error and "no document is open" in quote.content, final.tool_results
        warnings.warn(f"the model's search found nothing ({final.tool_calls[0].arguments}): quote not reached")
        return
    doc = next(d for d in DOCS if d.id == opened.sources[0]["id"])
    assert not hits or doc.id in hits, (hits, doc.id)  # the open grammar offers the search's results
    assert not quote.error, quote.content  # the quote grammar only offers sentences of the open page
    (source,) = quote.sources
    assert source["id"] == doc.id and "line" in source["location"] and source["text"] in doc.text
    for c in final.citations:
        if c.verified:
            assert c.sources
