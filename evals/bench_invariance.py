"""`tooltoken bench invariance`: does a batch get the logits one token gets, and what does it cost?

    >>> bench_invariance()                                                 # doctest: +SKIP
    {'model': 'qwen2.5-coder-1.5b-instruct-q4_k_m.gguf', 'n_threads': 2, 'default': {...},
     'batch_invariant': {'max_logit_diff': {'2': 0.0, ..., '7': 0.0, '8': 0.5933}, ...}}

Speculative decoding keeps the text of plain greedy decoding only if llama.cpp computes each row
of a draft batch as it computes one token. Its CPU kernels are chosen by batch size and by CPU
(AVX2, AVX-512, ARM differ), so this measures it on the machine at hand, for llama.cpp's default
settings and for `LlamaBackend(batch_invariant=True)`, loaded one after the other:
- max_logit_diff[k]: the largest difference between the logits of k tokens evaluated in one batch
  and the same tokens evaluated one at a time, after `context` tokens (0.0: bit for bit);
- prefill_tokens_per_s: a 512-token batch; decode_tokens_per_s: 64 tokens one at a time (best of
  `repeats`).
A draft batch holds up to 7 tokens (see tooltoken._backend.INVARIANT_ROWS).
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["bench_invariance"]

_TEXT = " ".join(
    f"Entry {i}: the {('red', 'green', 'blue', 'amber')[i % 4]} crate in aisle {i % 13} holds {i * 7} parts, "
    f"shipped on day {i * 3 % 29}." for i in range(120)
)


def bench_invariance(model: str | None = None, *, context: int = 700, repeats: int = 2,
                     n_threads: int | None = None) -> dict[str, Any]:
    from tooltoken import LlamaBackend
    from tooltoken._models import resolve_model
    from tooltoken.tools import ConfigError

    if context < 1 or repeats < 1:
        raise ConfigError("context and repeats must be at least 1")
    path = str(resolve_model(model))
    out: dict[str, Any] = {"context": context}
    for name, invariant in (("default", False), ("batch_invariant", True)):
        backend = LlamaBackend(path, n_ctx=max(2048, context + 600), n_threads=n_threads,
                               batch_invariant=invariant, llama_kwargs={"logits_all": True})
        try:
            tokens = backend.tokenize(_TEXT, special=False)
            if len(tokens) < max(context + 9, 576):
                raise ConfigError(f"the bench text is {len(tokens)} tokens; context must be at most {len(tokens) - 9}")
            out["model"], out["n_threads"] = backend.name, backend.llm.n_threads
            out[name] = _measure(backend.llm, tokens, context, repeats)
        finally:
            backend.llm.close()
    return out


def _measure(llm: Any, tokens: list[int], context: int, repeats: int) -> dict[str, Any]:
    import numpy as np

    def rewind(n: int) -> None:
        llm.n_tokens = n
        llm._ctx.kv_cache_seq_rm(-1, n, -1)

    llm.eval(tokens[:context])
    start, follow = llm.n_tokens, tokens[context : context + 9]
    one = []
    for t in follow:
        llm.eval([t])
        one.append(np.array(llm.scores[llm.n_tokens - 1]))
    diff = {}
    for k in range(2, len(follow) + 1):
        rewind(start)
        llm.eval(follow[:k])
        diff[str(k)] = max(float(np.abs(llm.scores[start + i] - one[i]).max()) for i in range(k))  # unrounded
    prefill = decode = 0.0
    for _ in range(repeats):
        rewind(0)
        t = time.perf_counter()
        llm.eval(tokens[:512])
        prefill = max(prefill, 512 / (time.perf_counter() - t))
        t = time.perf_counter()
        for token in tokens[512:576]:
            llm.eval([token])
        decode = max(decode, 64 / (time.perf_counter() - t))
    return {"max_logit_diff": diff, "prefill_tokens_per_s": round(prefill, 1), "decode_tokens_per_s": round(decode, 1)}
