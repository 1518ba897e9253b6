"""Calculator programs: a few named steps, one per line, as people write them out (bc-style).

    >>> print(format_program(run_program("days = 6 * 2 * 12\\npay = 195 * days")))
    days = 144
    pay = 28080
    >>> print(format_program(run_program("hours = 3 * 4; hours / 5")))
    hours = 12
    12/5 = 2.4

Each line (or `;`-separated statement) is `name = expression` (or `name += expression`, and the
other operators' such forms) or a bare expression; later lines use the names earlier lines set.
Every step's value is shown, so the model can quote any of them.
The expressions are the calculator's own, evaluated the same exact, bounded way by the layer
below (tools/_calc_eval.py): nothing here runs code either. Only what a coder model writes around
arithmetic is read past: `# comments`, `print(...)` around an expression (and its text labels;
a print of a formatted f-string only shows text, and is skipped, as is a name given a string),
and blank lines. Not handled: anything else a program might hold (`def`, loops, strings,
imports) is refused, as the evaluator refuses it, with what to write instead where there is
something (`if` → ceil, floor, max, min). A step may be named after a function or a constant
(`gcd = gcd(12, 18)`, `pi = 3.14`): as in Python the name then means the step's value, and a
call still reaches the function, since the evaluator looks calls and names up apart. Finding a
program in the model's answer is the inline layer's job (tools/_calc_inline.py).

Bounds: MAX_CHARS characters and MAX_STEPS steps in all, and one work budget for the whole
program (the evaluator's MAX_WORK), so a program costs no more than one long expression.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import NamedTuple

from ._calc_arith import CalculatorError
from ._calc_eval import evaluate_typed
from ._calc_format import format_number, format_value
from ._calc_time import Kind, format_kind

__all__ = ["MAX_CHARS", "MAX_STEPS", "Step", "format_program", "is_program", "run_program"]

MAX_CHARS = 4000
MAX_STEPS = 60
_ASSIGN = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*=(?!=)(.*)", re.DOTALL)
_PRINT = re.compile(r"\s*print\s*\((.*)\)\s*", re.DOTALL)
# `total += 5`: a running total as Python writes it, read as `total = total + (5)`
_AUGMENTED = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*(\*\*|//|[-+*/%])=(?!=)(.*)", re.DOTALL)

# a statement that is code, not a step: the error says what the calculator offers instead, as a
# model that wrote `if total % per_tray != 0: trays += 1` wrote it again when told only "unknown name 'if'"
_CODE = re.compile(r"\s*(if|elif|else|for|while|def|return|try|with|lambda)\b")
_INSTEAD = {"if": "round up with ceil(a / b), down with floor(a / b), or choose with max(a, b) and min(a, b)",
            "for": "add a list with sum([a, b, c]), or multiply", "while": "add a list with sum([a, b, c]), or multiply"}

_LABEL = re.compile(r"""\s*(?:"[^"{}\\]*"|'[^'{}\\]*')\s*""")
# a string may hold the other quote character: "Leo's time: {t}"
_TEXT = re.compile(r"""\s*f?(?:"[^"\\]*"|'[^'\\]*')\s*""")
_ANY_FSTRING = re.compile(r"""\s*f(?:"[^"\\]*"|'[^'\\]*')\s*""")  # formatted text: shown, not worked out
_FSTRING = re.compile(r"""\s*f(?:"[^"{}\\]*\{(?P<d>[^{}:!"']+)\}[^"{}\\]*"|'[^'{}\\]*\{(?P<s>[^{}:!"']+)\}[^'{}\\]*')\s*""")


class Step(NamedTuple):
    """One step's name (None for a bare expression), value, and kind (a clock time, a duration)."""

    name: str | None
    value: Fraction | float
    kind: Kind = None


def is_program(text: str) -> bool:
    """More than one statement, or an assignment: a program rather than one expression."""
    return len(_statements(text[:MAX_CHARS + 1])) > 1 or _ASSIGN.fullmatch(text.split("#", 1)[0]) is not None


