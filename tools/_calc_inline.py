"""The calculator inline: arithmetic the model writes out, finished by the calculator.

    >>> inline_arithmetic("So he earns 195 × 144 =")
    ({'expression': '195 × 144'}, ' 28080')
    >>> inline_arithmetic("x + 5 - 6 =") is None    # algebra: the left side is not all numbers
    True

Toolformer's calculator worked inside the text: the model wrote `[Calculator(400 / 1400) →`, the
API's answer was inserted, and decoding went on. Small models work problems out step by step
and slip on the arithmetic itself (Qwen2.5-Coder-1.5B: "195 × 144 = 28320"); asked to call the
calculator instead, they skip the reasoning. So the controller asks this function, each time the
answer's text ends in `=`, whether the line before it is plain arithmetic; if it is, the
calculator's exact value is written as the next tokens and the model goes on from there.

What counts, decided here (anything doubtful is left to the model):
- the left side is the last link of the line (`a = 2 + 3 =` → `2 + 3`), or of the line above
  when `=` starts a line (`2 + 3` then `   =` under it), after LaTeX is read
  (`\\times`, `\\cdot`, `\\div`, `\\frac{a}{b}`, `\\left(`, `\\text{units}` dropped) and
  thousands separators and currency signs are removed;
- it holds two numbers or more and an operator, and nothing but numbers, `+ - * / ^ × ÷ ·`,
  parentheses and spaces;
- it starts the line, or follows a word, `:`, an opening bracket, or `,` or `;` and a space; never right after a letter,
  digit or other symbol (`2x + 3 =`, `√16 + 2 =`), and `==`, `<=`, `>=`, `!=` are not equations.
Integers are written whole; other values as decimals of up to 12 places.

A coder model writes its arithmetic as a program instead (Program-aided LMs, Gao et al. 2022):
when the text ends in a fenced block (```python ... ```) that is a calculator program
(tools/_calc_program.py: `name = expression` lines, arithmetic only), the calculator runs it
and every step's value is written after the block, in a ```output block. A block with anything
else in it (`def`, loops, strings, imports) is code, not arithmetic, and is left alone.

This layer only finds the arithmetic in the text and writes the value back; evaluating is the
layers below (tools/_calc_eval.py, tools/_calc_program.py). Not handled here: deciding when to
ask (the controller calls this when the answer ends in `=` or a closing fence) and the tool
itself (tools/calculator.py attaches this function as `calculator.inline`).

    >>> inline_arithmetic("```python\\ndays = 6 * 2 * 12\\npay = 195 * days\\n```\\n")
    ({'expression': 'days = 6 * 2 * 12\\npay = 195 * days'}, '```output\\ndays = 144\\npay = 28080\\n```\\n')
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from ._calc_eval import evaluate
from ._calc_format import format_value
from ._calc_program import format_program, run_program
from ._errors import ToolError

__all__ = ["FENCE", "GIVE_UP", "MAX_TAIL", "OUTPUT", "REWRITE", "inline_arithmetic", "inline_worked"]

_ENDS_IN_EQUALS = re.compile(r"(?<![<>!=:=])=[ ]?\Z")
_LATEX = [
    (re.compile(r"\\(?:text|mathrm|textrm|mbox)\s*\{[^{}]*\}"), " "),
    (re.compile(r"\\d?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}"), r"((\1)/(\2))"),
    (re.compile(r"\\(?:times|cdot)"), "*"),
    (re.compile(r"\\div"), "/"),
    (re.compile(r"\\(?:left|right)\b"), ""),
    (re.compile(r"\\[,;:! ]|~"), " "),
    (re.compile(r"\\[\[\(]|[$£€¥]"), " "),
]
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_SUFFIX = re.compile(r"[-+*/^×÷·−()\d.\s]*$")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_BINARY = re.compile(r"(?<=[\d)\s])\s*[-+*/^×÷·−]\s*(?=[-−]?[\d(])")
_FOLLOWS = set(":([{")
MAX_CHARS = 200
_FENCED = re.compile(r"```[ \t]*(?:python3?|py|calc|calculator)?[ \t]*\n(?P<body>(?:(?!```).)*?)\n?```\s*\Z", re.DOTALL)
_WORKS = re.compile(r"[-+*/^%×÷]|\w\(")  # something to compute, not just `x = 5`
MAX_TAIL = 4000  # the longest program read (the controller passes this much of the answer)


def inline_arithmetic(text: str) -> tuple[dict[str, Any], str] | None:
    """(calculator arguments, the text to write next) when `text` ends in `<arithmetic> =` or
    in a fenced calculator program."""
    if text.rstrip(" \n").endswith("```"):
        return _program(text)
    expression = _left_side(text)
    if expression is None:
        return None
    try:
        value = evaluate(expression)
    except ToolError:
        return None
    shown = _show(value)
    return {"expression": expression}, (shown if text.endswith(" ") else " " + shown)


def _left_side(text: str) -> str | None:
    """The plain arithmetic just before the `=` that ends `text`, or None if there is none."""
    end = _ENDS_IN_EQUALS.search(text[-MAX_CHARS - 2 :])
    if end is None:
        return None
    line = _last_link(text[-MAX_CHARS - 2 :][: end.start()])
    suffix = _SUFFIX.search(line)
    assert suffix is not None  # the pattern matches the empty string
    raw = suffix.group()
    before = line[: suffix.start() + len(raw) - len(raw.lstrip())]
    expression = " ".join(raw.split())
    if before and not before[-1].isspace() and before[-1] not in _FOLLOWS:
        return None  # glued to a letter, digit or symbol: `2x + 3`, `√16 + 2`, `1,000.5`
    if before.strip() and before.rstrip()[-1] not in _FOLLOWS | {",", ";"} and not before.rstrip()[-1].isalpha():
        return None  # after a symbol: `% 3 * 4`, `' 3 * 4`
    if expression[:1] in "+*/^×÷·" or expression[:2] in ("- ", "−"):
        return None  # starts with an operator: the rest of something the model began earlier
    if len(_NUMBER.findall(expression)) < 2 or not _BINARY.search(expression):
        return None
    return expression


def _last_link(head: str) -> str:
    """The last link of the line before `=` (of the line above when `=` starts a line), with
    LaTeX read as arithmetic and thousands separators removed."""
    lines = head.rsplit("\n", 2)
    line = lines[-1]
    if not line.strip() and len(lines) > 1:  # `expression` on one line, `= result` under it
        line = lines[-2]
    line = line.rsplit("=", 1)[-1]
    for pattern, repl in _LATEX:
        line = pattern.sub(repl, line)
    return _THOUSANDS.sub("", line)


def inline_worked(text: str) -> tuple[dict[str, Any], str] | None:
    """`inline_arithmetic` for an answer that was asked to work as a program (the math path,
    agent/_policy.py): a fenced program the calculator cannot run gets the calculator's error
    in its output block, so the model can write it again, instead of silence (in which a model
    writes an output block of its own, with made-up values). The second error says the
    calculator cannot run it, and is the last."""
    if text.rstrip(" \n").endswith("```"):  # a second error is the last: the model then states what it has
        return _program(text, errors=True, last=REWRITE in text[-MAX_TAIL:])
    return inline_arithmetic(text)


REWRITE = "Write the program again: plain arithmetic and the calculator's functions only."
GIVE_UP = "The calculator cannot run this program."
FENCE = "```python\n"  # where the calculator asks for a program again, it opens the program's fence
OUTPUT = "```output"  # opens the block a program's values (or its error) are written in


def _program(text: str, errors: bool = False, last: bool = False) -> tuple[dict[str, Any], str] | None:
    m = _FENCED.search(text[-MAX_TAIL:])
    if m is None or not _WORKS.search(m.group("body")):
        return None
    body = m.group("body").strip("\n")
    try:
        shown = format_program(run_program(body, lenient=errors), exact=False)
    except ToolError as exc:
        if not errors:
            return None
        shown = f"error: {exc}\n{GIVE_UP if last else REWRITE}"
    output = f"{OUTPUT}\n{shown}\n```\n"  # as a notebook (and Qwen2.5-Math's tool use) shows it
    if shown.endswith(REWRITE):  # the new program's fence is opened for it: asked to rewrite, a small
        output += FENCE  # model began an output block of its own instead, and the answer ended there
    return {"expression": body}, ("" if text.endswith("\n") else "\n") + output


def _show(value: Fraction | float) -> str:
    return format_value(value)
