"""The token-level seam between the controller and a model.

A backend owns one context (KV cache). `generate(tokens)` continues from the full token list
given; the backend reuses whatever prefix of it is already evaluated and evaluates only the rest,
so the controller can rewind and insert simply by passing a different list.

`LlamaBackend` is llama-cpp-python in-process. Tests use a scripted backend with the same shape.
`generate(..., call=True)` (or a grammar) marks a tool call's body, which `LlamaBackend` samples
greedily unless its `Sampling` says otherwise (see _sampling.py).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, Sequence

from tooltoken.tools import ConfigError, ModelError

from ._grammar import schema_to_gbnf
from ._cpu import load_llama, repack_safe
from ._prompt_cache import MIN_TOKENS, PromptCache, entry_key
from ._sampling import RANDOM_SEED, Sampling


@dataclass
class GenerateStats:
    evaluated: int = 0  # tokens of the given list that had to be evaluated
    reused: int = 0  # tokens of the given list served from the KV cache
    primed: int = 0  # of `reused`: prefix tokens `prime` evaluated on their own just before
    restored: int = 0  # of `reused`: prefix tokens `prime` restored from the prompt cache


class Backend(Protocol):
    """A model at the token level, one context (KV cache) of its own: what `LlamaTurns` drives.
    (A model behind an OpenAI-compatible server is `OpenAIBackend`, driven by `OpenAITurns`.)"""

    name: str
    n_ctx: int
    chat_template: str
    bos_text: str
    eos_text: str
    add_bos: bool

    def tokenize(self, text: str, special: bool) -> list[int]: ...

    def detokenize(self, tokens: list[int]) -> bytes: ...

    def is_eog(self, token: int) -> bool: ...

    def generate(
        self, tokens: list[int], *, grammar: dict[str, Any] | None, stats: GenerateStats, call: bool = False,
        ban: Sequence[int] = (),
    ) -> Iterator[int]:
        """Continue from `tokens` (reusing the evaluated prefix), one sampled token at a time.
        `grammar`: the JSON schema the text must fit; `call`: a call's body (sampled as
        `Sampling.for_call` says); `ban`: tokens never sampled (a declined call's opening)."""
        ...

    def side_logits(self, tokens: list[int], candidates: list[int]) -> list[float]:
        """Evaluate `tokens` on their own and return the next-token logits of `candidates`,
        leaving the answer's KV cache as it was (the call check, Options.call_check)."""
        ...


class LlamaBackend:
    """llama-cpp-python on one GGUF file. Not thread-safe; the Agent serialises access."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        seed: int = Sampling.seed,
        temperature: float = Sampling.temperature,
        top_k: int = Sampling.top_k,
        top_p: float = Sampling.top_p,
        min_p: float = Sampling.min_p,
        repeat_penalty: float = Sampling.repeat_penalty,
        call_greedy: bool = Sampling.call_greedy,
        draft: Any = None,
        batch_invariant: bool | None = None,
        llama_kwargs: dict[str, Any] | None = None,
        sampling: Sampling | None = None,
        prompt_cache: PromptCache | bool | str | os.PathLike[str] | None = True,
    ) -> None:
        """`draft`: None, "prompt-lookup" (drafts copied from the context: answers quote their
        tool results), the path of a small GGUF draft model, or a `LlamaDraftModel`.
        `batch_invariant` (default: on with a draft, off without): llama.cpp settings under which
        a batch of up to `INVARIANT_ROWS` tokens gets the logits one-token decoding gets, bit for
        bit, so a draft cannot change the text (see `invariant_options`). A plain backend with it
        on decodes the same text as one with a draft.
        Numerics for the whole process, where the arguments are not given (CI runs the tests
        under a second configuration with them, so a test that holds on only one llama.cpp kernel
        path fails there): `TOOLTOKEN_THREADS=n` sets `n_threads` (default: all CPUs), and
        `TOOLTOKEN_BATCH_INVARIANT=1` or `0` sets `batch_invariant`.
        The sampling arguments become `self.sampling` (a `Sampling`; replace it to change them), or
        pass one `sampling` object instead.
        `prompt_cache`: where the KV state of prompts' static prefixes is kept between processes
        (_prompt_cache.py): True (the user cache dir), a directory, a `PromptCache`, or False/None
        (off)."""
        self.sampling = sampling or Sampling(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                                             repeat_penalty=repeat_penalty, seed=seed, call_greedy=call_greedy)
        try:
            import llama_cpp
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigError(
                "the in-process backend needs llama-cpp-python: pip install 'tooltoken[llama]'"
            ) from exc
        self._llama_cpp = llama_cpp
        self.path = str(path)
        self.name = os.path.basename(self.path)
        threads, invariant = os.environ.get("TOOLTOKEN_THREADS", ""), os.environ.get("TOOLTOKEN_BATCH_INVARIANT", "")
        if n_threads is None and threads.strip():
            if not threads.strip().isdigit() or int(threads) < 1:
                raise ConfigError(f"TOOLTOKEN_THREADS={threads!r}: give a number of threads, 1 or more")
            n_threads = int(threads)
        if batch_invariant is None and invariant.strip():
            if invariant.strip() not in ("0", "1"):
                raise ConfigError(f"TOOLTOKEN_BATCH_INVARIANT={invariant!r}: give 1 (on) or 0 (off)")
            batch_invariant = invariant.strip() == "1"
        drafter = make_draft(draft)
        self.batch_invariant = drafter is not None if batch_invariant is None else batch_invariant
        # Flash attention everywhere (llama.cpp's attention without it differs with the batch
        # size). A draft also needs logits for every position (llama-cpp-python 0.3.36 sizes its
        # score buffer by logits_all, and fails past n_batch tokens without it).
        options = {"flash_attn": True, **({"logits_all": True} if drafter is not None else {}),
                   **(invariant_options(llama_cpp) if self.batch_invariant else {}), **(llama_kwargs or {})}
        if self.batch_invariant:
            _check_invariant(options, drafter)
        try:
            self.llm = load_llama(
                llama_cpp,
                repack=not self.batch_invariant,
                model_path=self.path,
                n_ctx=n_ctx,
                n_threads=n_threads or max(1, os.cpu_count() or 1),
                seed=_llama_seed(self.sampling.seed),
                verbose=False,
                draft_model=drafter,
                **options,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp could not load {self.path}: {exc}") from exc
        self.n_ctx = self.llm.n_ctx()
        self.repacked = not self.batch_invariant and repack_safe(self.path)  # as load_llama decided
        self.prompt_cache = _prompt_cache(prompt_cache)
        self._cache_base: dict[str, Any] | None = None
        meta = self.llm.metadata
        self.chat_template = meta.get("tokenizer.chat_template", "") or _CHATML
        model = self.llm._model
        self.bos_text = _token_text(model, self.llm.token_bos())
        self.eos_text = _token_text(model, self.llm.token_eos())
        self.add_bos = meta.get("tokenizer.ggml.add_bos_token", "false") == "true"
        self._vocab = llama_cpp.llama_model_get_vocab(model.model)
        self._grammars: dict[str, Any] = {}
        self.lock = threading.RLock()

    def tokenize(self, text: str, special: bool) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def detokenize(self, tokens: list[int]) -> bytes:
        return self.llm.detokenize(tokens, special=True)

    def is_eog(self, token: int) -> bool:
        return bool(self._llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def grammar(self, schema: dict[str, Any]) -> Any:
        """The llama.cpp grammar of `schema` (cached): valid JSON, every string and array bounded
        (`_grammar.schema_to_gbnf`). Fitting it to the call's token budget is the caller's step
        (`_grammar.fit_schema`)."""
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            from llama_cpp.llama_grammar import LlamaGrammar

            gbnf = schema_to_gbnf(schema)
            # llama.cpp returns NULL for a grammar it cannot parse, and sampling with it crashes
            # the process: check here and fail as a Python error instead.
            probe = self._llama_cpp.llama_sampler_init_grammar(self._vocab, gbnf.encode(), b"root")
            if not probe:
                raise ConfigError(f"llama.cpp rejected the call grammar built from {key[:200]}")
            self._llama_cpp.llama_sampler_free(probe)
            if len(self._grammars) > 64:
                self._grammars.clear()
            self._grammars[key] = LlamaGrammar.from_string(gbnf, verbose=False)
        return self._grammars[key]

    def cached_prefix(self, tokens: list[int]) -> int:
        """How many leading tokens of `tokens` the KV cache already holds."""
        llm = self.llm
        n = _common(llm.input_ids[: llm.n_tokens].tolist(), tokens)
        # llama-cpp-python replays one token when the whole list is cached, to refresh logits
        return n - 1 if n == len(tokens) and n > 0 else n

    def generate(
        self, tokens: list[int], *, grammar: dict[str, Any] | None, stats: GenerateStats, call: bool = False,
        ban: Sequence[int] = (),
    ) -> Iterator[int]:
        """`call`: the tokens are a tool call's body (so is anything under a grammar). `ban`:
        tokens never sampled (a call's opening token after the call check dropped a call)."""
        reused = self.cached_prefix(tokens)
        stats.reused += reused
        stats.evaluated += len(tokens) - reused
        # Llama(seed=0) means "random" to llama-cpp-python (`seed or LLAMA_DEFAULT_SEED`), and its
        # sampler is seeded anew at every generate: set the seed itself, every time.
        self.llm.set_seed(_llama_seed(self.sampling.seed))
        extra: dict[str, Any] = {}
        if ban:
            from llama_cpp import LogitsProcessorList

            banned = list(ban)

            def _ban(_ids: Any, logits: Any) -> Any:  # first in the sampler chain: indexed by token id
                logits[banned] = -float("inf")
                return logits

            extra["logits_processor"] = LogitsProcessorList([_ban])
        gen = self.llm.generate(
            tokens,
            **self.sampling.llama_kwargs(call=call or grammar is not None),
            grammar=self.grammar(grammar) if grammar is not None else None,
            **extra,
        )
        if self.llm.draft_model is None:
            return gen
        from ._draft import drop_unconsumed

        return drop_unconsumed(self.llm, tokens, gen)

    def prime(self, prefix: list[int], stats: GenerateStats) -> str | None:
        """Make the KV cache hold `prefix` (a prompt's static part) before the answer's `generate`:
        restored from the prompt cache if an entry fits, else evaluated on its own and saved, so
        a later process restores exactly these bytes (the prefix is the same computation
        whatever question follows it). Returns a warning if the cache could not be used."""
        cache, n = self.prompt_cache, len(prefix)
        if cache is None or n < MIN_TOKENS or n >= self.n_ctx:
            return None
        llm = self.llm
        held = _common(llm.input_ids[: llm.n_tokens].tolist(), prefix)
        if held >= n:
            return None  # this process holds it already
        key = self._entry_key(prefix)
        state = cache.get(key, prefix) if key else None
        if state is not None and self._restore(prefix, state):
            stats.restored += n
            return cache.take_warning()
        llm.n_tokens = held
        try:
            llm.eval(prefix[held:])
        except Exception as exc:  # noqa: BLE001 -- the answer's generate evaluates it (and reports)
            llm.n_tokens = 0
            return f"prompt cache: the prefix could not be evaluated on its own ({exc})"
        stats.primed += n - held
        if key:
            saved = self._seq_state()
            if saved is not None:
                cache.put(key, prefix, saved)
        return cache.take_warning()

    def _entry_key(self, prefix: list[int]) -> str | None:
        """The prompt cache's key for `prefix` on this model, build and settings (None: the
        model file cannot be hashed, so nothing is cached)."""
        if self._cache_base is None:
            from ._models import file_sha256

            params = self.llm.context_params
            try:
                model = file_sha256(self.path)
            except OSError:
                model = ""
            self._cache_base = {
                "model": model,
                "build": f"{getattr(self._llama_cpp, '__version__', '?')} "
                         f"{self._llama_cpp.llama_print_system_info().decode('utf-8', 'replace')}",
                "settings": {
                    "n_ctx": self.n_ctx, "n_batch": params.n_batch, "n_ubatch": params.n_ubatch,
                    "n_threads": params.n_threads, "n_threads_batch": params.n_threads_batch,
                    "type_k": params.type_k, "type_v": params.type_v,
                    "flash_attn": getattr(params, "flash_attn_type", getattr(params, "flash_attn", None)),
                    "rope": [params.rope_freq_base, params.rope_freq_scale],
                    "swa_full": getattr(params, "swa_full", None), "repacked": self.repacked,
                    "batch_invariant": self.batch_invariant, "add_bos": self.add_bos,
                },
            }
        base = self._cache_base
        if not base["model"]:
            return None
        return entry_key(model_sha256=base["model"], tokens=prefix, build=base["build"], settings=base["settings"])

    def _seq_state(self) -> bytes | None:
        """llama.cpp's state of sequence 0 (its KV cells), or None if it would not give it."""
        import ctypes

        lib, ctx = self._llama_cpp, self.llm._ctx.ctx
        size = lib.llama_state_seq_get_size(ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        if size == 0 or lib.llama_state_seq_get_data(ctx, buf, size, 0) != size:
            return None
        return bytes(buf)

    def _restore(self, prefix: list[int], state: bytes) -> bool:
        """Load `state` as sequence 0 holding `prefix`; on failure the KV cache is emptied."""
        import ctypes

        llm, lib = self.llm, self._llama_cpp
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        buf = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if lib.llama_state_seq_set_data(llm._ctx.ctx, buf, len(state), 0) != len(state):
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            llm.n_tokens = 0
            return False
        llm.input_ids[: len(prefix)] = prefix
        llm.n_tokens = len(prefix)
        llm._requires_eval = True  # no logits with it: the answer's generate evaluates on from here
        return True

    def side_logits(self, tokens: list[int], candidates: list[int]) -> list[float]:
        """Evaluate `tokens` on their own and return the next-token logits of `candidates`,
        leaving the KV cache as it was: the answer's sequence is saved (only its used cells,
        ~28 KB a token for Qwen2.5-1.5B) and put back, so the answer goes on without re-evaluation."""
        import ctypes

        import numpy as np

        llm, lib = self.llm, self._llama_cpp
        ctx, held = llm._ctx.ctx, llm.n_tokens
        ids = llm.input_ids[:held].copy()
        size = lib.llama_state_seq_get_size(ctx, 0)
        saved = (ctypes.c_uint8 * size)()
        if lib.llama_state_seq_get_data(ctx, saved, size, 0) != size:
            raise ModelError("llama.cpp could not save the KV cache for the call check")
        try:
            llm.n_tokens = 0
            llm.eval(tokens)
            row = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),))
            return [float(row[c]) for c in candidates]
        finally:
            llm._ctx.kv_cache_seq_rm(0, 0, -1)
            restored = lib.llama_state_seq_set_data(ctx, saved, size, 0) == size
            llm.n_tokens = held if restored else 0  # if not, the next generate evaluates everything
            llm.input_ids[:held] = ids
            llm._requires_eval = True  # the logits are the probe's: never sample from them


