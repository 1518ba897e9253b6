"""The math suite: word problems and arithmetic from reasoning-gym, with the calculator or closed book.

    $ tooltoken eval math --limit 40               # calculator available
    $ tooltoken eval math --limit 40 --tools off   # closed book: the same items, no tool

Items come from reasoning-gym's generators `gsm_symbolic` (GSM8K-style word problems with new
numbers) and `basic_arithmetic` (expressions of 2-6 terms of 1-4 digits), created with
`create_dataset(name, size=N, seed=--seed)`. Item i depends only on the seed and i, so a run with
a larger `--limit` extends a smaller one and every run with the same seed sees the same items.

Closed book, the model is asked to work step by step and to end with `Answer: <number>`. With
tools, it is asked to write the calculation as a short program of named steps in a ```python
block (Program-aided LMs, Gao et al. 2022); when the block closes, the calculator runs it
(arithmetic only, exact: tools/_calc_program.py, never Python) and writes every step's value
after it in a ```output block, and the model goes on (tools/_calc_inline.py). The calculator is
not declared to the model; it works inline, as Toolformer's did. How this prompt was chosen, and
what did worse, is in docs/results.md ("Math prompts tried").
Scoring is exact numeric equality (metrics.numeric_match) of the reply's final number with the
generator's answer. `--limit N` is per generator; `--category` picks one generator.

Defaults: `max_tokens` 400. reasoning-gym is an optional dependency (`tooltoken[eval]`).
"""

from __future__ import annotations

from typing import Any

from tooltoken.tools import ConfigError

from .metrics import extract_number, parse_number
from .runner import EvalConfig, model_for, model_name

__all__ = ["CATEGORIES", "MathSuite", "generate_items"]

CATEGORIES = ("gsm_symbolic", "basic_arithmetic")
DEFAULT_SIZE = 50
DEFAULT_MAX_TOKENS = 400
SYSTEM = ("You are a careful math assistant. Solve the problem step by step. "
          "End your reply with a last line of the form 'Answer: <number>'.")
SYSTEM_TOOLS = ("You are a careful math assistant with a calculator. Write the calculation as a short "
                "Python program in a ```python block: one assignment per line, plain arithmetic only "
                "(no loops, no functions, no imports), the last line `answer = ...`. Write only the "
                "program: the calculator runs it and shows every value.")


def _reasoning_gym() -> Any:
    try:
        import reasoning_gym
    except ImportError:
        raise ConfigError("the math suite needs reasoning-gym: pip install 'tooltoken[eval]'") from None
    return reasoning_gym


def generate_items(category: str, size: int, seed: int) -> list[dict[str, Any]]:
    """`size` items of one generator: id, category, question, gold answer (a string)."""
    if category not in CATEGORIES:
        raise ConfigError(f"unknown math category {category!r} (valid categories: {', '.join(CATEGORIES)})")
    rg = _reasoning_gym()
    data = rg.create_dataset(category, size=size, seed=seed)
    return [
        {"id": f"{category}_{seed}_{i}", "category": category, "question": entry["question"],
         "gold": str(entry["answer"])}
        for i, entry in enumerate(data)
    ]


class MathSuite:
    name = "math"

    def __init__(self, config: EvalConfig) -> None:
        if config.category is not None and config.category not in CATEGORIES:
            raise ConfigError(f"unknown math category {config.category!r} (valid categories: {', '.join(CATEGORIES)})")
        self.config = config
        self._agent_obj: Any = None

    def items(self, config: EvalConfig) -> list[dict[str, Any]]:
        size = config.limit if config.limit is not None else DEFAULT_SIZE
        cats = [config.category] if config.category else list(CATEGORIES)
        out: list[dict[str, Any]] = []
        for cat in cats:
            out += generate_items(cat, size, config.seed)
        return out

    def _agent(self) -> Any:
        if self._agent_obj is None:
            from tooltoken import Agent
            from tooltoken.tools.calculator import calculator

            cfg = self.config
            self._agent_obj = Agent(
                model=model_for(cfg), inline_tools=[calculator] if cfg.tools else [], n_ctx=cfg.n_ctx,
                seed=cfg.seed, system=SYSTEM_TOOLS if cfg.tools else SYSTEM, grammar=cfg.grammar, max_tokens=cfg.max_tokens or DEFAULT_MAX_TOKENS,
            )
        return self._agent_obj

    def run_item(self, item: dict[str, Any]) -> dict[str, Any]:
        from tooltoken import Final, ToolCall

        inline, final = [], None
        for event in self._agent().stream(item["question"]):
            if isinstance(event, ToolCall) and event.inline:
                inline.append(event.arguments.get("expression", ""))
            final = event
        assert isinstance(final, Final)
        predicted = extract_number(final.answer)
        gold = parse_number(item["gold"])
        return {
            "question": item["question"],
            "gold": item["gold"],
            "predicted": None if predicted is None else _show(predicted),
            "correct": predicted is not None and predicted == gold,
            "tool_calls": [{c.name: c.arguments} for c in final.tool_calls],
            "inline_calls": len(inline),
            "inline_expressions": inline,
            "tool_errors": sum(1 for r in final.tool_results if r.error),
            "answer": final.answer[-1500:],
            "stop_reason": final.stop_reason,
            "completion_tokens": final.usage.completion_tokens,
        }

    def metrics(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(records) or 1
        return {
            "answered": round(sum(r.get("predicted") is not None for r in records) / n, 4),
            "used_calculator": round(sum(bool(r.get("tool_calls") or r.get("inline_calls")) for r in records) / n, 4),
            "inline_calls_per_item": round(sum(r.get("inline_calls", 0) for r in records) / n, 2),
        }

    def describe(self) -> dict[str, Any]:
        import importlib.metadata as md

        versions = {}
        for dist in ("reasoning_gym", "llama_cpp_python"):
            try:
                versions[dist.replace("_", "-")] = md.version(dist)
            except md.PackageNotFoundError:
                pass
        return {"model": model_name(self.config.model), "versions": versions}


def _show(x: Any) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"
