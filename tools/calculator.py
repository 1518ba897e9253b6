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
  abs, round, min, max, floor, ceil; constants pi and e.

Exactness: + − × ÷ // % and integer powers stay `Fraction`s; sqrt of a perfect square, abs,
round, floor, ceil, min and max stay exact too. Everything transcendental (and a fractional
power) is a float, and so is anything computed from one.

Bounds, checked before the work is done so that a refusal is immediate: 1,000 characters of
input, 200 levels of nesting, and no integer (numerator or denominator) past 10,000 digits;
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
- tools/_calc_eval.py: one expression's text to a value (tokenizer allowlist, AST walker,
  input bounds and the work budget);
- tools/_calc_program.py: several named steps (`days = 6 * 2 * 12`), one budget for them all;
- tools/_calc_inline.py: arithmetic or a fenced program at the end of the model's answer;
- this module: `calculate` and the `calculator` tool, which compose them.
Only this module declares the tool (its name, description and schema); it does no arithmetic.
"""

from __future__ import annotations

# The bounds, Number and ToolError are not used here: they stay importable from this module,
# where callers have always found them (`from tooltoken.tools.calculator import MAX_CHARS`).
from ._calc_arith import MAX_DIGITS, CalculatorError, Number  # noqa: F401
from ._calc_eval import MAX_CHARS, MAX_DEPTH, MAX_WORK, evaluate  # noqa: F401
from ._calc_format import format_number
from ._calc_inline import inline_arithmetic
from ._calc_program import format_program, is_program, run_program
from ._errors import ToolError  # noqa: F401
from ._tool import tool

__all__ = ["CalculatorError", "calculate", "calculator", "evaluate"]


def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression exactly and return the result as text.

    expression: arithmetic such as "1234 * 5678", "(3 + 4) / 7^2", "17% of 2400" or "sqrt(2)"; or a few lines of named steps, such as "days = 6 * 2 * 12" then "pay = 195 * days"
    """
    if not isinstance(expression, str):
        raise CalculatorError("the expression must be a string")
    if is_program(expression):
        return format_program(run_program(expression))
    return format_number(evaluate(expression))


calculator = tool(
    calculate,
    name="calculator",
    description=(
        "Exact calculator. Give one arithmetic expression; get the exact result (fractions are "
        "also shown as decimals). Supports + - * / // % ** (or ^), parentheses, percentages "
        "('17% of 2400', '2400 * 17%'), sqrt, log, exp, sin, cos, tan, abs, round, min, max, "
        "floor, ceil, int, pi and e. Several steps may be given one per line as 'name = expression'; "
        "later lines use earlier names. Use it for any arithmetic instead of computing in your head."
    ),
)
calculator.inline = inline_arithmetic  # arithmetic written out in the answer is finished exactly
