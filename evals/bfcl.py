"""The BFCL suite: Berkeley Function Calling Leaderboard v4, non-live Python categories.

    $ tooltoken eval bfcl --category simple_python --limit 50

Data: the questions, function docs and possible answers ship as JSON in the PyPI wheel
`bfcl-eval==2026.3.23`. On first use it is fetched with `pip download --no-deps` (hash-checked,
never installed: its own dependencies are heavy and pinned) and the ten JSON files of the five
categories are copied into `<cache>/evals/bfcl-eval-2026.3.23/`.

Each item becomes one `Agent.run`: the item's functions are declared as tools by JSON schema,
converted as BFCL converts them for function-calling models (`dict` → `object`, `float` →
`number` with "This is a float type value." appended to its description, and "Note that the
provided function is in Python 3 syntax." appended to each function's), plus
`additionalProperties: false` so that the call grammar admits only declared parameters. BFCL
names may hold dots (`math.factorial`); tool names may not, so dots and other characters become
`_` and the calls are mapped back before scoring. A tool "runs" by acknowledging the call; the
model may go on to make more calls (parallel categories) and then answers. The calls it made, in
order, are the output scored by `bfcl_checker` (AST matching); `irrelevance` passes when the
model made no call at all.

BFCL scores a model's first response: in Qwen's native form, the turn before any tool result
comes back, holding one call or several (`\n<tool_call>` after `</tool_call>`). The controller
writes every call of a turn before it runs them, so the answer is stopped as soon as the first
turn's calls run (stop reason `cancelled`), in every category, and those calls are the output.
(Left to go on, the model reads the acknowledgement and sometimes repeats a call, which BFCL
would never see.)

The controller's call check (Options.call_check) is on, as it is for every caller's own tools
under the default answer policy: a call the model chose to make is judged by the model before it
runs and is not made below 1.05 yes-no log-odds (`--call-check X` sets another threshold,
`--call-check off` turns it off), or
when it names a function that does not exist; the model then answers in words. docs/results.md
gives the figures with and without it. `--drop-unstated on`
(Options.drop_unstated) leaves out of each call the optional string values the request never
states; the record keeps the call as run, `raw_calls` as written, and a warning per value.

The agent is built with the users' defaults (Options: max_tokens, max_call_tokens, max_tool_calls;
the default answer policy, under which a question that brings its own functions takes the direct
path with those functions declared); `--max-tokens` overrides max_tokens. `--limit N` takes N
items per category, spread evenly over the file.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from functools import cache
from pathlib import Path
from typing import Any

from tooltoken.tools import ConfigError

from ._wheel import extract_from_wheel
from .bfcl_checker import check
from .runner import EvalConfig, model_for, model_name, policy_of, spread

__all__ = ["CATEGORIES", "BFCLSuite", "bfcl_data_dir", "load_category", "to_tool_schema", "tool_names"]

WHEEL = "bfcl-eval==2026.3.23"
WHEEL_SHA256 = "3bb6dfa5f0c68ad403c9ec50b00db2bb3b4cc9b38ab1ff33f48fe30d853d3a0a"
CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
ACK = "Done."  # what every BFCL tool returns: the call is what is scored, not its result

_GORILLA_TO_JSON = {
    "integer": "integer", "number": "number", "float": "number", "string": "string", "boolean": "boolean",
    "bool": "boolean", "array": "array", "list": "array", "dict": "object", "object": "object",
    "tuple": "array", "any": "string",
}  # fmt: skip
_BAD_CHARS = re.compile(r"[^A-Za-z0-9_]")


def _members() -> dict[str, str]:
    out = {}
    for cat in CATEGORIES:
        out[f"bfcl_eval/data/BFCL_v4_{cat}.json"] = f"BFCL_v4_{cat}.json"
        if cat != "irrelevance":
            out[f"bfcl_eval/data/possible_answer/BFCL_v4_{cat}.json"] = f"possible_answer_BFCL_v4_{cat}.json"
    return out


def bfcl_data_dir(cache: str | Path | None = None) -> Path:
    """The folder of BFCL's JSON files in the cache, fetched on first use."""
    from tooltoken.tools.corpus import cache_dir

    root = Path(cache) if cache is not None else cache_dir()
    return extract_from_wheel(WHEEL, WHEEL_SHA256, _members(), root / "evals" / WHEEL.replace("==", "-"))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@cache
