"""Clock times and durations in the calculator: `9:03 + 2h 35m` is 11:38, `11:38 - 9:03` is 2 h 35 min.

    >>> clock_minutes("9:03 pm"), duration_minutes("2h 35m")
    (Fraction(1263, 1), Fraction(155, 1))

Both are numbers of minutes (exact `Fraction`s), so all the calculator's arithmetic applies;
what this module adds is their *kind*, worked out from the parsed expression by `kind_of`, and
how a value of each kind is written (`format_kind`). The rules are the ones of a wall clock:

    clock ± duration → clock      clock − clock → duration      duration ± duration → duration
    duration × n, n × duration, duration ÷ n → duration          duration ÷ duration → a number

Anything else with a clock time in it (9:00 + 10:00, 2 × 9:00) has no meaning and is refused.
Notation: a clock time is `H:MM`, 24-hour or with am/pm (`9:03`, `21:03`, `9:03 pm`); a
duration is hours (`2h`, `2 hours`, `1.5 hrs`), hours and minutes (`2h 35m`), or minutes
(`35 min`, `40 minutes`; a bare `m` only after hours, so metres are never read as minutes).

Not handled: dates, time zones, seconds and days as units. This layer sits between the
arithmetic (tools/_calc_arith.py, whose CalculatorError it raises) and the evaluator
(tools/_calc_eval.py, which tokenizes the notation and calls `kind_of`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Literal, Optional

from ._calc_arith import CalculatorError, Number

__all__ = ["Kind", "clock_minutes", "duration_minutes", "format_kind", "kind_of"]

Kind = Optional[Literal["clock", "duration"]]
DAY = 24 * 60

_CLOCK = re.compile(r"([0-9]{1,2}):([0-5][0-9])\s*(?:([aApP])\.?[mM]\.?)?")
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(hours?|hrs?|h|minutes?|mins?|m)\b")
_KEEPS_KIND = {"sum", "min", "max", "mean", "average", "abs", "round", "floor", "ceil"}


def clock_minutes(text: str) -> Fraction:
    """Minutes after midnight of `9:03`, `21:03` or `9:03 pm`."""
    m = _CLOCK.fullmatch(text.strip())
    if m is None:
        raise CalculatorError(f"{text!r} is not a clock time (write 9:03, 21:03 or 9:03 pm)")
    hours, minutes, half = int(m.group(1)), int(m.group(2)), (m.group(3) or "").lower()
    if half:
        if not 1 <= hours <= 12:
            raise CalculatorError(f"{text!r}: with am or pm the hour is 1 to 12")
        hours = hours % 12 + (12 if half == "p" else 0)
    elif hours > 24 or (hours == 24 and minutes):
        raise CalculatorError(f"{text!r}: the hour of a clock time is 0 to 24")
    return Fraction(hours * 60 + minutes)


def duration_minutes(text: str) -> Fraction:
    """Minutes in `2h 35m`, `2 hours`, `1.5 hrs` or `40 min`."""
    total = Fraction(0)
    for amount, unit in _PART.findall(text):
        total += Fraction(amount) * (60 if unit.startswith("h") else 1)
    return total


def kind_of(node: ast.AST, names: Mapping[str, Kind]) -> Kind:
    """The kind of the value of parsed expression `node`; `names` gives the kind of each name
    (a literal's placeholder, or a program's earlier step). Refuses what has no meaning."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.UnaryOp):
        kind = kind_of(node.operand, names)
        if kind == "clock" and isinstance(node.op, ast.USub):
            raise CalculatorError("a clock time cannot be negated")
        return kind
    if isinstance(node, ast.Subscript):  # a percentage of a duration is a duration
        return kind_of(node.value, names)
    if isinstance(node, ast.Call):
        kinds = {kind_of(a, names) for a in node.args}
        name = node.func.id if isinstance(node.func, ast.Name) else ""
        return kinds.pop() if len(kinds) == 1 and name in _KEEPS_KIND else None
    if isinstance(node, ast.BinOp):
        return _binary(node.op, kind_of(node.left, names), kind_of(node.right, names))
    return None


def _binary(op: ast.operator, left: Kind, right: Kind) -> Kind:
    if left is None and right is None:
        return None
    pair = (left, right)
    if isinstance(op, ast.Add):
        if pair == ("clock", "clock"):
            raise CalculatorError("two clock times cannot be added (add a duration: 9:03 + 2h 35m)")
        return "clock" if "clock" in pair else "duration"
    if isinstance(op, ast.Sub):
        if pair == ("clock", "clock"):
            return "duration"
        if right == "clock":
            raise CalculatorError("a clock time cannot be taken from a duration or a number")
        return left or "duration"
    if "clock" in pair:
        raise CalculatorError("a clock time can only be added to, or subtracted from (9:03 + 2h, 11:38 - 9:03)")
    if isinstance(op, ast.Mult):
        return "duration" if None in pair else None
    if isinstance(op, (ast.Div, ast.FloorDiv)):
        return "duration" if right is None else None  # 2h / 3 is a duration; 2h / 30 min is a number
    if isinstance(op, ast.Mod):
        return "duration" if left == "duration" else None
    return None


def format_kind(value: Number, kind: Kind, plain: str) -> str:
    """How a value of `kind` is written; `plain` is how it is written as a number."""
    if kind is None or not isinstance(value, Fraction):
        return plain
    if kind == "clock":
        days, minute = divmod(value, DAY)
        hours, minutes = divmod(minute, 60)
        text = f"{int(hours)}:{_minutes(minutes)}"
        if days:
            text += f" ({'+' if days > 0 else ''}{int(days)} day{'s' if abs(days) != 1 else ''})"
        return text
    sign = "-" if value < 0 else ""
    hours, minutes = divmod(abs(value), 60)
    if not hours:
        return f"{sign}{_number(minutes)} min"
    shown = f"{sign}{int(hours)} h" + (f" {_number(minutes)} min" if minutes else "")
    return f"{shown} ({sign}{_number(abs(value))} min)"


def _minutes(minutes: Fraction) -> str:
    whole = int(minutes)
    seconds = (minutes - whole) * 60
    text = f"{whole:02d}"
    return text if not seconds else f"{text}:{int(round(seconds)):02d}"


def _number(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{float(x):.12g}"
