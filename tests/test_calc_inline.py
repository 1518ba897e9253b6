"""The calculator inline: arithmetic the model writes out (`195 × 144 =`) is finished exactly."""

from __future__ import annotations

import pytest

from scripted import ScriptedBackend, chunks
from tooltoken import Agent, Final, TextDelta, ToolCall, ToolResult
from tooltoken.tools._calc_inline import inline_arithmetic
from tooltoken.tools.calculator import calculator

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text, expression, written", [
    ("So he earns 195 × 144 =", "195 × 144", " 28080"),
    ("   -2842 * -5436 = ", "-2842 * -5436", "15449112"),
    ("\\[ 195 \\text{ pounds/day} \\times 144 \\text{ days/year} =", "195 * 144", " 28080"),
    ("415 \\times 336 = 415 \\times (300 + 36) =", "415 * (300 + 36)", " 139440"),
    ("\\frac{400}{1400} =", "((400)/(1400))", " 0.285714285714"),
    ("Step 1: 6.666666666666666 - 4 =", "6.666666666666666 - 4", " 2.666666666667"),
    ("the 12 months, so 12 * 12 =", "12 * 12", " 144"),
    ("Total: $1,000 + 2 =", "1000 + 2", " 1002"),
    ("(56 + -33) - 84 =", "(56 + -33) - 84", " -61"),
    ("2^10 =", "2^10", " 1024"),
    ("so, 12 * 12 =", "12 * 12", " 144"),
    ("   ( -9 - 6 ) - -( -3 * 4 )\n   =", "( -9 - 6 ) - -( -3 * 4 )", " -27"),   # `=` opens the next line
])  # fmt: skip
def test_plain_arithmetic_before_equals_is_finished(text, expression, written):
    assert inline_arithmetic(text) == ({"expression": expression}, written)


@pytest.mark.parametrize("text", [
    "x + 5 - 6 =",         # algebra: the numbers are only part of the left side
    "2x + 3 =",            # glued to a letter
    "√16 + 2 =",           # after a symbol the calculator does not read
    "f(2) * 3 =",          # a function call
    "total = a * b =",     # names
    "5 =",                 # nothing to compute
    "(-3) =",
    "if 3 + 4 ==",         # comparison, not an equation
    "3 + 4 =\n",           # the line ended: the model wrote its own result
    "7 / 0 =",             # the calculator refuses: the model goes on by itself
    "9**9**9**9 =",        # too big: refused at once, never computed
    "(3 + 4 =",            # unbalanced
    "1,2 + 3 =",           # a comma glued to digits: not a separator we can read
    "- 3 * 4 =",           # starts with an operator (a bullet, or the rest of something)
])  # fmt: skip
def test_anything_doubtful_is_left_to_the_model(text):
    assert inline_arithmetic(text) is None


def _agent(scripts, **kw):
    backend = ScriptedBackend(scripts)
    return Agent(backend, tools=[calculator], unsupported_notice=None, **kw), backend


def test_the_exact_value_is_written_into_the_answer_and_the_model_goes_on():
    # the model's own continuation would have been "28320" (Qwen2.5-Coder-1.5B did write that)
    agent, backend = _agent([["He earns ", "195", " ×", " 144", " ="], [" pounds", " a year."]])
    events = list(agent.stream("How much?"))
    final = events[-1]
    assert isinstance(final, Final) and final.stop_reason == "stop"
    assert final.answer == "He earns 195 × 144 = 28080 pounds a year."
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == final.answer
    (call,) = [e for e in events if isinstance(e, ToolCall)]
    (result,) = [e for e in events if isinstance(e, ToolResult)]
    assert call.inline and call.name == "calculator" and call.arguments == {"expression": "195 × 144"}
    assert result.id == call.id and result.content == "28080" and result.source == 0
    assert final.usage.inline_calls == 1 and final.usage.tool_calls == 0 and final.tool_calls == []
    # the second generation continued from a context that ends in the inserted value
    second = backend.requests[1][0]
    assert backend.detokenize(second[-6:]).decode() == " 28080"
    assert final.citations == []


def test_inline_calls_can_be_turned_off_and_never_run_without_tools():
    agent, _ = _agent([["3", " +", " 4", " =", " 8"]], inline_calls=False)
    assert agent.run("?").answer == "3 + 4 = 8"
    agent, _ = _agent([["3", " +", " 4", " =", " 8"]])
    assert agent.run("?", tool_choice="none").answer == "3 + 4 = 8"


