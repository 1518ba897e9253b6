"""The call check's backend seam on the real SmolLM2: logits on the side, and banned tokens."""

from __future__ import annotations

import pytest

from tooltoken import LlamaBackend
from tooltoken._backend import GenerateStats

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backend(smollm2_path):
    b = LlamaBackend(smollm2_path, n_ctx=512, n_threads=1)
    yield b
    b.llm.close()


def _first(backend, tokens, **kw):
    gen = backend.generate(list(tokens), grammar=None, stats=GenerateStats(), **kw)
    try:
        return next(gen)
    finally:
        gen.close()


def test_side_logits_rank_as_greedy_decoding_and_leave_the_answer_cache_as_it_was(backend):
    question = backend.tokenize("<|im_start|>user\nIs Paris in France? Answer yes or no.<|im_end|>\n"
                                "<|im_start|>assistant\n", special=True)
    greedy = _first(backend, question)
    others = [backend.tokenize(w, special=False)[0] for w in ("Yes", "No", "yes", "no", " the")]
    candidates = [greedy, *[t for t in others if t != greedy]]

    answer = backend.tokenize("<|im_start|>user\nName a city in Italy.<|im_end|>\n<|im_start|>assistant\n",
                              special=True)
    gen = backend.generate(list(answer), grammar=None, stats=GenerateStats())
    written = [next(gen) for _ in range(6)]
    gen.close()
    context = answer + written[:-1]  # what the KV cache holds now

    logits = backend.side_logits(question, candidates)
    assert max(range(len(logits)), key=logits.__getitem__) == 0  # the greedy token has the top logit

    stats = GenerateStats()
    again = backend.generate(list(context), grammar=None, stats=stats)
    assert next(again) == written[-1]  # the answer goes on as if nothing had happened
    again.close()
    assert stats.reused == len(context) - 1  # from the saved cache, not evaluated again


def test_a_banned_token_is_never_sampled(backend):
    prompt = backend.tokenize("<|im_start|>user\nSay hello.<|im_end|>\n<|im_start|>assistant\n", special=True)
    greedy = _first(backend, prompt)
    second = _first(backend, prompt, ban=[greedy])
    assert second != greedy
    assert _first(backend, prompt) == greedy  # the ban lasts one generation


def test_the_judge_on_the_real_model_averages_two_wordings_of_each_question(backend):
    from tooltoken import tool
    from tooltoken._call_check import CHECK_SYSTEM, VALUES_OFFSET, _function_questions, _values_questions, judge
    from tooltoken._families import Call
    from tooltoken._side import _logsumexp, tokens

    @tool
    def weather(city: str) -> str:
        """Today's weather in a city."""
        return "sunny"

    call, request = Call("weather", {"city": "Paris"}), "What is the weather in Paris?"
    yes = sorted({backend.tokenize(w, special=False)[0] for w in ("yes", "Yes")})
    no = sorted({backend.tokenize(w, special=False)[0] for w in ("no", "No")} - set(yes))

    def odds(question):
        logits = backend.side_logits(tokens(backend, CHECK_SYSTEM, question), yes + no)
        return _logsumexp(logits[: len(yes)]) - _logsumexp(logits[len(yes):])

    function = [odds(q) for q in _function_questions(weather, request)]
    values = [odds(q) for q in _values_questions(call, request)]
    assert function[0] != function[1] and values[0] != values[1]  # two wordings, two answers
    expected = min(sum(function) / 2, sum(values) / 2 + VALUES_OFFSET)
    assert judge(backend, {"weather": weather}, request, [call]) == pytest.approx(expected, abs=1e-4)


def test_the_support_check_asks_the_real_model_on_the_side(backend):
    from tooltoken._side import _logsumexp, tokens
    from tooltoken._support_check import SUPPORT_QUESTION, SUPPORT_SYSTEM, support_odds

    source = {"title": "War and Peace", "text": "War and Peace is a novel by Leo Tolstoy, published in 1869."}
    score = support_odds(backend, "Who wrote War and Peace?", "Leo Tolstoy wrote it.", source)
    yes = sorted({backend.tokenize(w, special=False)[0] for w in ("yes", "Yes")})
    no = sorted({backend.tokenize(w, special=False)[0] for w in ("no", "No")} - set(yes))
    shown = SUPPORT_QUESTION.format(source="War and Peace: " + source["text"], question="Who wrote War and Peace?",
                                    answer="Leo Tolstoy wrote it.")
    logits = backend.side_logits(tokens(backend, SUPPORT_SYSTEM, shown), yes + no)
    assert score == pytest.approx(_logsumexp(logits[: len(yes)]) - _logsumexp(logits[len(yes):]), abs=1e-4)
