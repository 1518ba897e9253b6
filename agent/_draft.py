"""Speculative decoding: drafts that the model only has to confirm.

llama-cpp-python's `Llama.generate` takes a `draft_model`. After each token it samples, it asks the
draft for a few more, evaluates them all in one batch and keeps the run the model itself would
have sampled: with greedy sampling the text is the model's own whatever the draft says (a bad
draft costs time, never words). Two drafts:

- `PromptLookup` ("prompt-lookup") copies: the last few tokens are looked up earlier in the context
  and what followed them there is proposed. A grounded answer restates its tool results, so long
  runs of it are copies. The most recent occurrence wins (the tool result just inserted, or the
  answer's own last sentence). It drafts only in the middle of a copy: when the last 6 or more
  tokens occur earlier (up to 12 are matched), and then 6 tokens at once. On a 2-core CPU a
  batch is nearly as dear as its tokens one by one, so only drafts that are nearly all accepted
  save time; and 6 is the most a batch-invariant backend verifies (a batch of 7: see
  tooltoken._backend). Measured with those kernels (Qwen2.5-1.5B Q4_K_M, 600 tokens of
  context): 1 token 76 ms, 2 tokens 113, 4 tokens 177, 7 tokens 278. On the bench's 20 answers
  drafting 6 tokens came out at 1.52x, 1.57x and 1.58x (three runs); 15 tokens at 1.69x, but
  only with llama.cpp's tiled matmul switched off for the whole process (GGML_CPU_TILED_MM=0: 16
  rows 589 ms, and prompt processing at 40 tokens/s instead of 116); llama-cpp-python's defaults
  (2-gram, 10 tokens), replayed with earlier costs, at 0.98x.
- `GGUFDraftModel(path)`: a second, small GGUF model drafts greedily. It must share the main
  model's vocabulary (the same token ids for the same text; e.g. Qwen2.5-0.5B for Qwen2.5-1.5B):
  `check(main_llm)` compares the two and raises `ConfigError` when they differ. Until `check` has
  run, the first call only checks that the ids fit the draft's vocabulary.

    >>> backend = LlamaBackend(path, draft="prompt-lookup")                # doctest: +SKIP
    >>> backend.llm.draft_model.stats                                     # doctest: +SKIP
    DraftStats(rounds=41, drafted=230, accepted=187)

Both never propose an end-of-turn or other control token, nor anything after one, once `check`
has told them the main model's vocabulary. `stats` counts the drafts whose fate is known: a draft
is judged at the next call, so the last draft of a generation (stopped by a trigger or the end of
the turn) is not counted.

What the draft cannot guarantee on its own (the backend must):
- The same text as plain decoding needs a batched evaluation to give the logits one-token
  evaluation gives. llama.cpp's CPU kernels depend on the batch size ("we use different kernels
  for different batch sizes", ggml-org/llama.cpp#23335): with its default settings Qwen2.5 Q4_K_M
  batches of 4 differ from one token by up to 0.43 and 1 of 20 bench answers changed.
  `LlamaBackend(batch_invariant=True)` (the default with a draft) picks settings under which a
  batch of up to 7 tokens agrees bit for bit; see tooltoken._backend.
- For the same reason the last token the consumer took must be evaluated later with what the
  controller inserts, as plain decoding does, not kept from a draft batch: `drop_unconsumed`.
- llama-cpp-python 0.3.36 sizes `Llama.scores` by the `logits_all` argument, not by the draft,
  so a draft model without `logits_all=True` fails past n_batch (512) tokens of context.
- Drafted tokens are evaluated ahead of the ones the consumer takes; when it stops (a tool-call
  trigger, the end of the turn) they stay in the KV cache until the next `generate` call drops
  what no longer matches. `drop_unconsumed` cuts them at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from llama_cpp.llama_speculative import LlamaDraftModel, LlamaPromptLookupDecoding
from tooltoken.tools import ConfigError, ModelError

from ._cpu import load_llama

__all__ = ["DraftStats", "GGUFDraftModel", "PromptLookup", "drop_unconsumed", "stop_ids"]

# llama.cpp's own speculative example accepts vocabularies of sizes this far apart (Qwen2.5-0.5B
# has 151936 tokens, Qwen2.5-7B 152064); ids past the smaller one are never drafted.
_MAX_VOCAB_DIFFERENCE = 128


@dataclass
class DraftStats:
    rounds: int = 0  # drafts proposed (not empty) whose fate is known
    drafted: int = 0  # tokens in those drafts
    accepted: int = 0  # of those, tokens the model confirmed

    @property
    def acceptance(self) -> float | None:
        return self.accepted / self.drafted if self.drafted else None


class _Counting:
    """Judges the previous draft from the context of the next call.

    `Llama.generate` calls the draft with the context up to the token it just sampled. If the
    previous call saw n tokens and proposed d, the next one sees n + a + 1: the a drafted tokens
    the model confirmed, then the token it sampled itself (a correction, or one past the draft).
    """

    stats: DraftStats
    _pending: tuple[int, int, list[int]] | None = None  # (n, last token seen, draft)

    def _judge(self, ids: npt.NDArray[np.intc]) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        n, last, draft = pending
        a = len(ids) - n - 1
        if not 0 <= a <= len(draft) or int(ids[n - 1]) != last:
            return  # another generation started: this draft's fate is unknown
        if list(ids[n : n + a]) != draft[:a] or (a < len(draft) and int(ids[n + a]) == draft[a]):
            return
        self.stats.rounds += 1
        self.stats.drafted += len(draft)
        self.stats.accepted += a

    def _proposed(self, ids: npt.NDArray[np.intc], draft: list[int]) -> npt.NDArray[np.intc]:
        if draft:
            self._pending = (len(ids), int(ids[-1]), draft)
        return np.array(draft, dtype=np.intc)


def stop_ids(llm: Any) -> frozenset[int]:
    """Tokens a draft never proposes nor runs past: end of generation and control tokens
    (`<|im_end|>`, `<|eot_id|>`, ...), and added tokens that open a tool call (`<tool_call>`)."""
    import llama_cpp

    from ._families import trigger_pattern

    vocab = llm._model.vocab
    trigger = trigger_pattern([])
    out = set()
    for t in range(llm.n_vocab()):
        attr = llama_cpp.llama_vocab_get_attr(vocab, t)
        control = llama_cpp.llama_vocab_is_eog(vocab, t) or attr & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
        opens_call = attr & llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED and trigger.search(llm._model.token_get_text(t))
        if control or opens_call:
            out.add(t)
    return frozenset(out)


def _cut(draft: Sequence[int], stops: frozenset[int], limit: int | None = None) -> list[int]:
    out = []
    for t in draft:
        t = int(t)
        if t in stops or (limit is not None and t >= limit):
            break
        out.append(t)
    return out


class PromptLookup(_Counting, LlamaPromptLookupDecoding):
    """Drafts by copying from the context (prompt-lookup decoding, Saxena 2023).

    The last `max_ngram_size` tokens (down to `min_ngram_size`) are looked up earlier in the
    context, most recent occurrence first; up to `num_pred_tokens` tokens that followed it are
    proposed.

        >>> d = PromptLookup(max_ngram_size=2, min_ngram_size=2, num_pred_tokens=3)
        >>> d(np.array([5, 6, 7, 8, 9, 1, 6, 7], dtype=np.intc)).tolist()
        [8, 9, 1]
        >>> d(np.array([5, 6, 7, 3], dtype=np.intc)).tolist()   # no 2-gram ending in 3 before
        []
    """

    def __init__(self, max_ngram_size: int = 12, num_pred_tokens: int = 6, min_ngram_size: int = 6,
                 recent: bool = True) -> None:
        if not 1 <= min_ngram_size <= max_ngram_size or num_pred_tokens < 1:
            raise ConfigError("prompt lookup needs 1 <= min_ngram_size <= max_ngram_size and num_pred_tokens >= 1")
        super().__init__(max_ngram_size=max_ngram_size, num_pred_tokens=num_pred_tokens)
        self.min_ngram_size = min_ngram_size
        self.recent = recent
        self.stats = DraftStats()
        self.stops: frozenset[int] = frozenset()

    def check(self, main_llm: Any) -> None:
        """Learn the main model's control tokens (any vocabulary fits a copy of its own context)."""
        self.stops = stop_ids(main_llm)

    def find(self, ids: npt.NDArray[np.intc]) -> list[int]:
        n = len(ids)
        for size in range(min(self.max_ngram_size, n - 1), self.min_ngram_size - 1, -1):
            windows = np.lib.stride_tricks.sliding_window_view(ids[:-1], size)  # not the n-gram itself
            hits = np.nonzero(np.all(windows == ids[n - size :], axis=1))[0]
            for start in hits[::-1] if self.recent else hits:
                follow = ids[start + size : start + size + self.num_pred_tokens]
                if len(follow):
                    return _cut(follow, self.stops)
        return []

    def __call__(self, input_ids: npt.NDArray[np.intc], /, **kwargs: Any) -> npt.NDArray[np.intc]:
        self._judge(input_ids)
        return self._proposed(input_ids, self.find(input_ids))