def run_program(text: str, *, lenient: bool = False) -> list[Step]:
    """Evaluate each step in order; return (name or None, value) for every step. `lenient`: a
    program the model was asked to write (the math path) may also import the math module, whose
    functions are the calculator's own; elsewhere an import marks code, which is left alone."""
    if len(text) > MAX_CHARS:
        raise CalculatorError(f"program too long ({len(text)} characters; the limit is {MAX_CHARS})")
    statements = _statements(text, lenient)
    if not statements:
        raise CalculatorError("empty expression")
    if len(statements) > MAX_STEPS:
        raise CalculatorError(f"too many steps ({len(statements)}; the limit is {MAX_STEPS})")
    variables: dict[str, Fraction | float] = {}
    kinds: dict[str, Kind] = {}
    texts: set[str] = set()  # names given a string: printing one shows text
    steps: list[Step] = []
    work = [0.0]
    for number, statement in enumerate(statements, 1):
        name, expression, written = None, statement, statement
        if m := _CODE.match(statement):
            word = m.group(1)
            instead = _INSTEAD.get("if" if word in ("elif", "else") else word, "write each step as name = arithmetic")
            raise CalculatorError(f"line {number} ({_short(written)}): `{word}` is code, and a program here is steps "
                                  f"of arithmetic: {instead}")
        if m := _AUGMENTED.fullmatch(statement):
            statement = f"{m.group(1)} = {m.group(1)} {m.group(2)} ({m.group(3).strip()})"
        if m := _ASSIGN.fullmatch(statement):
            name, expression = m.group(1), m.group(2)
            if _TEXT.fullmatch(expression):  # a sentence for the reader (`answer = f"..."`): text, not arithmetic
                texts.add(name)
                continue
            if name == "of":
                raise CalculatorError(f"line {number}: 'of' is a word of the notation (17% of 2400) and cannot be assigned")
        elif m := _PRINT.fullmatch(statement):
            expression = _printed(m.group(1))
            if expression is None or expression.strip() in texts:  # only shows text (an f-string with a format): nothing to work out
                continue
        try:
            value, kind = evaluate_typed(expression, variables, work, kinds)
        except CalculatorError as exc:
            raise CalculatorError(f"line {number} ({_short(written)}): {exc}") from None
        if name is not None:
            variables[name], kinds[name] = value, kind
        steps.append(Step(name, value, kind))
    return steps


def format_program(steps: list[Step], exact: bool = True) -> str:
    """One line per step: `name = value`, or the value alone for a bare expression. `exact`:
    a fraction is shown with its decimal (`7/3 = 2.333333333333`); otherwise the decimal alone, as
    an answer's next words should be (a small model reads `12/5 = 2.4` as 12.4)."""
    shown = [(name, format_kind(v, kind, format_number(v) if exact else format_value(v))) for name, v, kind in steps]
    return "\n".join(text if name is None else f"{name} = {text}" for name, text in shown)


_IMPORT_MATH = re.compile(r"\s*(?:import\s+math|from\s+math\s+import\s+[\w\s,*]+)\s*")


def _statements(text: str, lenient: bool = False) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        if lenient and _IMPORT_MATH.fullmatch(line):  # the math module's functions are the calculator's own
            continue
        out += [s.strip() for s in line.split(";") if s.strip()]
    return out


def _printed(args: str) -> str | None:
    """What `print(...)` shows that is a number: `print("Total:", total)` and
    `print(f"Total: {total}")` show `total`. Labels are dropped; anything else is left for the
    calculator to refuse."""
    fstring = _FSTRING.fullmatch(args)
    if fstring:
        return fstring.group("d") or fstring.group("s")
    if _ANY_FSTRING.fullmatch(args):
        return None
    kept = [a for a in args.split(",") if not _LABEL.fullmatch(a)]
    return ",".join(kept) if len(kept) == 1 else args


def _short(statement: str) -> str:
    return statement if len(statement) <= 40 else statement[:37] + "..."