def test_an_inline_trigger_that_raises_is_a_warning_not_a_lost_answer():
    from dataclasses import replace

    def broken(text):
        raise RuntimeError("boom")

    backend = ScriptedBackend([["3", " +", " 4", " =", " 7"]])
    final = Agent(backend, tools=[replace(calculator, inline=broken)], unsupported_notice=None).run("?")
    assert final.answer == "3 + 4 = 7" and final.stop_reason == "stop"
    assert any("inline trigger failed" in w for w in final.warnings)


def test_the_number_of_inline_calls_is_bounded():
    step = [", ", "1", " +", " 1", " ="]
    agent, _ = _agent([step, step, step + [" 3"]], max_inline_calls=2)
    final = agent.run("?")
    assert final.usage.inline_calls == 2
    assert final.answer == ", 1 + 1 = 2, 1 + 1 = 2, 1 + 1 = 3"  # the third is the model's own


def test_an_inline_only_tool_is_not_declared_and_still_finishes_the_text():
    backend = ScriptedBackend([["195", " ×", " 144", " ="], [" in all."]])
    agent = Agent(backend, tools=[], inline_tools=[calculator], unsupported_notice=None)
    assert "calculator" not in agent.prompt("How much?")
    final = agent.run("How much?")
    assert final.answer == "195 × 144 = 28080 in all." and final.usage.inline_calls == 1


def test_inline_tools_must_have_an_inline_trigger():
    from tooltoken import ConfigError, tool

    @tool
    def plain(x: int) -> int:
        """No inline trigger."""
        return x

    with pytest.raises(ConfigError, match="inline trigger"):
        Agent(ScriptedBackend([]), inline_tools=[plain])


# --- programs in a fenced block ------------------------------------------------------------

PROGRAM = "```python\ndays = 6 * 2 * 12\npay = 195 * days\n```"


@pytest.mark.parametrize("text", [PROGRAM, PROGRAM + "\n", PROGRAM + "\n\n", "Here:\n```\ndays = 6 * 2 * 12\npay = 195 * days\n```",
                                  "```calc\ndays = 6 * 2 * 12\npay = 195 * days\n```"])
def test_a_fenced_calculator_program_is_run_and_its_values_written_after_it(text):
    arguments, written = inline_arithmetic(text)
    assert arguments == {"expression": "days = 6 * 2 * 12\npay = 195 * days"}
    assert written.lstrip("\n") == "```output\ndays = 144\npay = 28080\n```\n"
    assert written.startswith("\n") != text.endswith("\n")


@pytest.mark.parametrize("text", [
    "```python\ndef pay(days):\n    return 195 * days\n```",          # code, not arithmetic
    "```python\nimport math\nx = math.sqrt(2)\n```",
    "```python\nx = 5\n```",                                           # nothing to compute
    "```python\nprint('hello')\n```",
    "```json\n{\"a\": 1 + 2}\n```",                                    # another language
    "```output\nx = 2 * 3\n```",                                       # the model writing output itself
    "```python\na = 1 + 1\n```\nThen prose - with a dash.\n```",       # an opening fence after prose
    "```python\nx = 2 * 3\n",                                          # not closed yet
])
def test_code_that_is_not_a_calculator_program_is_left_alone(text):
    assert inline_arithmetic(text) is None


def test_a_program_closed_by_split_fence_tokens_is_run_before_the_model_goes_on():
    # Qwen2.5's tokenizer writes a closing fence as "``" + "`\n"; the fence is first held back as
    # a possible ```json tool call, then known to be text
    agent, backend = _agent([["```python\n", "a = 6 * 7\n", "``", "`\n"], ["The answer is 42."]])
    events = list(agent.stream("?"))
    final = events[-1]
    assert final.answer == "```python\na = 6 * 7\n```\n```output\na = 42\n```\nThe answer is 42."
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == final.answer
    (call,) = [e for e in events if isinstance(e, ToolCall)]
    assert call.inline and call.arguments == {"expression": "a = 6 * 7"}
    assert final.usage.inline_calls == 1 and final.tool_calls == [] and final.stop_reason == "stop"
    assert backend.detokenize(backend.requests[1][0][-12:]).decode().endswith("a = 42\n```\n")


def test_a_fenced_tool_call_is_still_a_tool_call():
    call = '{"name": "calculator", "arguments": {"expression": "6 * 7"}}'
    agent, _ = _agent([["``", "`json\n", '{"name": "calculator"'], chunks(call, 4), ["42 [1]."]], policy="plain")
    final = agent.run("?")
    assert [c.name for c in final.tool_calls] == ["calculator"] and final.usage.inline_calls == 0