class GGUFDraftModel(_Counting, LlamaDraftModel):
    """A small GGUF model drafting greedily for a bigger one with the same vocabulary.

    `path`: a .gguf file or a model pack name. It drafts up to `num_pred_tokens` tokens and
    stops early where its own top token has probability below `p_min` (a guess the big model
    would likely reject, and on a CPU every rejected token costs). Its context is kept in step
    with the main model's by prefix, so each call evaluates only what is new.
    """

    def __init__(self, path: str | os.PathLike[str], num_pred_tokens: int = 4, *, p_min: float = 0.5,
                 n_ctx: int = 4096, n_threads: int | None = None, llama_kwargs: dict[str, Any] | None = None) -> None:
        import llama_cpp

        from ._models import resolve_model

        if num_pred_tokens < 1 or not 0.0 <= p_min < 1.0:
            raise ConfigError("a draft model needs num_pred_tokens >= 1 and 0 <= p_min < 1")
        self.path = str(resolve_model(os.fspath(path)))
        self.num_pred_tokens = num_pred_tokens
        self.p_min = p_min
        self.stats = DraftStats()
        try:
            self.llm = load_llama(llama_cpp, model_path=self.path, n_ctx=n_ctx,
                                  n_threads=n_threads or os.cpu_count() or 1, verbose=False, **(llama_kwargs or {}))
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp could not load the draft model {self.path}: {exc}") from exc
        self.n_vocab = self.llm.n_vocab()
        self._limit: int | None = None  # ids the main model has too; None until checked
        self.stops: frozenset[int] = frozenset()
        self._logits_at = 0  # context length whose next-token logits the context holds

    def check(self, main_llm: Any) -> None:
        """Raise ConfigError unless the main model tokenizes exactly as this draft does."""
        main, mine = main_llm._model, self.llm._model
        name = os.path.basename(getattr(main_llm, "model_path", "") or "the main model")
        problem = None
        if main.vocab_type() != mine.vocab_type():
            problem = f"tokenizer types differ ({main.vocab_type()} and {mine.vocab_type()})"
        elif abs(main.n_vocab() - mine.n_vocab()) > _MAX_VOCAB_DIFFERENCE:
            problem = f"vocabulary sizes differ ({main.n_vocab()} and {mine.n_vocab()} tokens)"
        elif (main.token_bos(), main.token_eos()) != (mine.token_bos(), mine.token_eos()):
            problem = (f"special tokens differ (BOS/EOS {main.token_bos()}/{main.token_eos()} and "
                       f"{mine.token_bos()}/{mine.token_eos()})")
        else:
            for t in range(min(main.n_vocab(), mine.n_vocab())):
                if main.token_get_text(t) != mine.token_get_text(t):
                    problem = f"token {t} is {main.token_get_text(t)!r} in one and {mine.token_get_text(t)!r} in the other"
                    break
        if problem:
            raise ConfigError(
                f"the draft model {os.path.basename(self.path)} cannot draft for {name}: {problem}. A draft "
                "model must share the main model's vocabulary (same tokenizer: e.g. a smaller model of "
                "the same family); use draft='prompt-lookup' otherwise"
            )
        self._limit = min(main.n_vocab(), mine.n_vocab())
        self.stops = stop_ids(main_llm)

    def __call__(self, input_ids: npt.NDArray[np.intc], /, **kwargs: Any) -> npt.NDArray[np.intc]:
        self._judge(input_ids)
        if self._limit is None and len(input_ids) and int(input_ids.max()) >= self.n_vocab:
            raise ConfigError(
                f"token id {int(input_ids.max())} is outside the vocabulary of the draft model "
                f"{os.path.basename(self.path)} ({self.n_vocab} tokens): a draft model must share the "
                "main model's vocabulary; use draft='prompt-lookup' otherwise"
            )
        if len(input_ids) + self.num_pred_tokens >= self.llm.n_ctx():
            return self._proposed(input_ids, [])
        self._sync(input_ids)
        draft: list[int] = []
        while len(draft) < self.num_pred_tokens:
            logits = np.ctypeslib.as_array(self.llm._ctx.get_logits_ith(-1), shape=(self.n_vocab,))
            token = int(np.argmax(logits))
            p = 1.0 / float(np.sum(np.exp(logits - logits[token])))  # probability of the top token
            if p < self.p_min or token in self.stops or (self._limit is not None and token >= self._limit):
                break
            draft.append(token)
            if len(draft) < self.num_pred_tokens:  # the last one's logits are never needed
                self.llm.eval([token])
                self._logits_at = self.llm.n_tokens
        return self._proposed(input_ids, draft)

    def _sync(self, ids: npt.NDArray[np.intc]) -> None:
        """Bring the draft's context to `ids`, evaluating only the part it does not hold."""
        llm = self.llm
        held = llm.input_ids[: llm.n_tokens]
        m = min(len(held), len(ids))
        differ = np.nonzero(held[:m] != ids[:m])[0]
        keep = int(differ[0]) if len(differ) else m
        if keep == len(ids) and self._logits_at == keep:
            return
        keep = min(keep, len(ids) - 1)  # at least the last token is evaluated, for its logits
        llm.n_tokens = keep  # eval() drops the KV cache past n_tokens
        llm.eval(ids[keep:].tolist())
        self._logits_at = llm.n_tokens


