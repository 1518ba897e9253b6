"""The calculator's evaluator: one expression's text to an exact value, never running the text.

    >>> evaluate("17% of 2400")
    Fraction(408, 1)
    >>> evaluate("2 * days", {"days": Fraction(144)})
    Fraction(288, 1)

How it works: a small tokenizer accepts only numbers, the known names, operators, parentheses and
commas (anything else, such as quotes, dots after names, brackets or `lambda`'s colon, is refused
right there); number literals are swapped for placeholders that hold exact `Fraction`s; `ast`
parses the result, and a walker evaluates only an allowlist of node types. Nothing is ever
passed to `eval`, `exec`, numexpr or sympy. The arithmetic itself (operators, functions,
constants, the digit limit) is the layer below, tools/_calc_arith.py.

This layer holds the notation (see tools/calculator.py for all of it: `^`, `×`, `17% of 2400`),
the input bounds MAX_CHARS and MAX_DEPTH, and the work budget MAX_WORK. Not handled here: several
named steps (tools/_calc_program.py), and how a value is written out (tools/_calc_format.py).
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping
from fractions import Fraction

from ._calc_arith import CONSTANTS, FUNCTIONS, MAX_DIGITS, SAFE_BITS, CalculatorError, Number, binary, bits, checked
from ._calc_time import Kind, clock_minutes, duration_minutes, kind_of

__all__ = ["MAX_CHARS", "MAX_DEPTH", "MAX_WORK", "evaluate", "evaluate_step", "evaluate_typed"]

MAX_CHARS = 1000
MAX_DEPTH = 200
MAX_WORK = 6.0

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<clock>[0-9]{1,2}:[0-5][0-9](?:\s*[aApP]\.?[mM]\b\.?)?)
      | (?P<duration>(?:[0-9]+(?:\.[0-9]+)?\s*(?:hours?|hrs?|h)\b(?:\s*[0-9]+(?:\.[0-9]+)?\s*(?:minutes?|mins?|m)\b)?
                    |[0-9]+(?:\.[0-9]+)?\s*(?:minutes?|mins?)\b))
      | (?P<number>(?:[0-9](?:_?[0-9])*(?:\.(?:[0-9](?:_?[0-9])*)?)?|\.[0-9](?:_?[0-9])*)(?:[eE][+-]?[0-9]+)?)
      | (?P<name>[A-Za-z][A-Za-z0-9_]*)
      | (?P<op>\*\*|//|[-+*/%^(),×·÷−\[\]])""",
    re.VERBOSE,
)
_MATH_MODULE = re.compile(r"\bmath\.(?=(?:" + "|".join(sorted(FUNCTIONS) + ["pi", "e"]) + r")\b)")
LIST_FUNCTIONS = frozenset({"sum", "mean", "average", "min", "max", "len", "gcd", "lcm"})
MAX_LIST = 1000
_LIST_USE = "a list only goes into sum, mean, average, min, max, len, gcd or lcm"
_SPELLING = {"×": "*", "·": "*", "÷": "/", "−": "-", "^": "**"}
_PCT = "_pct"  # user names may not start with "_", so these markers cannot be forged
_BINARY_OPS = {"+", "-", "*", "/", "//", "%", "**"}


def evaluate(expression: str, variables: Mapping[str, Number] | None = None, *, _work: list[float] | None = None) -> Number:
    """Evaluate `expression` to a `Fraction` (exact) or a `float` (transcendental); see
    tools/calculator.py for the notation. `variables` gives values to names (a program's earlier
    steps). Raises `CalculatorError` with a readable message."""
    return evaluate_step(expression, variables, _work)


def evaluate_step(expression: str, variables: Mapping[str, Number] | None, work: list[float] | None) -> Number:
    """`evaluate`, drawing on a shared work budget: `work` holds the units already spent (a
    program's earlier steps) and is updated, so a program costs no more than one expression."""
    return evaluate_typed(expression, variables, work)[0]


def evaluate_typed(expression: str, variables: Mapping[str, Number] | None = None, work: list[float] | None = None,
                   kinds: Mapping[str, Kind] | None = None) -> tuple[Number, Kind]:
    """`evaluate_step`, and what the value is: a clock time, a duration (both in minutes) or a
    plain number (None). `kinds` gives the kind of each variable (a program's earlier steps)."""
    if not isinstance(expression, str):
        raise CalculatorError("the expression must be a string")
    if len(expression) > MAX_CHARS:
        raise CalculatorError(f"expression too long ({len(expression)} characters; the limit is {MAX_CHARS})")
    variables = variables or {}
    expression = _MATH_MODULE.sub("", expression)  # `math.ceil(x)` is the calculator's ceil(x)
    source, numbers, literal_kinds = _rewrite(expression, variables)
    if not source.strip():
        raise CalculatorError("empty expression")
    tree = _parse(source, expression)
    evaluator = _Evaluator(numbers, variables, work[0] if work else 0.0)
    value = evaluator.visit(tree.body, 0)
    if work:
        work[0] = evaluator.work
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("the result is not a finite number")
    kind = kind_of(tree.body, {**(kinds or {}), **{f"_n{i}": k for i, k in enumerate(literal_kinds) if k}})
    return value, kind


