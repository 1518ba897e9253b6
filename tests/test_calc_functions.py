"""The calculator's word-problem functions (sum, mean, mod, gcd, lcm, comb, perm, factorial,
percent) and its clock times and durations: exact, and bounded before any work is done."""

from __future__ import annotations

import math
import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tooltoken.tools.calculator import CalculatorError, calculate, evaluate

pytestmark = pytest.mark.unit

ints = st.integers(min_value=-10**6, max_value=10**6)
naturals = st.integers(min_value=0, max_value=300)


@given(st.lists(ints, min_size=1, max_size=20))
def test_sum_and_mean_are_exact(xs: list[int]) -> None:
    args = ", ".join(map(str, xs))
    assert evaluate(f"sum({args})") == sum(xs)
    assert evaluate(f"mean({args})") == Fraction(sum(xs), len(xs))
    assert evaluate(f"average({args})") == Fraction(sum(xs), len(xs))


@given(ints, ints.filter(bool))
def test_mod_and_intdiv_match_the_operators(a: int, b: int) -> None:
    assert evaluate(f"mod({a}, {b})") == evaluate(f"{a} % ({b})") == a % b
    assert evaluate(f"intdiv({a}, {b})") == evaluate(f"{a} // ({b})") == a // b


@given(st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=8))
def test_gcd_and_lcm(xs: list[int]) -> None:
    args = ", ".join(map(str, xs))
    assert evaluate(f"gcd({args})") == math.gcd(*xs)
    assert evaluate(f"lcm({args})") == math.lcm(*xs)


@given(naturals, naturals)
def test_comb_perm_factorial(n: int, k: int) -> None:
    assert evaluate(f"comb({n}, {k})") == math.comb(n, k)
    assert evaluate(f"perm({n}, {k})") == math.perm(n, k)
    assert evaluate(f"factorial({n})") == math.factorial(n)


@given(st.integers(min_value=1, max_value=10**6), st.integers(min_value=1, max_value=10**6))
def test_percent(part: int, whole: int) -> None:
    assert evaluate(f"percent({part}, {whole})") == Fraction(part * 100, whole)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("factorial(5000)", "more than 10,000 digits"),
        ("factorial(10**9)", "more than 10,000 digits"),
        ("comb(10**6, 5 * 10**5)", "more than 10,000 digits"),
        ("perm(10**7, 10**6)", "more than 10,000 digits"),
        ("factorial(-1)", "not negative"),
        ("factorial(2.5)", "whole numbers"),
        ("gcd(1/2, 3)", "whole numbers"),
        ("lcm(" + ", ".join(["99999999999999999999"] * 40) + ", " + ", ".join(str(p) for p in range(10**6, 10**6 + 3000, 7)) + ")", ""),
        ("mod(1, 0)", "division by zero"),
        ("intdiv(1, 0)", "division by zero"),
        ("percent(1, 0)", "division by zero"),
        ("mean()", "at least 1"),
    ],
)
def test_bounds_and_errors(expression: str, message: str) -> None:
    started = time.perf_counter()
    try:
        calculate(expression)
    except CalculatorError as exc:
        assert message in str(exc)
    else:
        assert message == ""  # only the long lcm may succeed, within the limits
    assert time.perf_counter() - started < 5  # refused before the work, not after it


@pytest.mark.parametrize(
    ("expression", "shown"),
    [
        ("9:03 + 2h 35m", "11:38"),
        ("11:38 - 9:03", "2 h 35 min (155 min)"),
        ("9:30 pm + 3 hours", "0:30 (+1 day)"),
        ("10:15 am - 45 min", "9:30"),
        ("12:00 am + 90 minutes", "1:30"),
        ("12:05 pm - 10 min", "11:55"),
        ("1.5 hours + 20 minutes", "1 h 50 min (110 min)"),
        ("3 * 40 min", "2 h (120 min)"),
        ("(2h 35m) / 5 min", "31"),
        ("2h / 4", "30 min"),
        ("7:45 - 8:10", "-25 min"),
        ("sum(20 min, 35 min, 1h)", "1 h 55 min (115 min)"),
        ("17% of 2400", "408"),
        ("ceil(158 / 12)", "14"),
    ],
)
def test_clock_times_and_durations(expression: str, shown: str) -> None:
    assert calculate(expression) == shown


def test_a_program_carries_kinds_through_its_steps() -> None:
    program = "start = 9:03\nride = 2h 35m\narrive = start + ride\nlate = arrive - 11:00"
    assert calculate(program) == "start = 9:03\nride = 2 h 35 min (155 min)\narrive = 11:38\nlate = 38 min"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("9:00 + 10:00", "two clock times cannot be added"),
        ("2 * 9:00", "can only be added to"),
        ("2h - 9:00", "cannot be taken from"),
        ("13:00 pm", "the hour is 1 to 12"),
        ("25:00", "0 to 24"),
        ("-9:00", "cannot be negated"),
    ],
)
def test_times_without_meaning_are_refused(expression: str, message: str) -> None:
    with pytest.raises(CalculatorError, match=message):
        calculate(expression)


def test_metres_are_not_minutes() -> None:
    with pytest.raises(CalculatorError):
        calculate("10 m * 3")


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=23), st.integers(min_value=0, max_value=59),
       st.integers(min_value=0, max_value=10**4))
def test_clock_plus_minutes_is_the_wall_clock(h: int, m: int, add: int) -> None:
    total = h * 60 + m + add
    days, minute = divmod(total, 24 * 60)
    expected = f"{minute // 60}:{minute % 60:02d}" + (f" (+{days} day{'s' if days != 1 else ''})" if days else "")
    assert calculate(f"{h}:{m:02d} + {add} min") == expected


@given(st.lists(ints, min_size=1, max_size=30))
def test_lists_go_into_the_aggregates(xs: list[int]) -> None:
    listed = "[" + ", ".join(map(str, xs)) + "]"
    assert evaluate(f"sum({listed})") == sum(xs)
    assert evaluate(f"mean({listed})") == Fraction(sum(xs), len(xs))
    assert evaluate(f"min({listed})") == min(xs) and evaluate(f"max({listed})") == max(xs)
    assert evaluate(f"len({listed})") == len(xs)


def test_a_program_may_name_a_list_and_use_the_math_module() -> None:
    from tooltoken.tools._calc_inline import inline_worked

    program = "scores = [145, 162, 138]\nneeded = 4 * 150 - sum(scores)\nboxes = math.ceil(158 / 12)"
    assert calculate(program) == "scores = [145, 162, 138]\nneeded = 155\nboxes = 14"
    # on the math path a program may import the math module; elsewhere an import marks code
    _, shown = inline_worked(f"```python\nimport math\n{program}\n```\n")
    assert shown == "```output\nscores = [145, 162, 138]\nneeded = 155\nboxes = 14\n```\n"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("[1, 2] + 3", "a list only goes into"),
        ("sqrt([4])", "takes numbers, not a list"),
        ("[[1]]", "lists cannot hold lists"),
        ("sum([])", "empty list"),
        ("[1, 2][0]", "not allowed"),
        ("math.system(1)", "unknown name 'math'"),
        ("import os", "unknown name"),
    ],
)
def test_lists_are_bounded_and_only_aggregated(expression: str, message: str) -> None:
    with pytest.raises(CalculatorError, match=message):
        calculate(expression)