def _load(category: str, cache: str | None) -> tuple[dict[str, Any], ...]:
    folder = bfcl_data_dir(cache)
    questions = _read_jsonl(folder / f"BFCL_v4_{category}.json")
    answers: dict[str, Any] = {}
    if category != "irrelevance":
        answers = {a["id"]: a["ground_truth"] for a in _read_jsonl(folder / f"possible_answer_BFCL_v4_{category}.json")}
    items = []
    for q in questions:
        items.append({
            "id": q["id"],
            "category": category,
            "messages": q["question"][0],  # non-live categories are single-turn
            "functions": q["function"],
            "answer": answers.get(q["id"]),
        })
    return tuple(items)


def load_category(category: str, cache: str | Path | None = None) -> list[dict[str, Any]]:
    """The items of one category: id, category, messages, functions, answer (None for irrelevance)."""
    if category not in CATEGORIES:
        raise ConfigError(f"unknown BFCL category {category!r} (valid categories: {', '.join(CATEGORIES)})")
    return [copy.deepcopy(it) for it in _load(category, None if cache is None else str(cache))]


def tool_names(functions: list[dict[str, Any]]) -> dict[str, str]:
    """Valid tool name -> BFCL name. `math.factorial` -> `math_factorial`; clashes get `_2`, `_3`."""
    out: dict[str, str] = {}
    for f in functions:
        base = _BAD_CHARS.sub("_", f["name"])[:60] or "f"
        if not re.match(r"[A-Za-z_]", base):
            base = "_" + base[:59]
        name, n = base, 2
        while name in out:
            name, n = f"{base}_{n}", n + 1
        out[name] = f["name"]
    return out


def _cast(schema: dict[str, Any]) -> dict[str, Any]:
    """One property's schema in JSON-schema types, recursively (BFCL's `_cast_to_openai_type`)."""
    s = dict(schema)
    declared = s.get("type")
    if declared == "float":
        s["format"] = "float"
        s["description"] = (s.get("description") or "") + " This is a float type value."
    s["type"] = _GORILLA_TO_JSON.get(declared, "string") if declared else "string"
    if "properties" in s and isinstance(s["properties"], dict):
        s["properties"] = {k: _cast(v) for k, v in s["properties"].items()}
    if isinstance(s.get("items"), dict):
        s["items"] = _cast(s["items"])
    if "required" in s and not isinstance(s["required"], list):
        del s["required"]  # a flag some docs put on a property; JSON schema wants a list on objects
    return s


