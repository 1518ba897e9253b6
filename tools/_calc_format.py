"""How the calculator writes a number: exact first, a decimal beside it, never a wall of digits.

    >>> format_number(Fraction(7, 3))
    '7/3 = 2.333333333333'
    >>> format_number(Fraction(2) ** 1000)
    '1.071508607186e+301 (302 digits)'

Everything here is integer arithmetic on the exact value: no float rounding, and no `str()` of
an integer past SHOWN_DIGITS digits (Python refuses those past 4,300 digits anyway).

This module imports no other calculator module: every layer above may use it. Not handled
here: computing values (tools/_calc_arith.py, tools/_calc_eval.py) and a program's step names
(tools/_calc_program.py writes `name = value` lines with format_number).
"""

from __future__ import annotations

from fractions import Fraction

__all__ = ["format_decimal", "format_number", "format_value"]

SHOWN_DIGITS = 120
DECIMALS = 12


def format_number(value: Fraction | float | list) -> str:
    """`7006652`, `7/3 = 2.333333333333`, `1.4142135623731`, or a rounded form with the digit
    count for integers too long to be useful in a prompt; a list as `[1, 5/2 = 2.5]`."""
    if isinstance(value, list):
        return "[" + ", ".join(format_number(v) for v in value) + "]"
    if isinstance(value, float):
        text = format(value, ".14g")
        return "0" if text == "-0" else text
    if value.denominator == 1:
        return _integer(value.numerator)
    return f"{_integer(value.numerator)}/{_integer(value.denominator)} = {format_decimal(value)}"


def format_value(value: Fraction | float | list) -> str:
    """A value as the next words of an answer: integers whole, anything else as a decimal."""
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, Fraction) and value.denominator != 1:
        return format_decimal(value)
    return format_number(value)


def _integer(n: int) -> str:
    digits = _digit_count(n)
    if digits <= SHOWN_DIGITS:
        return str(n)
    lead = abs(n) // 10 ** (digits - 13)  # 13 leading digits, without str() of the whole number
    text = str(lead)
    return f"{'-' if n < 0 else ''}{text[0]}.{text[1:]}e+{digits - 1} ({digits:,} digits)"


def _digit_count(n: int) -> int:
    n = abs(n)
    if n == 0:
        return 1
    digits = max(1, int((n.bit_length() - 1) * 0.30102999566398120))  # never more than the true count
    while n >= 10**digits:
        digits += 1
    return digits


def format_decimal(x: Fraction) -> str:
    """`x` rounded to 12 decimals (exact integer arithmetic); tiny values in scientific form."""
    if abs(x) >= Fraction(1, 10**4) or x == 0:
        scaled = round(x * 10**DECIMALS)
        sign = "-" if scaled < 0 else ""
        whole, frac = divmod(abs(scaled), 10**DECIMALS)
        frac_text = str(frac).rjust(DECIMALS, "0").rstrip("0")
        return f"{sign}{_integer(whole)}{'.' + frac_text if frac_text else ''}"
    # tiny: find the exponent with integers, then show 12 significant digits
    exp = _digit_count(x.numerator) - _digit_count(x.denominator)
    while abs(x) < Fraction(10) ** exp:
        exp -= 1
    mantissa = round(abs(x) / Fraction(10) ** exp * 10**11)
    if mantissa >= 10**12:
        mantissa, exp = mantissa // 10, exp + 1
    text = str(mantissa).rstrip("0") or "0"
    return f"{'-' if x < 0 else ''}{text[0]}{'.' + text[1:] if text[1:] else ''}e{exp}"
