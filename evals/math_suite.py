"""The math suite: word problems and arithmetic, answered the way users get them, or closed book.

    $ tooltoken eval math --limit 40                  # the default policy, the default tools
    $ tooltoken eval math --limit 40 --tools off      # closed book: the same items, no tool
    $ tooltoken eval math --category written_test     # the written word problems, held-out half

Items: reasoning-gym's generators `gsm_symbolic` (GSM8K-style word problems with new numbers)
and `basic_arithmetic` (expressions of 2-6 terms of 1-4 digits), created with
`create_dataset(name, size=N, seed=--seed)` (item i depends only on the seed and i, so a larger
`--limit` extends a smaller run); and `written_dev` / `written_test`, the two halves of
evals/data/word_problems.jsonl (multi-step problems with units, rates, ratios, clock times,
averages, rounding, percentages, lcm and gcd; every gold answer checked by a calculator program).
Without `--category` the two generators run.

The agent is built as chat, ask, run and serve build it: the default tools (tools.default_tools)
and the default answer policy (agent/_policy.py), which sends a word problem down the math path.
There is no prompt of the eval's own. With `--tools off` no tool is declared (closed book).
Scoring is exact numeric equality (metrics.numeric_match) of the reply's final number with the
gold answer; a gold clock time (H:MM) is matched against the reply's last clock time.
`--limit N` is per category. reasoning-gym is an optional dependency (`tooltoken[eval]`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tooltoken.tools import ConfigError

from .metrics import extract_number, narrates, parse_number
from .runner import EvalConfig, model_for, model_name, policy_of

__all__ = ["CATEGORIES", "GENERATORS", "WRITTEN", "WRITTEN_FILE", "MathSuite", "generate_items", "written_items"]

GENERATORS = ("gsm_symbolic", "basic_arithmetic")
WRITTEN = ("written_dev", "written_test")
CATEGORIES = GENERATORS + WRITTEN
DEFAULT_SIZE = 50
WRITTEN_FILE = Path(__file__).parent / "data" / "word_problems.jsonl"
_CLOCK = re.compile(r"\b(\d{1,2}):([0-5]\d)\s*(?:([aApP])\.?[mM]\b)?")


def _reasoning_gym() -> Any:
    try:
        import reasoning_gym
    except ImportError:
        raise ConfigError("the math suite needs reasoning-gym: pip install 'tooltoken[eval]'") from None
    return reasoning_gym


def written_items(category: str) -> list[dict[str, Any]]:
    """The written word problems of one half (`written_dev` or `written_test`)."""
    split = category.removeprefix("written_")
    rows = [json.loads(line) for line in WRITTEN_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{"id": r["id"], "category": category, "question": r["question"], "gold": r["gold"]}
            for r in rows if r["split"] == split]


def generate_items(category: str, size: int, seed: int) -> list[dict[str, Any]]:
    """`size` items of one generator: id, category, question, gold answer (a string)."""
    if category in WRITTEN:
        return written_items(category)[:size]
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
        cats = [config.category] if config.category else list(GENERATORS)
        out: list[dict[str, Any]] = []
        for cat in cats:
            out += generate_items(cat, size, config.seed)
        return out

    def _agent(self) -> Any:
        if self._agent_obj is None:
            from tooltoken import Agent
            from tooltoken.tools import default_tools

            cfg = self.config
            options: dict[str, Any] = {"max_tokens": cfg.max_tokens} if cfg.max_tokens else {}
            self._agent_obj = Agent(model=model_for(cfg), tools=default_tools() if cfg.tools else [],
                                    n_ctx=cfg.n_ctx, seed=cfg.seed, grammar=cfg.grammar, **options)
        return self._agent_obj

    def run_item(self, item: dict[str, Any]) -> dict[str, Any]:
        from tooltoken import Final, ToolCall

        inline, final = [], None
        for event in self._agent().stream(item["question"]):
            if isinstance(event, ToolCall) and event.inline:
                inline.append(event.arguments.get("expression", ""))
            final = event
        assert isinstance(final, Final)
        if _CLOCK.fullmatch(item["gold"]):
            shown = _last_clock(final.answer)
            correct = shown == _last_clock(item["gold"])
        else:
            predicted = extract_number(final.answer, item["question"])
            shown = None if predicted is None else _show(predicted)
            correct = predicted is not None and predicted == parse_number(item["gold"])
        return {
            "question": item["question"],
            "gold": item["gold"],
            "predicted": shown,
            "correct": correct,
            "route": final.route,
            "tool_calls": [{c.name: c.arguments} for c in final.tool_calls],
            "inline_calls": len(inline),
            "inline_expressions": inline,
            "tool_errors": sum(1 for r in final.tool_results if r.error),
            "answer": final.answer[-1500:],
            "stop_reason": final.stop_reason,
            "second_look": "second_look_s" in final.timings,  # worked out again closed book (agent/_policy.py doubt)
            "completion_tokens": final.usage.completion_tokens,
            "seconds": round(final.timings.get("total_s", 0.0), 2),
        }

    def metrics(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(records) or 1
        return {
            "answered": round(sum(r.get("predicted") is not None for r in records) / n, 4),
            "used_calculator": round(sum(bool(r.get("tool_calls") or r.get("inline_calls")) for r in records) / n, 4),
            "seconds_per_item": round(sum(r.get("seconds", 0.0) for r in records) / n, 2),
            "narrated": sum(narrates(r.get("answer", "")) for r in records),
            "routes": {route: sum(r.get("route") == route for r in records) for route in ("math", "lookup", "direct", None)},
            "inline_calls_per_item": round(sum(r.get("inline_calls", 0) for r in records) / n, 2),
            "second_looks": sum(bool(r.get("second_look")) for r in records),
        }

    def describe(self) -> dict[str, Any]:
        import importlib.metadata as md

        versions = {}
        for dist in ("reasoning_gym", "llama_cpp_python"):
            try:
                versions[dist.replace("_", "-")] = md.version(dist)
            except md.PackageNotFoundError:
                pass
        return {"model": model_name(self.config.model), "versions": versions,
                "policy": policy_of(self.config)}


def _last_clock(text: str) -> str | None:
    """The last clock time in `text`, as 24-hour H:MM. Lenient, as a reader is: "17:20 pm" is
    17:20 (the calculator's clock_minutes refuses it, rightly for an input)."""
    found = list(_CLOCK.finditer(text))
    if not found:
        return None
    hours, minutes, half = int(found[-1].group(1)), found[-1].group(2), (found[-1].group(3) or "").lower()
    if half:
        hours = hours % 12 + (12 if half == "p" else 0)
    return f"{hours}:{minutes}"

def _show(x: Any) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"
