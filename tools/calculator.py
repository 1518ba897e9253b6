"""An exact, bounded calculator that never runs the text it is given.

    >>> calculate("1234 * 5678")
    '7006652'
    >>> calculate("7/3")
    '7/3 = 2.333333333333'
    >>> calculate("17% of 2400")
    '408'
    >>> calculate("sqrt(2)")
    '1.4142135623731'

How it works: a small tokenizer accepts only numbers, the known names, operators, parentheses and
commas (anything else, such as quotes, dots after names, brackets or `lambda`'s colon, is refused
right there); number literals are swapped for placeholders that hold exact `Fraction`s; `ast`
parses the result, and a walker evaluates only an allowlist of node types. Nothing is ever
passed to `eval`, `exec`, numexpr or sympy.

Notation, decided here:
- `×` and `·` multiply, `÷` divides, `−` is minus, and `^` is power (there is no bitwise xor, so
  `2^10` = 1024, as people and small models write it).
- `x%` means x/100 when `%` follows a number or `)` and comes before the end, `)`, `,`, `of`
  or another operator: `17% of 2400` = 408, `2400 * 17%` = 408, `100 + 10%` = 100.1 (not
  110: write `100 * (1 + 10%)`). Otherwise `%` is the remainder: `7 % 3` = 1. So `10 % -3`
  reads as 10% minus 3; write `10 % (-3)` for the remainder.
- Commas only separate function arguments: `1,234` is refused (no thousands separators).
- Functions: sqrt, log (natural, or `log(x, base)`), log2, log10, exp, sin, cos, tan (radians),
  abs, round, min, max, floor, ceil, int; for word problems sum, mean (or average), mod, intdiv,
  gcd, lcm, comb, perm, a bounded factorial, and percent(part, whole); constants pi and e.
- Lists of numbers (`scores = [145, 162, 138]`, at most 1,000) go into sum, mean, average, min,
  max, len, gcd and lcm, and nowhere else; `math.ceil(x)` is ceil(x).
- Clock times and durations (tools/_calc_time.py): `9:03 + 2h 35m` = 11:38, `11:38 - 9:03` =
  2 h 35 min; values are minutes, and the result is written as the kind it is.

Exactness: + − × ÷ // % and integer powers stay `Fraction`s; sqrt of a perfect square, abs,
round, floor, ceil, min, max and every word-problem function stay exact too. Everything transcendental (and a fractional
power) is a float, and so is anything computed from one.

Bounds, checked before the work is done so that a refusal is immediate: 1,000 characters of
input, 200 levels of nesting, and no integer (numerator or denominator) past 10,000 digits
(factorial, comb and perm estimate their result's size from lgamma before computing it);
a power's size is estimated from bit lengths before it is computed (`9**9**9`, `2**(2**64)`),
and operations on very large numbers draw on a small work budget (about six operations on two
10,000-digit fractions), so no expression runs for more than a few tens of milliseconds.
Results over 120 digits are shown rounded, with their digit count.

Not handled (refused with a CalculatorError, never run): complex numbers, units, comparisons,
bitwise operators, strings, and names other than the functions, constants and a program's steps.

The layers, each importing only those below it (tests/test_calc_layers.py checks there is no
circle):
- tools/_calc_format.py: how a value is written (exact, with a decimal beside a fraction);
- tools/_calc_arith.py: CalculatorError, exact bounded operators, the functions and constants;
- tools/_calc_time.py: clock times and durations (their kinds, and how each is written);
- tools/_calc_eval.py: one expression's text to a value (tokenizer allowlist, AST walker,
  input bounds and the work budget);
- tools/_calc_program.py: several named steps (`days = 6 * 2 * 12`), one budget for them all;
- tools/_calc_inline.py: arithmetic or a fenced program at the end of the model's answer;
- this module: `calculate` and the `calculator` tool, which compose them.
Only this module declares the tool (its name, description and schema); it does no arithmetic.
"""

from __future__ import annotations

from dataclasses import replace

# The bounds, Number and ToolError are not used here: they stay importable from this module,
# where callers have always found them (`from tooltoken.tools.calculator import MAX_CHARS`).
from ._calc_arith import MAX_DIGITS, CalculatorError, Number  # noqa: F401
from ._calc_eval import MAX_CHARS, MAX_DEPTH, MAX_WORK, evaluate, evaluate_typed  # noqa: F401
from ._calc_format import format_number
from ._calc_time import format_kind
from ._calc_inline import FENCE, OUTPUT, REWRITE, inline_arithmetic, inline_worked
from ._calc_program import format_program, is_program, run_program
from ._errors import ToolError  # noqa: F401
from ._tool import tool

__all__ = ["FENCE", "OUTPUT", "REWRITE", "CalculatorError", "calculate", "calculator", "evaluate", "worked_calculator"]


def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression exactly and return the result as text.

    expression: one arithmetic expression, or several lines of named steps ("name = expression"; later lines use earlier names)
    """
    if not isinstance(expression, str):
        raise CalculatorError("the expression must be a string")
    if is_program(expression):
        return format_program(run_program(expression))
    value, kind = evaluate_typed(expression)
    return format_kind(value, kind, format_number(value))


# The description names the notation, never example numbers: a small model copies examples
# into calls that have nothing to do with them (a factual question answered by "17% of 2400").
calculator = tool(
    calculate,
    name="calculator",
    description=(
        "Exact calculator for arithmetic with the numbers of the question. Operators + - * / "
        "// % ** (or ^) and parentheses; percentages as 'p% of x'; functions sqrt, log, exp, "
        "sin, cos, tan, abs, round, floor, ceil, min, max, sum, mean, mod, gcd, lcm, comb, perm, "
        "factorial, percent(part, whole); constants pi and e; clock times H:MM (or with am/pm) "
        "and durations like Nh Mm or N min. Several steps may be given one per line as "
        "'name = expression'. Not for questions without numbers to compute."
    ),
)
calculator.inline = inline_arithmetic  # arithmetic written out in the answer is finished exactly

# The calculator of an answer asked to work as a program (the math path, agent/_policy.py): a
# program it cannot run gets the error back in its output block, so the model can write it again.
worked_calculator = replace(calculator, inline=inline_worked)
