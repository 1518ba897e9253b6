"""Speculative decoding on the real SmolLM2-135M: the same answers and calls as plain greedy
decoding, and no drafted token left in the context past a tool call (integration tier)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from tooltoken import Agent, ConfigError, Final, LlamaBackend, ToolCall, tool
from tooltoken._llama_turns import LlamaTurns
from tooltoken._loop import Answer

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


# Both sides batch-invariant (the default with a draft; asked for on the plain side): llama.cpp then
# gives a batch of up to 7 tokens the logits one token gets, bit for bit, on the machine's threads
# (test_a_small_batch_gets_the_logits_of_one_token), so any difference left is the draft logic's.
def _backend(path, draft=None):
    return LlamaBackend(path, draft=draft, batch_invariant=True)


@pytest.fixture(scope="module")
def plain(smollm2_path):
    return Agent(_backend(smollm2_path), tools=[lookup], max_tokens=64)


@pytest.fixture(scope="module")
def lookup_agent(smollm2_path):
    return Agent(_backend(smollm2_path, "prompt-lookup"), tools=[lookup], max_tokens=64)


# The plan forces the calls; "none" after them lets the answer run on with no trigger (SmolLM2 then
# copies the result out, a long draftable answer); without it the answer stops at the first
# trigger (SmolLM2 starts writing a <tool_response> itself), a stop drafts must not run past.
CHOICES = [["lookup", "none"], ["lookup", "lookup", "none"], "lookup"]


@pytest.mark.parametrize("choice", CHOICES, ids=["one-call", "two-calls", "then-triggers"])
def test_prompt_lookup_gives_the_plain_answers_and_calls(plain, lookup_agent, choice):
    draft = lookup_agent.backend.llm.draft_model
    before = draft.stats.accepted
    assert _answers(lookup_agent, tool_choice=choice) == _answers(plain, tool_choice=choice)
    if isinstance(choice, list):  # answers that copy their result: the drafts were used
        assert draft.stats.accepted > before


def test_no_drafted_token_stays_past_a_call_or_the_end(lookup_agent):
    """Where the controller stops taking tokens (a call is complete, a trigger, the end of the
    answer), the context llama.cpp holds is the controller's own: drafted tokens are cut off."""
    agent = lookup_agent
    llm = agent.backend.llm
    for q in QUESTIONS:
        for choice in CHOICES:
            llm.reset()
            options = replace(agent.options, tool_choice=choice)
            turns = LlamaTurns(agent.backend, agent.fmt, agent.tools, options, agent.render(agent.messages(q)))
            calls, forced = 0, choice.count("lookup") if isinstance(choice, list) else 1
            for event in Answer(turns, agent.tools, options).run():
                held = llm.input_ids[: llm.n_tokens].tolist()
                if isinstance(event, ToolCall):  # the tool is about to run
                    calls += 1
                    text = llm.detokenize(held, special=True).decode("utf-8", "replace")
                    # what the context holds of the call (then its close, evaluated while the
                    # controller looked for another call in the same turn)
                    body = text.rsplit("<tool_call>\n", 1)[1].split("</tool_call>")[0]
                    assert event.raw.strip().startswith(body.strip()), (body, event.raw)
                    if calls <= forced:  # a later call is the model's own: any name it wrote
                        assert json.loads(event.raw)["name"] == "lookup"
                elif isinstance(event, Final):
                    assert held == turns.ctx[: len(held)]
                    assert len(held) >= len(turns.ctx) - 1
            # a plan ending in "none" makes exactly its calls; after "lookup" alone, whether the
            # model opens another call depends on its words (and so on the CPU's kernels)
            assert calls == forced if isinstance(choice, list) else calls >= forced


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
    agent = Agent(_backend(smollm2_path, smollm2_path), tools=[lookup], max_tokens=64)
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


@pytest.mark.parametrize("context", [100, 700], ids=["short", "past-512-cells"])
def test_a_small_batch_gets_the_logits_of_one_token(smollm2_path, context):
    """The tokens a draft batch holds get, bit for bit, the logits one-token decoding gives them:
    with 2 threads and a context past 512 KV cells too, where an F16 cache splits one token's
    attention across the threads and a batch's not (measured off by 0.5-0.7 without the setting)."""
    from tooltoken.evals.bench_invariance import _TEXT, _measure

    backend = LlamaBackend(smollm2_path, n_threads=2, batch_invariant=True, llama_kwargs={"logits_all": True})
    figures = _measure(backend.llm, backend.tokenize(_TEXT, special=False), context, repeats=1)
    assert [figures["max_logit_diff"][str(k)] for k in range(2, 8)] == [0.0] * 6  # bit for bit
    backend.llm.close()


def test_the_benches_run_on_the_real_model(smollm2_path):
    """`tooltoken bench invariance` and `bench speculative` as a user runs them (in a process of
    their own: the figures of the README come from these commands on Qwen2.5)."""
    import subprocess
    import sys

    def bench(*args):
        out = subprocess.run([sys.executable, "-c", "from tooltoken.app.cli import main; main()", "bench", *args,
                              "--model", smollm2_path, "--json"], capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    inv = bench("invariance", "--context", "600")
    assert all(inv["batch_invariant"]["max_logit_diff"][str(k)] == 0.0 for k in range(2, 8))
    assert inv["batch_invariant"]["prefill_tokens_per_s"] > 0 and inv["default"]["decode_tokens_per_s"] > 0
    spec = bench("speculative", "--limit", "2")
    assert spec["identical_text"] is True and spec["batch_invariant"] is True
    assert {"speedup", "speedup_vs_default", "differing_from_default"} <= spec.keys()
