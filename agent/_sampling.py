"""How the in-process model picks each token: llama.cpp's sampler settings, greedy by default.

    >>> Sampling(temperature=0.8, top_p=0.9).llama_kwargs()
    {'temp': 0.8, 'top_k': 40, 'top_p': 0.9, 'min_p': 0.05, 'repeat_penalty': 1.0}
    >>> Sampling(temperature=0.8).llama_kwargs(call=True)  # a tool call's body: greedy
    {'temp': 0.0, 'top_k': 1, 'top_p': 1.0, 'min_p': 0.0, 'repeat_penalty': 1.0}
    >>> Sampling(top_p=0)
    Traceback (most recent call last):
    ...
    tooltoken._errors.ConfigError: top_p must be in (0, 1] (1: no top-p cut), got 0

The defaults are llama.cpp's (top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1.0) except the
temperature: 0, greedy, so that the same question gives the same answer. Tool calls are written
greedily whatever the temperature (`call_greedy=True`): a call is a lookup, not prose, and the
model's most likely name and arguments are the ones to run. `call_greedy=False` samples calls
with the same settings as the text.

The seed matters only above temperature 0. llama-cpp-python seeds a new sampler at every
generation, so an answer with tool calls is reproducible too; -1 asks llama.cpp for a random
seed each time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from tooltoken.tools import ConfigError

__all__ = ["Sampling", "check_sampling"]

RANDOM_SEED = -1
MAX_SEED = 2**32 - 2  # 2**32 - 1 is llama.cpp's "random" (LLAMA_DEFAULT_SEED)


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0  # 0: greedy, the most likely token every time
    top_k: int = 40  # keep the k most likely tokens (0: no cut)
    top_p: float = 0.95  # keep the most likely tokens up to this probability mass (1: no cut)
    min_p: float = 0.05  # drop tokens less likely than min_p times the most likely one (0: no cut)
    repeat_penalty: float = 1.0  # divide the logits of recently seen tokens by this (1: none)
    seed: int = 0  # -1: random
    call_greedy: bool = True  # tool-call bodies greedy whatever the temperature

    def __post_init__(self) -> None:
        check_sampling(**{f.name: getattr(self, f.name) for f in fields(self)})

    def for_call(self) -> Sampling:
        """The settings a tool call's body is sampled with. Greedy calls also drop the repeat
        penalty: JSON repeats its quotes and braces, and a penalty would push the call off them."""
        return replace(self, temperature=0.0, repeat_penalty=1.0) if self.call_greedy else self

    def llama_kwargs(self, call: bool = False) -> dict[str, Any]:
        """Keyword arguments for llama-cpp-python's `Llama.generate` (the seed is set apart)."""
        s = self.for_call() if call else self
        if s.temperature == 0:  # llama.cpp's greedy sampler; no cut changes the most likely token
            return {"temp": 0.0, "top_k": 1, "top_p": 1.0, "min_p": 0.0, "repeat_penalty": s.repeat_penalty}
        return {"temp": float(s.temperature), "top_k": s.top_k, "top_p": float(s.top_p), "min_p": float(s.min_p),
                "repeat_penalty": float(s.repeat_penalty)}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_RULES = {
    "temperature": (lambda v: _number(v) and v >= 0, "a number >= 0 (0: greedy)"),
    "top_k": (lambda v: _integer(v) and v >= 0, "an integer >= 0 (0: no top-k cut)"),
    "top_p": (lambda v: _number(v) and 0 < v <= 1, "in (0, 1] (1: no top-p cut)"),
    "min_p": (lambda v: _number(v) and 0 <= v <= 1, "in [0, 1] (0: no min-p cut)"),
    "repeat_penalty": (lambda v: _number(v) and v > 0, "a number > 0 (1: no penalty)"),
    "seed": (lambda v: _integer(v) and (v == RANDOM_SEED or 0 <= v <= MAX_SEED),
             f"an integer from 0 to {MAX_SEED}, or -1 (random)"),
    "call_greedy": (lambda v: isinstance(v, bool), "True or False"),
}


def check_sampling(**values: Any) -> None:
    """Raise ConfigError for the first value out of range; None means "not set" and passes."""
    for name, value in values.items():
        if name not in _RULES:
            raise ConfigError(f"unknown sampling setting {name!r} (valid: {', '.join(_RULES)})")
        ok, want = _RULES[name]
        if value is not None and not ok(value):
            raise ConfigError(f"{name} must be {want}, got {value!r}")
