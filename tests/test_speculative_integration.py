"""Speculative decoding on the real SmolLM2-135M: the same answers and calls as plain greedy
decoding, and no drafted token left in the context past a tool call (integration tier)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tooltoken import Agent, ConfigError, ToolCall, ToolResult, tool

pytestmark = pytest.mark.integration

PAGES = {
    "eiffel": "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is "
    "named after the engineer Gustave Eiffel, whose company designed and built the tower from 1887 to 1889.",
    "everest": "Mount Everest is Earth's highest mountain above sea level. Its elevation of 8,848.86 metres was "
    "established in 2020. Edmund Hillary and Tenzing Norgay made the first ascent on 29 May 1953.",
    "titanic": "RMS Titanic sank in the North Atlantic Ocean on 15 April 1912 after striking an iceberg during "
    "her maiden voyage from Southampton to New York City. More than 1,500 people died.",
}
QUESTIONS = [
    "Who built the Eiffel Tower? Quote the source.",
    "How high is Mount Everest and who climbed it first? Restate the source.",
    "When did the Titanic sink? Quote the source's sentence.",
]


@tool
def lookup(topic: str) -> str:
    """Look up the encyclopedia entry on a topic."""
    words = topic.lower()
    return next((text for key, text in PAGES.items() if key in words), PAGES["eiffel"])


def _answers(agent: Agent, **options) -> list[tuple[str, list]]:
    out = []
    for q in QUESTIONS:
        agent.backend.llm.reset()
        final = agent.run(q, **options)
        out.append((final.answer, [(c.name, c.arguments) for c in final.tool_calls]))
    return out


@pytest.fixture(scope="module")
def plain(smollm2_path):
    return Agent(smollm2_path, tools=[lookup], max_tokens=64)


@pytest.fixture(scope="module")
def lookup_agent(smollm2_path):
    return Agent(smollm2_path, tools=[lookup], max_tokens=64, draft="prompt-lookup")


@pytest.mark.parametrize("choice", ["lookup", ["lookup", "lookup"]], ids=["one-call", "two-calls"])
def test_prompt_lookup_gives_the_plain_answers_and_calls(plain, lookup_agent, choice):
    draft = lookup_agent.backend.llm.draft_model
    before = draft.stats.accepted
    assert _answers(lookup_agent, tool_choice=choice) == _answers(plain, tool_choice=choice)
    assert draft.stats.accepted > before  # the drafts were used, not all rejected


def test_no_drafted_token_stays_past_a_call(lookup_agent):
    """When a call is written (the tool about to run, and while it runs), the context llama.cpp
    holds ends inside the call the model sampled: nothing drafted after it."""
    llm = lookup_agent.backend.llm
    for q in QUESTIONS:
        llm.reset()
        raws = []
        for event in lookup_agent.stream(q, tool_choice=["lookup", "lookup"]):
            if isinstance(event, ToolCall):
                raws.append(event.raw)
                assert json.loads(event.raw)["name"] == "lookup"
            if isinstance(event, (ToolCall, ToolResult)):
                held = llm.detokenize(llm.input_ids[: llm.n_tokens].tolist(), special=True).decode("utf-8", "replace")
                body = held.rsplit("<tool_call>\n", 1)[1]
                assert raws[-1].strip().startswith(body.strip()), (body, raws[-1])
        assert len(raws) == 2


def test_drafts_never_stay_where_the_consumer_stopped(lookup_agent):
    """Raw generation on a prompt that makes long drafts: stop after k tokens, at any k."""
    backend = lookup_agent.backend
    llm = backend.llm
    text = "Repeat exactly: one two three four five six seven eight nine ten. one two three four five six seven"
    prompt = backend.tokenize(f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n", special=True)
    from tooltoken._backend import GenerateStats

    for k in (1, 3, 7, 12):
        llm.reset()
        taken = []
        gen = backend.generate(prompt, grammar=None, stats=GenerateStats())
        for token in gen:
            taken.append(token)
            if len(taken) == k:
                break
        gen.close()
        held = llm.input_ids[: llm.n_tokens].tolist()
        assert held == (prompt + taken)[: len(held)], k  # nothing but what was given and taken
        assert len(held) >= len(prompt) + k - 1


def test_a_gguf_draft_model_drafting_for_itself(smollm2_path, plain):
    agent = Agent(smollm2_path, tools=[lookup], max_tokens=64, draft=smollm2_path)
    draft = agent.backend.llm.draft_model
    assert _answers(agent, tool_choice="lookup") == _answers(plain, tool_choice="lookup")
    assert draft.stats.acceptance is not None and draft.stats.acceptance > 0.8


def test_a_draft_model_must_share_the_vocabulary(smollm2_path, tmp_path):
    import llama_cpp

    from gguf_fixtures import make_vocab_gguf
    from tooltoken._draft import GGUFDraftModel

    draft = GGUFDraftModel(smollm2_path, n_ctx=256)
    same = llama_cpp.Llama(smollm2_path, vocab_only=True, verbose=False)
    draft.check(same)  # the same tokenizer: fine
    other_path = make_vocab_gguf(smollm2_path, tmp_path / "other.gguf", "{{ messages }}",
                                 ["<|begin_of_text|>", "<|eot_id|>"], "<|eot_id|>")
    other = llama_cpp.Llama(str(other_path), vocab_only=True, verbose=False)
    with pytest.raises(ConfigError, match="must share the main model's vocabulary"):
        draft.check(other)
    # unchecked, a token id past the draft's vocabulary is caught on the first call
    fresh = GGUFDraftModel(smollm2_path, n_ctx=256)
    with pytest.raises(ConfigError, match="outside the vocabulary"):
        fresh(np.array([1, 2, fresh.n_vocab + 5], dtype=np.intc))