def drop_unconsumed(llm: Any, tokens: Sequence[int], gen: Iterator[int]) -> Iterator[int]:
    """Pass `llm.generate(tokens, ...)`'s tokens through; when the consumer stops (a tool-call
    trigger, the end of the turn), leave the context as plain decoding leaves it: the tokens
    given and those taken, less the last one taken (plain decoding evaluates a token only when
    the next one is asked for). Drafted tokens it never took leave the KV cache at once, and the
    last token is evaluated with whatever the controller inserts next, in the same batch as
    without a draft: llama.cpp's kernels differ with the batch size, so that keeps the text
    identical, not only the tokens."""
    seen = list(tokens)
    taken = 0
    try:
        for token in gen:
            seen.append(token)
            taken += 1
            yield token
    finally:
        gen.close()
        if taken:
            held = llm.input_ids[: llm.n_tokens]
            m = min(len(held), len(seen) - 1)
            differ = np.nonzero(held[:m] != np.asarray(seen[:m], dtype=held.dtype))[0]
            keep = int(differ[0]) if len(differ) else m
            if keep < llm.n_tokens:
                llm.n_tokens = keep
                llm._ctx.kv_cache_seq_rm(-1, keep, -1)
                llm._requires_eval = True  # the logits held are a dropped token's: never sample from them
