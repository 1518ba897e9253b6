"""Calculator programs (tools/_calc_program.py): named steps, exact, bounded, never run as code."""

from __future__ import annotations

from fractions import Fraction

import pytest

from tooltoken.tools.calculator import CalculatorError, calculate
from tooltoken.tools._calc_program import MAX_STEPS, is_program, run_program


def test_each_step_is_shown_and_later_steps_use_earlier_names():
    assert calculate("days = 6 * 2 * 12\npay = 195 * days") == "days = 144\npay = 28080"
    assert calculate("hours = 3 * 4; hours / 5") == "hours = 12\n12/5 = 2.4"
    assert [(s.name, s.value) for s in run_program("a = 1/3\nb = a * 3")] == [("a", Fraction(1, 3)), ("b", Fraction(1))]


@pytest.mark.parametrize("text, shown", [
    ("# costs\nbread = 6  # per loaf\nanswer = 10 * bread", "bread = 6\nanswer = 60"),
    ('total = 2 * 3\nprint("Answer:", total)', "total = 6\n6"),
    ("total = 2 * 3\nprint(f'Total: {total}')", "total = 6\n6"),
    ("x = 7 / 2\nint(x)", "x = 7/2 = 3.5\n3"),
    ("\n\nx = 2 ** 10\n\n", "x = 1024"),
    ("bananas = 90\nbananas -= 35\nbananas *= 1 + 1", "bananas = 90\nbananas = 55\nbananas = 110"),
    ("t = 17\nt //= 5; t %= 2; t **= 3; t += 1; t /= 4", "t = 17\nt = 3\nt = 1\nt = 1\nt = 2\nt = 1/2 = 0.5"),
])
def test_what_a_coder_model_writes_around_arithmetic_is_read_past(text, shown):
    assert calculate(text) == shown


@pytest.mark.parametrize("text, message", [
    ("a = 3\nb = a *", "line 2 (b = a *)"),
    ("x = 1\nimport os", "unknown name 'import'"),
    ("y = x + 1", "unknown name 'x'"),
    ("a = 1\nz += a", "line 2 (z += a): unknown name 'z'"),
    ("a = 1\nsqrt += a", "sqrt is a function"),
    ("a = 1\na == 1", "unexpected character '='"),
    ("of = 3", "'of' is a word of the notation"),
    ("t = 8 * 15\nn = t // 15\nif t % 15 != 0:\n    n += 1", "line 3 (if t % 15 != 0:): `if` is code, and a program here is "
     "steps of arithmetic: round up with ceil(a / b)"),
    ("s = 0\nfor x in [1, 2]: s += x", "`for` is code"),
    ("a = 1\ndef f(x): return x", "`def` is code"),
    ("a = 1\nb = a.real", "unexpected character '.'"),
    ("a = 1\nprint('x', a, a)", "line 2"),
    ("a = 1\nf = lambda: 2", "unknown name 'lambda'"),
    ("a = 2\nb = __import__", "unexpected character '_'"),
    ("a = 9**9\nb = a**a", "more than 10,000 digits"),
    ("a = 1\n" * (MAX_STEPS + 1), "too many steps"),
    ("a = 1\n" + "#" * 5000, "program too long"),
])
def test_bad_programs_are_refused_with_the_line_that_failed(text, message):
    with pytest.raises(CalculatorError, match=None) as info:
        calculate(text)
    assert message in str(info.value)


@pytest.mark.parametrize("text, shown", [
    # a step named after a function keeps the function: calls and names are looked up apart
    ("gcd = gcd(12, 18)\nlcm = 12 * 18 / gcd\ngcd(lcm, 8)", "gcd = 6\nlcm = 36\n4"),
    ("sum = 3 + 4\ntotal = sum([sum, 1])", "sum = 7\ntotal = 8"),
    # "use 3.14 for pi", as Python would read it
    ("pi = 3.14\narea = pi * 10**2", "pi = 157/50 = 3.14\narea = 314"),
])
def test_a_step_may_be_named_after_a_function_or_a_constant(text, shown):
    assert calculate(text) == shown


def test_the_work_budget_is_one_for_the_whole_program():
    # each line alone is allowed; together they are too expensive
    line = "x = 3**20000/7**11000 + 3**20000/7**11000"
    calculate(line)
    with pytest.raises(CalculatorError, match="too expensive"):
        calculate("\n".join([line] * 12))


def test_one_expression_is_not_a_program():
    assert not is_program("1 + 2") and not is_program("a == 3") and not is_program("")
    assert is_program("a = 3") and is_program("1 + 2; 3") and is_program("1\n2")
    assert calculate("1 + 2") == "3"