def _parse(source: str, expression: str) -> ast.Expression:
    """`ast.parse` of the rewritten source; errors name the user's own `expression`."""
    try:
        return ast.parse(source, mode="eval")
    except SyntaxError as exc:
        shown = expression.strip() if len(expression.strip()) <= 60 else expression.strip()[:57] + "..."
        reason = exc.msg.removesuffix(". Perhaps you forgot a comma?")  # a tip about our placeholders
        raise CalculatorError(f"could not parse {shown!r}: {reason}") from None
    except (RecursionError, MemoryError):
        raise CalculatorError(f"expression is nested too deeply (the limit is {MAX_DEPTH} levels)") from None


def _rewrite(expression: str, variables: Mapping[str, Number]) -> tuple[str, list[Fraction], list[Kind]]:
    """Tokenize against the allowlist; return Python-syntax source with numbers as `_nI`
    placeholders (their exact values, and their kinds, in the lists) and postfix percents as
    `[_pct]`. Clock times and durations are numbers of minutes of kind "clock" or "duration"."""
    tokens = _tokens(expression, variables)
    out: list[str] = []
    numbers: list[Fraction] = []
    kinds: list[Kind] = []
    for i, (kind, text) in enumerate(tokens):
        prev = tokens[i - 1] if i else ("", "")
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ("end", "")
        if kind in ("number", "clock", "duration"):
            numbers.append(_literal(text) if kind == "number" else clock_minutes(text) if kind == "clock"
                           else duration_minutes(text))
            kinds.append(None if kind == "number" else kind)  # type: ignore[arg-type]
            out.append(f"_n{len(numbers) - 1}")
        elif text == "%" and _is_percent(prev, nxt):
            out.append(f"[{_PCT}]")
        elif text == "of":
            if not (prev == ("op", "%") and out and out[-1] == f"[{_PCT}]"):
                raise CalculatorError("'of' is only understood after a percentage, as in '17% of 2400'")
            out.append("*")
        else:
            out.append(text)
    return " ".join(out), numbers, kinds