# Batch invariance. llama.cpp's CPU kernels depend on the number of tokens in a batch, so a draft
# verified in one batch can get logits a few tenths off one-token decoding's and flip a near tie
# (ggml-org/llama.cpp#23335). Measured on Qwen2.5-1.5B Q4_K_M, 2 threads, logits of a batch of k
# against the same tokens one at a time (0.3.36's vendored llama.cpp):
# - repacked weights (the default "extra buffer types": Q4_K as q4_K_8x8) use a gemm kernel from
#   4 rows: off by 0.43 from k=4;
# - without repacking, the tiled K-quant matmul (ggml-cpu/tiled) takes over from 8 rows: off by
#   0.41 from k=8; below 8 rows every row is the same dot product as one token's;
# - with an F16/F32 KV cache one-token decoding splits flash attention over the threads once the
#   cache view reaches 512 cells, and a batch does not: off by 0.41-0.58 from k=2 with 2 threads;
#   a Q8_0 cache takes the unsplit kernel both ways.
# With no repacking, a Q8_0 KV cache and at most 7 rows, k = 2..7 agreed bit for bit with one
# token (contexts of 100-700 tokens, 1 and 2 threads). Prompt processing keeps the tiled kernel
# (8+ rows) and runs about as fast as with repacking; one-token decoding is ~10% slower.
# Kernels differ by CPU (AVX-512, ARM): `tooltoken bench invariance` measures all this anew.
INVARIANT_ROWS = 7



