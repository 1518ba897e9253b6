"""Shared fixtures, and the checks every test on a real model makes.

A real model's words depend on llama.cpp's kernels (the CPU's instruction set, the number of
threads, the batch sizes, `batch_invariant`): a near tie in the logits goes one way on one
machine and the other way on the next. So the integration tests assert what holds whatever
the words (`check_final`): a call was made to the named tool, its arguments validate, its
result was inserted, the KV cache was reused, the citations resolve; and values against a
reference (`arithmetic`: Python's own arithmetic on fractions). A test asserts exact text only
where it first makes that text stable (batch-invariant settings on both sides, or tokens it
wrote itself). CI runs the integration tests twice, under two numerics configurations
(`TOOLTOKEN_THREADS`, `TOOLTOKEN_BATCH_INVARIANT`: see .ci/run), so a test that holds on one
kernel path only fails there.
"""

from __future__ import annotations

import ast
import operator
import os
import re
from fractions import Fraction
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

NUMERICS = ("TOOLTOKEN_THREADS", "TOOLTOKEN_BATCH_INVARIANT")


def pytest_report_header(config):
    """The numerics configuration and the CPU's vector extensions, at the top of every run."""
    knobs = ", ".join(f"{k}={os.environ.get(k, '(unset)')}" for k in NUMERICS)
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            line = next((s for s in f if s.startswith("flags")), "")
        flags = " ".join(sorted({w for w in line.split() if w.startswith(("avx", "amx", "f16c", "fma"))}))
    except OSError:
        pass
    return f"numerics: {knobs}; cpu: {flags or 'unknown'}; {os.cpu_count()} cpus"


@pytest.fixture(scope="session")
def smollm2_path():
    """The real small model (installed by `tooltoken models pull smollm2-135m`)."""
    pytest.importorskip("llama_cpp")
    from tooltoken._models import resolve_model

    return str(resolve_model("smollm2-135m"))


# -- the reference for the calculator -----------------------------------------------------------
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow}