def _tokens(expression: str, variables: Mapping[str, Number]) -> list[tuple[str, str]]:
    """(kind, text) with kind in number/name/op, spellings made Python's; anything outside the
    allowlist (including unknown names) is refused here, before anything is parsed."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expression):
        m = _TOKEN.match(expression, pos)
        if m is None:
            ch = expression[pos]
            hint = " (write factorial(5) for 5!)" if ch == "!" else ""
            raise CalculatorError(f"unexpected character {ch!r} at position {pos + 1}{hint}")
        pos = m.end()
        kind = m.lastgroup
        text = m.group()
        if kind == "space":
            continue
        if kind == "name" and text not in FUNCTIONS and text not in CONSTANTS and text not in variables and text != "of":
            raise CalculatorError(f"unknown name {text!r}")
        tokens.append((kind, _SPELLING.get(text, text)))  # type: ignore[arg-type]
    return tokens


def _is_percent(prev: tuple[str, str], nxt: tuple[str, str]) -> bool:
    after_operand = prev[0] in ("number", "name", "duration") or prev == ("op", ")") or prev == ("op", "%")
    before_end = nxt[0] == "end" or nxt[1] in (")", ",", "of") or (nxt[0] == "op" and nxt[1] in _BINARY_OPS)
    return after_operand and before_end


def _literal(text: str) -> Fraction:
    mantissa, _, exponent = text.replace("_", "").lower().partition("e")
    if exponent and abs(int(exponent)) > MAX_DIGITS:
        raise CalculatorError(f"number {text} is too large (integers are limited to {MAX_DIGITS:,} digits)")
    return Fraction(mantissa) * Fraction(10) ** int(exponent) if exponent else Fraction(mantissa)


class _Evaluator:
    """Walks the parsed tree, allowing only the node types the rewritten notation produces."""

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
            return self._chain(node, depth)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.visit(node.operand, depth + 1)
            if isinstance(value, list):
                raise CalculatorError(_LIST_USE)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Name) and node.slice.id == _PCT:
            value = self.visit(node.value, depth + 1)
            if isinstance(value, list):
                raise CalculatorError(_LIST_USE)
            self._charge(value, Fraction(100))
            return binary(ast.Div, value, Fraction(100))
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        if isinstance(node, ast.List):  # a list of numbers: for sum, mean, min, max, len, gcd, lcm
            if len(node.elts) > MAX_LIST:
                raise CalculatorError(f"a list may hold at most {MAX_LIST} numbers")
            items = [self.visit(e, depth + 1) for e in node.elts]
            if any(isinstance(i, list) for i in items):
                raise CalculatorError("lists cannot hold lists")
            return items  # type: ignore[return-value]
        if isinstance(node, ast.Tuple) and not node.elts:
            raise CalculatorError("empty parentheses")
        if isinstance(node, ast.Tuple):
            raise CalculatorError(
                "commas only separate function arguments (write numbers without thousands separators)"
            )
        raise CalculatorError(f"{_describe(node)} is not allowed in a calculation")

    def _chain(self, node: ast.AST, depth: int) -> Number:
        # walk a left-leaning chain (1+2+3+...) in a loop, so long sums do not count as depth
        chain = []
        while isinstance(node, ast.BinOp):
            chain.append(node)
            node = node.left
        value = self.visit(node, depth + 1)
        for link in reversed(chain):
            right = self.visit(link.right, depth + 1)
            if isinstance(value, list) or isinstance(right, list):
                raise CalculatorError(_LIST_USE)
            self._charge(value, right)
            value = binary(type(link.op), value, right)
        return value

    def _charge(self, a: Number, b: Number) -> None:
        """Count the work of one operation on big numbers, before doing it. Cost grows about
        with the square of the size; one operation on two 10,000-digit fractions costs 1 unit
        (~6 ms here), and an expression may spend MAX_WORK units."""
        size = max(bits(a), bits(b))
        if size > 1024:
            self.work += (size / SAFE_BITS) ** 2
            if self.work > MAX_WORK:
                raise CalculatorError("this calculation is too expensive (too many operations on very large numbers)")

    def _name(self, name: str) -> Number:
        if name.startswith("_n"):
            return self.numbers[int(name[2:])]
        if name in self.variables:
            return self.variables[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS:
            raise CalculatorError(f"{name} is a function; call it like {name}(2)")
        raise CalculatorError(f"unknown name {name!r}")

    def _call(self, node: ast.Call, depth: int) -> Number:
        func = node.func
        if not isinstance(func, ast.Name) or func.id not in FUNCTIONS:
            what = func.id if isinstance(func, ast.Name) and not func.id.startswith("_") else "a number"
            raise CalculatorError(f"{what} cannot be called; use * to multiply, as in 2*(3+4)")
        if node.keywords:
            raise CalculatorError(f"{func.id}() takes no keyword arguments")
        fn, lo, hi = FUNCTIONS[func.id]
        if not lo <= len(node.args) <= hi:  # checked before the arguments are worked out
            count = str(lo) if lo == hi else f"{lo} to {hi}" if hi < 99 else f"at least {lo}"
            raise CalculatorError(f"{func.id}() takes {count} argument{'s' if hi != 1 else ''}, got {len(node.args)}")
        args = [self.visit(a, depth + 1) for a in node.args]
        if any(isinstance(a, list) for a in args):
            if func.id not in LIST_FUNCTIONS:
                raise CalculatorError(f"{func.id}() takes numbers, not a list")
            args = [x for a in args for x in (a if isinstance(a, list) else [a])]
            if not args:
                raise CalculatorError(f"{func.id}() of an empty list")
        try:
            return checked(fn(*args))
        except (ValueError, ArithmeticError, TypeError) as exc:
            raise _function_error(func.id, exc) from None


def _function_error(name: str, exc: Exception) -> CalculatorError:
    """A readable message for what Python's math raised inside function `name`."""
    if isinstance(exc, TypeError):
        return CalculatorError(f"{name}() cannot take these arguments")
    if isinstance(exc, ZeroDivisionError):
        return CalculatorError("division by zero")
    if isinstance(exc, OverflowError):
        return CalculatorError(f"{name}(): the result is too large")
    return CalculatorError(f"{name}(): math domain error (for example, log or sqrt of a negative number)")


def _describe(node: ast.AST) -> str:
    names = {"Attribute": "attribute access", "Lambda": "lambda", "Compare": "comparison", "BoolOp": "and/or"}
    return names.get(type(node).__name__, type(node).__name__)
