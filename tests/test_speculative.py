"""Speculative decoding without a model: prompt lookup, draft bookkeeping, dropping unconsumed drafts."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("llama_cpp")

from llama_cpp.llama_speculative import LlamaPromptLookupDecoding
from tooltoken import ConfigError
from tooltoken._backend import make_draft
from tooltoken._draft import DraftStats, PromptLookup, drop_unconsumed

pytestmark = pytest.mark.unit


def ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.intc)


def test_prompt_lookup_copies_what_followed_the_most_recent_occurrence():
    d = PromptLookup(max_ngram_size=2, min_ngram_size=2, num_pred_tokens=3)
    #           0  1  2  3  4  5  6  7  8  9
    context = ids(1, 2, 3, 4, 9, 1, 2, 5, 6, 1, 2)
    assert d.find(context) == [5, 6, 1]  # after the later "1 2", not the first
    assert PromptLookup(max_ngram_size=2, min_ngram_size=2, num_pred_tokens=3, recent=False).find(context) == [3, 4, 9]


def test_prompt_lookup_prefers_the_longest_ngram_and_never_a_lone_token_by_default():
    d = PromptLookup(max_ngram_size=3, min_ngram_size=2, num_pred_tokens=2)
    assert d.find(ids(7, 8, 9, 1, 8, 9, 2, 7, 8, 9)) == [1, 8]  # "7 8 9" beats the later "8 9"
    assert d.find(ids(5, 6, 7, 3, 5)) == []  # only "5" recurs: 1-grams are not looked up
    assert PromptLookup(max_ngram_size=2, min_ngram_size=1, num_pred_tokens=2).find(ids(5, 6, 7, 3, 5)) == [6, 7]


def test_prompt_lookup_stops_before_control_tokens():
    d = PromptLookup(max_ngram_size=2, min_ngram_size=2, num_pred_tokens=5)
    d.stops = frozenset({99})  # e.g. <|im_end|>: check(main_llm) fills this from the vocabulary
    assert d.find(ids(1, 2, 3, 99, 4, 1, 2)) == [3]
    assert d.find(ids(1, 2, 99, 4, 1, 2)) == []


def test_acceptance_is_read_off_the_next_call():
    d = PromptLookup(max_ngram_size=2, min_ngram_size=2, num_pred_tokens=4)
    context = [1, 2, 3, 4, 5, 6, 7, 1, 2]
    assert d(ids(*context)).tolist() == [3, 4, 5, 6]
    # the model confirmed 3 and 4, then sampled 8 instead of 5
    assert d(ids(*context, 3, 4, 8)).tolist() == []
    assert d.stats == DraftStats(rounds=1, drafted=4, accepted=2)
    # all four confirmed, then one more sampled token
    context = [1, 2, 3, 4, 5, 6, 7, 1, 2]
    d(ids(*context))
    d(ids(*context, 3, 4, 5, 6, 7))
    assert d.stats == DraftStats(rounds=2, drafted=8, accepted=6)
    assert d.stats.acceptance == 0.75


def test_a_draft_from_another_generation_is_not_judged():
    d = PromptLookup(max_ngram_size=2, min_ngram_size=2, num_pred_tokens=4)
    d(ids(1, 2, 3, 4, 5, 1, 2))
    d(ids(9, 9, 9))  # a new prompt: the controller stopped the last generation early
    assert d.stats == DraftStats()


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError):
        PromptLookup(max_ngram_size=2, min_ngram_size=3)
    with pytest.raises(ConfigError):
        PromptLookup(num_pred_tokens=0)


def test_make_draft_maps_names_to_drafts():
    d = make_draft("prompt-lookup")
    assert isinstance(d, PromptLookup) and isinstance(d, LlamaPromptLookupDecoding)
    assert make_draft(None) is None
    assert make_draft(d) is d


def tokens(*values: int):
    yield from values  # a generator, as Llama.generate is


class FakeLlama:
    """What drop_unconsumed touches of a llama_cpp.Llama."""

    def __init__(self, held: list[int]) -> None:
        self.input_ids = np.zeros(64, dtype=np.intc)
        self.input_ids[: len(held)] = held
        self.n_tokens = len(held)
        self._requires_eval = False
        self.removed: list[int] = []
        self._ctx = self

    def kv_cache_seq_rm(self, seq_id: int, p0: int, p1: int) -> bool:
        self.removed.append(p0)
        return True


def test_drafted_tokens_the_consumer_never_took_leave_the_context():
    # given 1 2 3; the model sampled 4 and 5; 6 7 were drafted and evaluated but not taken
    llm = FakeLlama([1, 2, 3, 4, 5, 6, 7])
    gen = drop_unconsumed(llm, [1, 2, 3], tokens(4, 5, 6, 7))
    assert [next(gen), next(gen)] == [4, 5]
    gen.close()  # the controller saw a trigger at 5
    # as without a draft: 5 itself is evaluated later, with what the controller inserts
    assert llm.n_tokens == 4 and llm.removed == [4] and llm._requires_eval


def test_a_rejected_draft_leaves_the_context_too():
    # 9 was drafted where the model sampled 5, and the consumer stopped before llama rolled back
    llm = FakeLlama([1, 2, 3, 4, 9, 8])
    gen = drop_unconsumed(llm, [1, 2, 3], tokens(4, 5))
    list(gen)
    assert llm.n_tokens == 4 and llm.removed == [4]


def test_a_generation_closed_before_its_first_token_is_left_alone():
    llm = FakeLlama([1, 2, 3, 4, 5])
    drop_unconsumed(llm, [1, 2], tokens(3)).close()
    assert llm.n_tokens == 5 and llm.removed == []


def test_plain_decoding_context_is_left_alone():
    llm = FakeLlama([1, 2, 3, 4])  # the last sampled token (5) is not evaluated yet
    gen = drop_unconsumed(llm, [1, 2, 3], tokens(4, 5))
    list(gen)
    assert llm.n_tokens == 4 and llm.removed == [] and not llm._requires_eval


def test_by_default_drafts_come_only_from_the_middle_of_a_copy():
    """On a CPU a batch costs nearly what its tokens cost one by one: draft 6 tokens (a batch of
    7, the most llama.cpp computes as one token), and only where the last 6 tokens already occur
    earlier (see tooltoken._draft)."""
    d = PromptLookup()
    source = list(range(100, 140))
    assert d.find(ids(*source, 7, *source[:5])) == []  # a 5-token match: no draft
    assert d.find(ids(*source, 7, *source[:6])) == source[6:12]  # 6 tokens: the next 6


def test_batch_invariance_bounds_the_draft_and_needs_flash_attention():
    from tooltoken._backend import INVARIANT_ROWS, _check_invariant

    _check_invariant({"flash_attn": True}, PromptLookup())  # 6 tokens: a batch of 7
    _check_invariant({"flash_attn": True}, None)
    assert INVARIANT_ROWS == 7
    with pytest.raises(ConfigError, match="draft at most 6 tokens"):
        _check_invariant({"flash_attn": True}, PromptLookup(num_pred_tokens=15))
    with pytest.raises(ConfigError, match="unbounded"):
        _check_invariant({"flash_attn": True}, object())  # a draft with no num_pred_tokens
    with pytest.raises(ConfigError, match="flash_attn"):
        _check_invariant({"flash_attn": False}, None)
    with pytest.raises(ConfigError, match="quantized KV cache"):
        _check_invariant({"flash_attn": True, "type_k": 1, "type_v": 8}, None)