def arithmetic(expression: str, names: dict[str, Fraction] | None = None) -> Fraction | None:
    """`expression` evaluated exactly by Python (numbers, + - * / ^ and parentheses, `names`),
    or None when it is anything else (functions, percentages, ...): the reference oracle the
    calculator's values on a real model are checked against."""
    text = expression.replace("×", "*").replace("÷", "/").replace("·", "*").replace("−", "-").replace("^", "**")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # thousands separators
    if not re.fullmatch(r"[\w\s+\-*/().]+", text):
        return None

    def ev(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return Fraction(str(node.value))
        if isinstance(node, ast.Name) and names and node.id in names:
            return names[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            value = ev(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and (right.denominator != 1 or abs(right) > 64):
                raise ValueError("not a small whole power")
            return _OPS[type(node.op)](left, right)
        raise ValueError(f"not plain arithmetic: {ast.dump(node)}")

    try:
        return ev(ast.parse(text.strip(), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError):
        return None


def program(text: str) -> str | None:
    """The ```output block the calculator writes after a program of `name = expression` lines,
    computed by `arithmetic`; None if a line is not that."""
    names: dict[str, Fraction] = {}
    out = []
    for line in text.strip().splitlines():
        name, eq, expression = line.partition("=")
        value = arithmetic(expression, names) if eq and name.strip().isidentifier() else None
        if value is None or value.denominator != 1:
            return None
        names[name.strip()] = value
        out.append(f"{name.strip()} = {value}")
    return "```output\n" + "\n".join(out) + "\n```" if out else None


def check_calculator_result(call: dict[str, Any], result: dict[str, Any]) -> None:
    """A calculator result holds the exact value of the expression the model wrote, whatever it was."""
    value = arithmetic(call["arguments"]["expression"])
    if value is None:  # something the reference does not read: the result is at least an answer
        assert result["content"], result
    elif value.denominator == 1:
        assert (result["content"], result["error"]) == (str(value), False), (call, result)
    else:
        assert result["content"].startswith(f"{value.numerator}/{value.denominator}"), (call, result)


def check_inline(events: list[Any]) -> None:
    """Every inline use of the calculator wrote the exact value of what the model wrote before it."""
    from tooltoken import ToolCall, ToolResult

    for call, result in zip(events, events[1:]):
        if not (isinstance(call, ToolCall) and call.inline):
            continue
        assert isinstance(result, ToolResult) and result.id == call.id, (call, result)
        expression = call.arguments["expression"]
        if "\n" in expression or re.match(r"\s*\w+\s*=", expression):  # a program: each step's value
            expected = program(expression)
            assert expected is None or result.content.strip() == expected, (expression, result.content)
            continue
        value = arithmetic(expression)
        if value is not None and value.denominator == 1:
            assert result.content == str(value), (expression, result.content)
        elif value is not None:
            assert float(result.content) == pytest.approx(float(value), rel=1e-9), (expression, result.content)


def check_final(final: Any, tools: list[Any], *, forced: list[str] = (), fresh: bool = False) -> dict[str, Any]:
    """Assert what an answer on a real model must satisfy whatever words the model chose; returns
    the answer as a dict (`final` is a `Final` or its `to_dict()`, as `tooltoken ask --json` prints).

    - the first calls are to the `forced` tools, in order; every call whose result is not an
      error, and every forced call, names a tool and its arguments validate against its schema;
    - each call has its result, numbered [1], [2], ... in order; with the exact prompt
      (`show_prompt`), each result's text is in the context the model went on from;
    - the KV cache was reused: after the prompt, llama.cpp evaluated only what the controller
      wrote (inserted tokens: scaffolding, calls in canonical form, results) plus at most one
      sampled token per stretch of decoding (the last one, evaluated when the next stretch
      starts): bounded here by the calls' tokens, plus one per inline use and one for the end.
      `fresh`: the model's cache was empty (a new process), so the whole prompt was evaluated
      (or its static prefix restored from the prompt cache);
    - citations resolve: a verified [n] names the n-th result, which did not fail; an unverified
      one says why; every [n] in the answer was checked.
    """
    d = final.to_dict() if hasattr(final, "to_dict") else final
    by_name = {t.name: t for t in tools}
    calls = [c for c in d["tool_calls"] if not c.get("inline")]
    results = [r for r in d["tool_results"] if r["source"]]  # inline uses have no [n]
    names = [c["name"] for c in calls]
    assert names[: len(forced)] == list(forced), (names, d["stop_reason"], d["message"])
    assert [r["id"] for r in results] == [c["id"] for c in calls][: len(results)]
    assert len(results) == len(calls) or d["stop_reason"] not in ("stop", "length"), d
    assert [r["source"] for r in results] == list(range(1, len(results) + 1))
    for k, (c, r) in enumerate(zip(calls, results)):
        if k < len(forced) or not r["error"]:
            assert c["name"] in by_name, (c, r)
            by_name[c["name"]].validate(c["arguments"])  # raises ToolArgumentError if not
        if d.get("prompt"):
            assert f"[{r['source']}] {r['name'] or 'tool'}" in d["prompt"] and r["content"] in d["prompt"], r
    u = d["usage"]
    assert u["tool_calls"] == len(calls)
    assert u["prompt_tokens_evaluated"] - u["prompt_tokens"] <= (
        u["inserted_tokens"] + u["call_tokens"] + u["inline_calls"] + 1), u
    assert u["prompt_tokens_restored"] <= u["tokens_reused"], u
    if fresh:  # every prompt token was evaluated, or its prefix restored from the prompt cache
        assert u["prompt_tokens_evaluated"] + u["prompt_tokens_restored"] >= u["prompt_tokens"], u
    for c in d["citations"]:
        if c["verified"]:
            assert 1 <= c["marker"] <= len(results), c
            r = results[c["marker"] - 1]
            assert not r["error"] and c["tool"] == r["name"], (c, r)
        else:
            assert c["reason"], c
    markers = {int(m) for m in re.findall(r"\[(\d{1,3})\]", d["answer"])}
    assert markers <= {c["marker"] for c in d["citations"]}, (markers, d["citations"])
    return d


@pytest.fixture(scope="session")
def invariants():
    """The checks above, for tests on a real model (`invariants.final(...)`, ...)."""

    class Checks:
        final = staticmethod(check_final)
        calculator = staticmethod(check_calculator_result)
        inline = staticmethod(check_inline)
        arithmetic = staticmethod(arithmetic)
        program = staticmethod(program)

    return Checks
