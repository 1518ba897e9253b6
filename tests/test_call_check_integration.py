"""The call check's backend seam on the real SmolLM2: next-token logits, and banned tokens."""

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


def test_next_logits_rank_the_candidates_as_greedy_decoding_picks(backend):
    prompt = backend.tokenize("<|im_start|>user\nIs Paris in France? Answer yes or no.<|im_end|>\n"
                              "<|im_start|>assistant\n", special=True)
    greedy = _first(backend, prompt)
    others = [backend.tokenize(w, special=False)[0] for w in ("Yes", "No", "yes", "no", " the")]
    candidates = [greedy, *[t for t in others if t != greedy]]
    stats = GenerateStats()
    logits = backend.next_logits(prompt, candidates, stats)
    assert max(range(len(logits)), key=logits.__getitem__) == 0  # the greedy token has the top logit
    assert stats.reused > 0  # the prompt's prefix came from the KV cache
    # and the KV cache is left consistent: generating again gives the same first token
    assert _first(backend, prompt) == greedy


def test_a_banned_token_is_never_sampled(backend):
    prompt = backend.tokenize("<|im_start|>user\nSay hello.<|im_end|>\n<|im_start|>assistant\n", special=True)
    greedy = _first(backend, prompt)
    second = _first(backend, prompt, ban=[greedy])
    assert second != greedy
    assert _first(backend, prompt) == greedy  # the ban lasts one generation
