"""The calculator's bottom layer: exact, bounded arithmetic on numbers that are already values.

It holds `CalculatorError`, the `Number` type (`Fraction`, or `float` once something
transcendental is involved), the size limit on integers, the binary operators (with a power's
size estimated before it is computed), and the tables of CONSTANTS and FUNCTIONS that the
evaluator (tools/_calc_eval.py) lets expressions use.

Not handled here: text. Nothing in this module tokenizes, parses or looks at an expression,
and nothing here counts the work budget (the evaluator does, using `bits` and SAFE_BITS).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from fractions import Fraction

from ._errors import ToolError

__all__ = ["CONSTANTS", "FUNCTIONS", "MAX_DIGITS", "SAFE_BITS", "CalculatorError", "Number", "binary", "bits", "checked"]

Number = Fraction | float

MAX_DIGITS = 10_000
_LIMIT = 10**MAX_DIGITS  # the smallest integer with MAX_DIGITS + 1 digits
SAFE_BITS = _LIMIT.bit_length() - 1  # any integer this short has at most MAX_DIGITS digits


class CalculatorError(ToolError):
    """The expression is not allowed, malformed, or has no finite value."""


# Kept as `tooltoken.tools.calculator.CalculatorError`, where it has always been defined and
# is imported from, so tracebacks, pickles and error reports name the same class as before.
CalculatorError.__module__ = "tooltoken.tools.calculator"


def binary(op: type, a: Number, b: Number) -> Number:
    """`a op b` for an `ast` operator class; Python's errors become CalculatorErrors."""
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
    return checked(result)


def _power(base: Number, exp: Number) -> Number:
    if isinstance(exp, Fraction) and exp.denominator == 1:
        n = exp.numerator
        if isinstance(base, Fraction):
            if base == 0 and n < 0:
                raise CalculatorError("division by zero")
            if base in (0, 1, -1):
                return base**n
            # |result| has about |n| times the bits of the base: check before computing
            size = max(base.numerator.bit_length(), base.denominator.bit_length())
            if abs(n) * (size - 1) > SAFE_BITS:
                raise CalculatorError(f"the result of this power would have more than {MAX_DIGITS:,} digits")
            return checked(base**n)
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
    return checked(result)


def checked(value: Number) -> Number:
    """`value` as a Number within the limits (ints become Fractions), or a CalculatorError."""
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


def bits(x: Number) -> int:
    """The size of an exact number in bits (its longer part); 0 for a float."""
    return max(x.numerator.bit_length(), x.denominator.bit_length()) if isinstance(x, Fraction) else 0


def _too_long(n: int) -> bool:
    size = n.bit_length()
    return size > SAFE_BITS and (size > SAFE_BITS + 1 or abs(n) >= _LIMIT)


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


def _whole(name: str, *xs: Number) -> list[int]:
    """The arguments as ints, or a CalculatorError naming the function."""
    out = []
    for x in xs:
        if not (isinstance(x, Fraction) and x.denominator == 1):
            raise CalculatorError(f"{name}() takes whole numbers")
        out.append(x.numerator)
    return out


def _natural(name: str, *xs: Number) -> list[int]:
    out = _whole(name, *xs)
    if any(n < 0 for n in out):
        raise CalculatorError(f"{name}() takes whole numbers that are not negative")
    return out


def _digits_of_ratio(top: int, *bottom: int) -> float:
    """log10 of top! / (b1! b2! ...), from lgamma: the size of a result before it is computed."""
    ln = math.lgamma(top + 1) - sum(math.lgamma(b + 1) for b in bottom)
    return ln / math.log(10)


def _sized(name: str, digits: float) -> None:
    if digits > MAX_DIGITS:
        raise CalculatorError(f"{name}(): the result would have more than {MAX_DIGITS:,} digits")


def _factorial(x: Number) -> Number:
    (n,) = _natural("factorial", x)
    _sized("factorial", _digits_of_ratio(n))
    return Fraction(math.factorial(n))


def _comb(n_: Number, k_: Number) -> Number:
    n, k = _natural("comb", n_, k_)
    if k > n:
        return Fraction(0)
    _sized("comb", _digits_of_ratio(n, k, n - k))
    return Fraction(math.comb(n, k))


def _perm(n_: Number, k_: Number | None = None) -> Number:
    n, k = _natural("perm", n_, n_ if k_ is None else k_)
    if k > n:
        return Fraction(0)
    _sized("perm", _digits_of_ratio(n, n - k))
    return Fraction(math.perm(n, k))


def _gcd(*xs: Number) -> Number:
    return Fraction(math.gcd(*_whole("gcd", *xs)))


def _lcm(*xs: Number) -> Number:
    value = 1
    for n in _whole("lcm", *xs):  # one at a time: a result past the digit limit stops it early
        value = checked(Fraction(math.lcm(value, n))).numerator
    return Fraction(value)


def _sum(*xs: Number) -> Number:
    total: Number = Fraction(0)
    for x in xs:
        total = checked(total + x)
    return total


def _mean(*xs: Number) -> Number:
    return checked(_sum(*xs) / len(xs))


def _mod(a: Number, b: Number) -> Number:
    return binary(ast.Mod, a, b)


def _intdiv(a: Number, b: Number) -> Number:
    return binary(ast.FloorDiv, a, b)


def _percent(part: Number, whole: Number) -> Number:
    """What percent `part` is of `whole`: percent(30, 120) = 25."""
    return checked(binary(ast.Div, part, whole) * 100)


CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

# name -> (function, fewest arguments, most arguments); 99 stands for "any number"
FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
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
    "sum": (_sum, 1, 99),
    "mean": (_mean, 1, 99),
    "average": (_mean, 1, 99),
    "mod": (_mod, 2, 2),
    "intdiv": (_intdiv, 2, 2),
    "gcd": (_gcd, 1, 99),
    "lcm": (_lcm, 1, 99),
    "comb": (_comb, 2, 2),
    "perm": (_perm, 1, 2),
    "factorial": (_factorial, 1, 1),
    "percent": (_percent, 2, 2),
    "len": (lambda *xs: Fraction(len(xs)), 1, 99),  # of a list: how many numbers it holds
}
