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
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping
from fractions import Fraction

from ._calc_format import format_number
from ._calc_inline import inline_arithmetic
from ._calc_program import format_program, is_program, run_program
from ._errors import ToolError
from ._tool import tool

__all__ = ["CalculatorError", "calculate", "calculator", "evaluate"]

Number = Fraction | float

MAX_CHARS = 1000
MAX_DEPTH = 200
MAX_DIGITS = 10_000
_LIMIT = 10**MAX_DIGITS  # the smallest integer with MAX_DIGITS + 1 digits
_SAFE_BITS = _LIMIT.bit_length() - 1  # any integer this short has at most MAX_DIGITS digits
MAX_WORK = 6.0


class CalculatorError(ToolError):
    """The expression is not allowed, malformed, or has no finite value."""


_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<number>(?:[0-9](?:_?[0-9])*(?:\.(?:[0-9](?:_?[0-9])*)?)?|\.[0-9](?:_?[0-9])*)(?:[eE][+-]?[0-9]+)?)
      | (?P<name>[A-Za-z][A-Za-z0-9_]*)
      | (?P<op>\*\*|//|[-+*/%^(),×·÷−])""",
    re.VERBOSE,
)
_SPELLING = {"×": "*", "·": "*", "÷": "/", "−": "-", "^": "**"}
_PCT = "_pct"  # user names may not start with "_", so these markers cannot be forged
_BINARY_OPS = {"+", "-", "*", "/", "//", "%", "**"}

_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}