def to_tool_schema(doc: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of a BFCL function's parameters, as the model and the call grammar see it."""
    params = doc.get("parameters") or {}
    props = {k: _cast(v) for k, v in (params.get("properties") or {}).items()}
    required = [r for r in params.get("required", []) if r in props]
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def _description(doc: dict[str, Any]) -> str:
    return (doc.get("description") or "").rstrip() + " Note that the provided function is in Python 3 syntax."


class BFCLSuite:
    name = "bfcl"

    def __init__(self, config: EvalConfig) -> None:
        if not config.tools:
            raise ConfigError("bfcl measures tool calls; --tools off has no meaning there (use --grammar off "
                              "to compare free calls with constrained ones)")
        if config.category is not None and config.category not in CATEGORIES:
            raise ConfigError(f"unknown BFCL category {config.category!r} (valid categories: {', '.join(CATEGORIES)})")
        self.config = config

    def items(self, config: EvalConfig) -> list[dict[str, Any]]:
        cats = [config.category] if config.category else list(CATEGORIES)
        out: list[dict[str, Any]] = []
        for cat in cats:
            out += spread(load_category(cat), config.limit)
        return out

    def _agent(self, tools: list) -> Any:
        from tooltoken import Agent

        cfg = self.config
        overrides: dict[str, Any] = {"max_tokens": cfg.max_tokens} if cfg.max_tokens else {}
        if cfg.call_check is not None:  # else the policy's (Options.call_check "auto")
            overrides["call_check"] = None if cfg.call_check == "off" else cfg.call_check
        return Agent(model=model_for(cfg), tools=tools, n_ctx=cfg.n_ctx, seed=cfg.seed, grammar=cfg.grammar,
                     drop_unstated=cfg.drop_unstated, **overrides)

    def run_item(self, item: dict[str, Any]) -> dict[str, Any]:
        from tooltoken import Final, Tool

        names = tool_names(item["functions"])
        back = dict(names)
        by_name = {f["name"]: f for f in item["functions"]}

        cancel = threading.Event()

        def acknowledge(**_: Any) -> str:
            cancel.set()  # the calls of the first turn run: nothing after them is scored
            return ACK

        tools = [Tool.from_schema(n, _description(by_name[orig]), to_tool_schema(by_name[orig]), acknowledge)
                 for n, orig in names.items()]
        final = None
        for event in self._agent(tools).stream(item["messages"], cancel=cancel):
            final = event
        assert isinstance(final, Final)
        # a call the controller could not read at all has no name: like BFCL's failed decode, no call
        calls = [{back.get(c.name, c.name): c.arguments} for c in final.tool_calls if c.name]
        declared = set(back.values())
        record: dict[str, Any] = {"tool_calls": calls,
                                  "invented_calls": sum(1 for c in calls if next(iter(c)) not in declared)}
        if item["category"] == "irrelevance":
            record.update(correct=not calls, error="" if not calls else "the model called a function",
                          error_type="" if not calls else "irrelevance:called")
        else:
            result = check(item["category"], item["functions"], calls, item["answer"])
            record.update(correct=result.valid, error=result.error, error_type=result.error_type)
        record.update(
            answer=final.answer[:400],
            stop_reason=final.stop_reason,
            raw_calls=[c.raw[:400] for c in final.tool_calls],
            call_checks=[round(c.check, 3) for c in final.tool_calls if c.check is not None],
            warnings=final.warnings,
            completion_tokens=final.usage.completion_tokens,
            prompt_tokens=final.usage.prompt_tokens,
        )
        return record

    def metrics(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        errors: dict[str, int] = {}
        for r in records:
            if not r.get("correct"):
                kind = r.get("error_type") or "unknown"
                errors[kind] = errors.get(kind, 0) + 1
        out: dict[str, Any] = {}
        irrelevance = [r for r in records if r.get("category") == "irrelevance"]
        if irrelevance:  # the stricter BFCL rule counts calls to invented names too; they run nothing
            out["no_declared_call"] = round(sum(len(r["tool_calls"]) == r.get("invented_calls", 0)
                                                for r in irrelevance) / len(irrelevance), 4)
        if errors:
            out["errors"] = dict(sorted(errors.items(), key=lambda kv: -kv[1]))
        return out

    def describe(self) -> dict[str, Any]:
        import importlib.metadata as md

        versions = {"bfcl-eval (data)": WHEEL.split("==")[1]}
        try:
            versions["llama-cpp-python"] = md.version("llama_cpp_python")
        except md.PackageNotFoundError:
            pass
        from tooltoken._policy import CALL_CHECK

        check = CALL_CHECK if self.config.call_check is None else self.config.call_check
        said = "no call check" if check == "off" else f"call check at {check:g}"
        return {"model": model_name(self.config.model), "versions": versions,
                "policy": f"{policy_of(self.config)}: the direct path, the item's functions declared, {said}"}