def invariant_options(llama_cpp: Any) -> dict[str, Any]:
    return {"type_k": llama_cpp.GGML_TYPE_Q8_0, "type_v": llama_cpp.GGML_TYPE_Q8_0}  # flash attention is on already


def _check_invariant(options: dict[str, Any], drafter: Any) -> None:
    if not options.get("flash_attn"):
        raise ConfigError("batch_invariant needs flash_attn=True (llama.cpp's other attention depends on the batch size)")
    if {options.get("type_k"), options.get("type_v")} & {0, 1}:  # GGML_TYPE_F32, GGML_TYPE_F16
        raise ConfigError("batch_invariant needs a quantized KV cache (type_k/type_v such as Q8_0): with F16 or F32 "
                          "llama.cpp splits one token's attention across threads and a batch's not")
    if drafter is None:
        return
    n = getattr(drafter, "num_pred_tokens", None)
    if not isinstance(n, int) or n > INVARIANT_ROWS - 1:
        raise ConfigError(
            f"a draft of {n if isinstance(n, int) else 'unbounded'} tokens is verified in batches where llama.cpp's "
            f"kernels differ from one-token decoding: draft at most {INVARIANT_ROWS - 1} tokens "
            "(num_pred_tokens), or pass batch_invariant=False and accept that greedy text may change"
        )


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    """The length of the common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _prompt_cache(setting: Any) -> PromptCache | None:
    if setting is None or setting is False:
        return None
    if isinstance(setting, PromptCache):
        return setting
    if setting is True:
        return PromptCache()
    if isinstance(setting, (str, os.PathLike)):
        return PromptCache(setting)
    raise ConfigError(f"prompt_cache must be True, False, a directory or a PromptCache, not {setting!r}")


def _llama_seed(seed: int) -> int:
    return 0xFFFFFFFF if seed == RANDOM_SEED else seed  # llama.cpp's LLAMA_DEFAULT_SEED: random


def make_draft(draft: Any) -> Any:
    if draft is None or not isinstance(draft, str):
        return draft
    from ._draft import GGUFDraftModel, PromptLookup

    if draft == "prompt-lookup":  # parameters measured on grounded answers: see _draft.py
        return PromptLookup()
    return GGUFDraftModel(draft)  # a small GGUF model (path or pack name) drafting for the big one


def _token_text(model: Any, token: int) -> str:
    if token < 0:
        return ""
    try:
        return model.token_get_text(token)
    except Exception:  # some vocabularies have no text for BOS/EOS
        return ""


# Used when a GGUF carries no chat template.
_CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