def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression exactly and return the result as text.

    expression: arithmetic such as "1234 * 5678", "(3 + 4) / 7^2", "17% of 2400" or "sqrt(2)"; or a few lines of named steps, such as "days = 6 * 2 * 12" then "pay = 195 * days"
    """
    if not isinstance(expression, str):
        raise CalculatorError("the expression must be a string")
    if is_program(expression):
        return format_program(run_program(expression))
    return format_number(evaluate(expression))


def evaluate(expression: str, variables: Mapping[str, Number] | None = None, *, _work: list[float] | None = None) -> Number:
    """Evaluate `expression` to a `Fraction` (exact) or a `float` (transcendental); see the
    module docstring for the notation. `variables` gives values to names (a program's earlier
    steps). Raises `CalculatorError` with a readable message."""
    if not isinstance(expression, str):
        raise CalculatorError("the expression must be a string")
    if len(expression) > MAX_CHARS:
        raise CalculatorError(f"expression too long ({len(expression)} characters; the limit is {MAX_CHARS})")
    variables = variables or {}
    source, numbers = _rewrite(expression, variables)
    if not source.strip():
        raise CalculatorError("empty expression")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        shown = expression.strip() if len(expression.strip()) <= 60 else expression.strip()[:57] + "..."
        reason = exc.msg.removesuffix(". Perhaps you forgot a comma?")  # a tip about our placeholders
        raise CalculatorError(f"could not parse {shown!r}: {reason}") from None
    except (RecursionError, MemoryError):
        raise CalculatorError(f"expression is nested too deeply (the limit is {MAX_DEPTH} levels)") from None
    evaluator = _Evaluator(numbers, variables, _work[0] if _work else 0.0)
    value = evaluator.visit(tree.body, 0)
    if _work:
        _work[0] = evaluator.work
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("the result is not a finite number")
    return value


def _rewrite(expression: str, variables: Mapping[str, Number]) -> tuple[str, list[Fraction]]:
    """Tokenize against the allowlist; return Python-syntax source with numbers as `_nI`
    placeholders (their exact values in the list) and postfix percents as `[_pct]`."""
    tokens: list[tuple[str, str]] = []  # (kind, text) with kind in number/name/op
    pos = 0
    while pos < len(expression):
        m = _TOKEN.match(expression, pos)
        if m is None:
            ch = expression[pos]
            hint = " (factorial is not supported)" if ch == "!" else ""
            raise CalculatorError(f"unexpected character {ch!r} at position {pos + 1}{hint}")
        pos = m.end()
        kind = m.lastgroup
        text = m.group()
        if kind == "space":
            continue
        if kind == "name" and text not in _FUNCTIONS and text not in _CONSTANTS and text not in variables and text != "of":
            raise CalculatorError(f"unknown name {text!r}")
        tokens.append((kind, _SPELLING.get(text, text)))  # type: ignore[arg-type]

    out: list[str] = []
    numbers: list[Fraction] = []
    for i, (kind, text) in enumerate(tokens):
        prev = tokens[i - 1] if i else ("", "")
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ("end", "")
        if kind == "number":
            numbers.append(_literal(text))
            out.append(f"_n{len(numbers) - 1}")
        elif text == "%" and _is_percent(prev, nxt):
            out.append(f"[{_PCT}]")
        elif text == "of":
            if not (prev == ("op", "%") and out and out[-1] == f"[{_PCT}]"):
                raise CalculatorError("'of' is only understood after a percentage, as in '17% of 2400'")
            out.append("*")
        else:
            out.append(text)
    return " ".join(out), numbers


def _is_percent(prev: tuple[str, str], nxt: tuple[str, str]) -> bool:
    after_operand = prev[0] in ("number", "name") or prev == ("op", ")") or prev == ("op", "%")
    before_end = nxt[0] == "end" or nxt[1] in (")", ",", "of") or (nxt[0] == "op" and nxt[1] in _BINARY_OPS)
    return after_operand and before_end


def _literal(text: str) -> Fraction:
    mantissa, _, exponent = text.replace("_", "").lower().partition("e")
    if exponent and abs(int(exponent)) > MAX_DIGITS:
        raise CalculatorError(f"number {text} is too large (integers are limited to {MAX_DIGITS:,} digits)")
    return Fraction(mantissa) * Fraction(10) ** int(exponent) if exponent else Fraction(mantissa)


class _Evaluator:
    def __init__(self, numbers: list[Fraction], variables: Mapping[str, Number], work: float) -> None:
        self.numbers = numbers
        self.variables = variables
        self.work = work

    def visit(self, node: ast.AST, depth: int) -> Number:
        if depth > MAX_DEPTH:
            raise CalculatorError(f"expression is nested too deeply (the limit is {MAX_DEPTH} levels)")
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.BinOp):
            # walk a left-leaning chain (1+2+3+...) in a loop, so long sums do not count as depth
            chain = []
            while isinstance(node, ast.BinOp):
                chain.append(node)
                node = node.left
            value = self.visit(node, depth + 1)
            for link in reversed(chain):
                right = self.visit(link.right, depth + 1)
                self._charge(value, right)
                value = _binary(type(link.op), value, right)
            return value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.visit(node.operand, depth + 1)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Name) and node.slice.id == _PCT:
            value = self.visit(node.value, depth + 1)
            self._charge(value, Fraction(100))
            return _binary(ast.Div, value, Fraction(100))
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        if isinstance(node, ast.Tuple) and not node.elts:
            raise CalculatorError("empty parentheses")
        if isinstance(node, ast.Tuple):
            raise CalculatorError(
                "commas only separate function arguments (write numbers without thousands separators)"
            )
        raise CalculatorError(f"{_describe(node)} is not allowed in a calculation")

    def _charge(self, a: Number, b: Number) -> None:
        """Count the work of one operation on big numbers, before doing it. Cost grows about
        with the square of the size; one operation on two 10,000-digit fractions costs 1 unit
        (~6 ms here), and an expression may spend MAX_WORK units."""
        bits = max(_bits(a), _bits(b))
        if bits > 1024:
            self.work += (bits / _SAFE_BITS) ** 2
            if self.work > MAX_WORK:
                raise CalculatorError("this calculation is too expensive (too many operations on very large numbers)")

    def _name(self, name: str) -> Number:
        if name.startswith("_n"):
            return self.numbers[int(name[2:])]
        if name in self.variables:
            return self.variables[name]
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        if name in _FUNCTIONS:
            raise CalculatorError(f"{name} is a function; call it like {name}(2)")
        raise CalculatorError(f"unknown name {name!r}")

    def _call(self, node: ast.Call, depth: int) -> Number:
        func = node.func
        if not isinstance(func, ast.Name) or func.id not in _FUNCTIONS:
            what = func.id if isinstance(func, ast.Name) and not func.id.startswith("_") else "a number"
            raise CalculatorError(f"{what} cannot be called; use * to multiply, as in 2*(3+4)")
        if node.keywords:
            raise CalculatorError(f"{func.id}() takes no keyword arguments")
        fn, lo, hi = _FUNCTIONS[func.id]
        if not lo <= len(node.args) <= hi:
            count = str(lo) if lo == hi else f"{lo} to {hi}" if hi < 99 else f"at least {lo}"
            raise CalculatorError(f"{func.id}() takes {count} argument{'s' if hi != 1 else ''}, got {len(node.args)}")
        args = [self.visit(a, depth + 1) for a in node.args]
        try:
            return _checked(fn(*args))
        except (ValueError, ArithmeticError, TypeError) as exc:
            if isinstance(exc, TypeError):
                raise CalculatorError(f"{func.id}() cannot take these arguments") from None
            if isinstance(exc, ZeroDivisionError):
                raise CalculatorError("division by zero") from None
            if isinstance(exc, OverflowError):
                raise CalculatorError(f"{func.id}(): the result is too large") from None
            raise CalculatorError(
                f"{func.id}(): math domain error (for example, log or sqrt of a negative number)"
            ) from None


def _describe(node: ast.AST) -> str:
    names = {"Attribute": "attribute access", "Lambda": "lambda", "Compare": "comparison", "BoolOp": "and/or"}
    return names.get(type(node).__name__, type(node).__name__)


def _binary(op: type, a: Number, b: Number) -> Number:
    try:
        if op is ast.Pow:
            return _power(a, b)
        if op is ast.Add:
            result = a + b
        elif op is ast.Sub:
            result = a - b
        elif op is ast.Mult:
            result = a * b
        elif op is ast.Div:
            result = a / b
        elif op is ast.FloorDiv:
            result = a // b
        elif op is ast.Mod:
            result = a % b
        else:
            raise CalculatorError(f"operator {op.__name__} is not allowed")
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except OverflowError:
        raise CalculatorError("number too large for floating-point arithmetic") from None
    return _checked(result)


def _power(base: Number, exp: Number) -> Number:
    if isinstance(exp, Fraction) and exp.denominator == 1:
        n = exp.numerator
        if isinstance(base, Fraction):
            if base == 0 and n < 0:
                raise CalculatorError("division by zero")
            if base in (0, 1, -1):
                return base**n
            # |result| has about |n| times the bits of the base: check before computing
            bits = max(base.numerator.bit_length(), base.denominator.bit_length())
            if abs(n) * (bits - 1) > _SAFE_BITS:
                raise CalculatorError(f"the result of this power would have more than {MAX_DIGITS:,} digits")
            return _checked(base**n)
    if isinstance(base, Fraction) and base < 0:
        raise CalculatorError("a negative number to a fractional power has no real value")
    if base == 0 and exp < 0:
        raise CalculatorError("division by zero")
    try:
        result = float(base) ** float(exp)
    except OverflowError:
        raise CalculatorError("the result of this power is too large") from None
    if isinstance(result, complex):
        raise CalculatorError("a negative number to a fractional power has no real value")
    return _checked(result)


def _checked(value: Number) -> Number:
    if isinstance(value, int) and not isinstance(value, bool):
        value = Fraction(value)
    if isinstance(value, Fraction):
        if _too_long(value.numerator) or _too_long(value.denominator):
            raise CalculatorError(f"intermediate result has more than {MAX_DIGITS:,} digits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CalculatorError("the result is too large or not a number")
        return value
    raise CalculatorError("unsupported value")


def _bits(x: Number) -> int:
    return max(x.numerator.bit_length(), x.denominator.bit_length()) if isinstance(x, Fraction) else 0


def _too_long(n: int) -> bool:
    bits = n.bit_length()
    return bits > _SAFE_BITS and (bits > _SAFE_BITS + 1 or abs(n) >= _LIMIT)


# --- functions ---------------------------------------------------------------------------


def _sqrt(x: Number) -> Number:
    if x < 0:
        raise CalculatorError("sqrt() of a negative number")
    if isinstance(x, Fraction):
        n, d = math.isqrt(x.numerator), math.isqrt(x.denominator)
        if n * n == x.numerator and d * d == x.denominator:
            return Fraction(n, d)
    return math.sqrt(_float(x))


def _log(x: Number, base: Number | None = None) -> float:
    if x <= 0 or (base is not None and (base <= 0 or base == 1)):
        raise CalculatorError("log() needs a positive number (and a positive base other than 1)")
    value = _ln(x)
    return value if base is None else value / _ln(base)


def _ln(x: Number) -> float:
    # math.log takes huge ints directly; a Fraction is split so it never overflows a float
    if isinstance(x, Fraction):
        return math.log(x.numerator) - math.log(x.denominator)
    return math.log(x)


def _float(x: Number) -> float:
    try:
        return float(x)
    except OverflowError:
        raise CalculatorError("number too large for floating-point functions") from None


def _round(x: Number, ndigits: Number | None = None) -> Number:
    if ndigits is None:
        return Fraction(round(x))
    if not (isinstance(ndigits, Fraction) and ndigits.denominator == 1 and abs(ndigits) <= 1000):
        raise CalculatorError("round(): the number of digits must be a whole number between -1000 and 1000")
    return round(x, int(ndigits))


def _to_int(f: Callable[[Number], int]) -> Callable[[Number], Number]:
    return lambda x: Fraction(f(x))


def _transcendental(f: Callable[[float], float]) -> Callable[[Number], float]:
    return lambda x: f(_float(x))


_FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    "sqrt": (_sqrt, 1, 1),
    "log": (_log, 1, 2),
    "log2": (lambda x: _log(x, Fraction(2)), 1, 1),
    "log10": (lambda x: _log(x, Fraction(10)), 1, 1),
    "exp": (_transcendental(math.exp), 1, 1),
    "sin": (_transcendental(math.sin), 1, 1),
    "cos": (_transcendental(math.cos), 1, 1),
    "tan": (_transcendental(math.tan), 1, 1),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "min": (lambda *xs: min(xs), 1, 99),
    "max": (lambda *xs: max(xs), 1, 99),
    "floor": (_to_int(math.floor), 1, 1),
    "int": (_to_int(math.trunc), 1, 1),
    "ceil": (_to_int(math.ceil), 1, 1),
}


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
