"""The answer policy: which path a question takes, and what each path gives the model.

    question ──▶ router (agent/_router.py) ──▶ math   : a program of named steps, run by the exact
                                                         calculator inline; no tools declared
                                          ──▶ lookup : search first (retrieve when an index
                                                         exists), then an answer from the results
                                          ──▶ direct : the answer; of the tools, only a
                                                         caller's own are declared

One policy for every interface: chat, ask, run, serve, `Agent(...)` in a library and `tooltoken
eval` all answer through `Agent.stream`, which asks `choose` for the path of every answer unless
the caller opts out (`policy="plain"`: every tool declared, the model decides) or forces calls
itself (a `tool_choice` other than "auto"). A path only uses tools the Agent has: without a
calculator there is no math path, and without search or retrieve no lookup path; such
questions take the direct path. `Final.route` records the path an answer took.

Why these paths (docs/results.md has the figures): the default model answers word problems
better writing a short program that the calculator runs than calling a declared calculator, and
a lean prompt with no tool declarations prefills in a fraction of the time; declared, the
calculator was also called with its description's examples on questions that had nothing to
compute, so the lookup path does not declare it. The direct path is the bare model's prompt
(the built-in tools serve the other paths; the router knows nothing of a caller's own tools, so
those stay declared), and every path's static prefix is restored from the prompt cache
(agent/_prompt_cache.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

import regex

from tooltoken.tools import BUILTIN_TOOL_NAMES, Tool
from tooltoken.tools.calculator import calculator as builtin_calculator
from tooltoken.tools.calculator import OUTPUT, worked_calculator

from ._router import Route

__all__ = ["CALL_CHECK", "LOOKUP_SYSTEM", "MATH_SYSTEM", "MATH_TOKENS", "NOT_LIKELY", "NOT_RUN", "POLICIES",
           "RECALL_TOKENS", "Path", "choose", "doubt", "recall_query", "recall_room", "reread", "routable"]

Policy = Literal["routed", "plain"]
POLICIES: tuple[Policy, ...] = ("routed", "plain")

MATH_SYSTEM = (
    "Solve the problem with a calculator. Write the calculation as a short Python program in a ```python "
    "block: one assignment per line with a clear name, plain arithmetic and the calculator's functions "
    "(sum, mean, ceil, floor, round, min, max, gcd, lcm, mod), no loops, no def, no imports, no strings; "
    "clock times are written H:MM and durations Nh Mm or N min; the last line `answer = ...`. Write "
    "only the program: the calculator runs it and shows every value."
)
LOOKUP_SYSTEM = (
    "Answer from the search results: state the answer itself first, in one short sentence, and cite "
    "the result it came from by its number, such as [1]. If the results do not say, say that they do not."
)
LOOKUP_TOOLS = ("retrieve", "search")
QUERY_CHARS = 200  # of the first search's query (the search tool's own bound)
# the call check's threshold (yes-no log-odds) on the direct path, where a caller's own tools are
# declared: unchecked, the default model called a function on 20 of 20 BFCL irrelevance items;
# checked at this threshold, 32 of 40 were answered in words (docs/results.md, "BFCL")
CALL_CHECK = 1.05
# the math path's answer: a program, its output and one line. No right answer of the 72 held-out
# word problems measured at b07e945 took more than 308 tokens; the 4 that ran on to 1,024 (a
# program rewritten again and again) took 389 of their 1,237 seconds, all wrong
MATH_TOKENS = 384
RECALL_TOKENS = 40  # of the closed-book answer the lookup path adds to its first query (one line)
# a closed-book answer that only says the model cannot answer ("As an AI language model, I do not
# have access to your leave policy"): its words would steer the search away from the question
REFUSAL = regex.compile(
    r"^\W*(?:as an ai\b|i(?:'m| am) (?:sorry|not (?:sure|able|aware))|sorry\b|unfortunately\b"
    r"|i (?:do not|don't|cannot|can't|could not|couldn't) (?:have|know|find|access|provide|answer|determine|say)"
    r"|there (?:is|are) no (?:information|data|record))", regex.I)
REREAD_CHARS = 500  # of the question, restated after the first results
# Qwen2.5 boxes its answers in LaTeX (`\(\boxed{190}\)`) whatever the prompt says; the math
# path's answer is plain text, so a backslash or an opening `\(` or `$\` is never sampled there
LATEX = (" \\(", "\\(", "\\[", " \\", "\\", " $\\", "$\\")
CALCULATOR = "calculator"


@dataclass(frozen=True)
class Path:
    """What one answer's path gives the model."""

    route: Route | None  # None: no routing (policy "plain", or the caller forced calls)
    tools: list[Tool] = field(default_factory=list)  # declared to the model
    inline: list[Tool] = field(default_factory=list)  # used inside the answer's own text
    system: str | None = None  # the path's instructions, after the system prompt
    hint: bool = True  # add the framework's tool-use hint to the system prompt
    tool_choice: str | list[str] = "auto"
    first: tuple[tuple[str, dict], ...] = ()  # calls made on the question before the model writes
    after_first: str = ""  # said after the first calls' results (reread)
    runs: list[Tool] = field(default_factory=list)  # not declared, but run if called (a second look)
    ban: tuple[str, ...] = ()  # text the answer may not write (in-process backends)
    last_line: bool = False  # the answer ends with the line after a program's output
    recall: bool = False  # the first calls' query adds what the model answers closed book (recall_query)
    call_check: float | None = None  # Options.call_check "auto" means this
    max_tokens: int | None = None  # a cap on Options.max_tokens on this path
    second_look: bool = False  # a program result that cannot stand is worked out again closed book (`doubt`)


_OUTPUT = regex.compile(regex.escape(OUTPUT) + r"\n(.*?)\n```", regex.S)
_VALUE = regex.compile(r"-?\d+(?:/\d+|\.\d+)?")


def doubt(outputs: list[str]) -> str | None:
    """Why the math path's answer cannot stand, in the words that introduce a second look, or
    None. `outputs`: what the calculator wrote into the answer, in order. A program the
    calculator could not run, or one whose last value is zero or less (a count, a price, a time
    left over), is worked out again step by step with closed book, the path a word problem took
    before the math path: on 72 dev word problems 13 answers met this, 5 of them turned right and
    none turned wrong (docs/results.md, "The second look"). An answer with no program is left as
    it is: reasoning in words with exact arithmetic inline, which a closed-book answer would only
    redo without it."""
    blocks = [m.group(1) for text in outputs for m in _OUTPUT.finditer(text)]
    if not blocks:
        return None
    last = blocks[-1].strip()
    if last.startswith("error:"):
        return NOT_RUN
    value = last.splitlines()[-1].rsplit("=", 1)[-1].strip() if last else ""
    if _VALUE.fullmatch(value) and Fraction(value) <= 0:
        return NOT_LIKELY.format(value=value)
    return None


NOT_RUN = "\n\nThe calculator could not run the program, so here it is worked out step by step, without it:\n\n"
NOT_LIKELY = ("\n\nA result of {value} is not a likely answer here, so here it is worked out again step by step, "
              "without the calculator:\n\n")


def reread(question: str, results: int) -> str:
    """What the lookup path says after its `results` first results: the question again, right
    where the model starts to answer (a small reader's commonest failure is to ignore its
    context)."""
    marks = ", ".join(f"[{n}]" for n in range(1, results + 1))
    text = " ".join(question.split())
    if len(text) > REREAD_CHARS:
        text = text[:REREAD_CHARS].rsplit(" ", 1)[0] + " …"
    return f"Answer my question from the search results {marks}, and cite the one you use: {text}"


def recall_query(question: str, draft: str) -> str:
    """The lookup path's first query: the question, then the model's closed-book answer to it
    (`draft`, unverified). A small model that cannot state a detail often knows what the question
    is about, and its guess names the article that holds the answer: on the known-facts set the
    guess lifted BM25's hit@3 from 0.77 to 0.97, at a cost of 0.01 on the factual dev set, whose
    guesses are wrong by construction (docs/results.md, "Recall, then search"). A draft that
    only says the model cannot answer (REFUSAL) is left out: the query is the question."""
    if REFUSAL.search(draft):
        draft = ""
    # stripped after the cut: a query that ended in a space would reach the tool unlike the
    # call the context shows, and its result's header would keep the guess (agent/_loop.py _shown)
    return " ".join(f"{question} {draft}".split())[:QUERY_CHARS].rstrip()


def recall_room(question: str) -> int:
    """Characters of the first query that the closed-book draft can fill after `question` (the
    query is cut at QUERY_CHARS): the recall stops once its draft fills them, which leaves the
    query as it would be, and is not asked when none are left."""
    return QUERY_CHARS - len(" ".join(question.split())) - 1


def routable(tools: list[Tool], inline: list[Tool]) -> bool:
    """Whether a route can change the path: some tool makes a math or lookup path (else every
    question takes the direct path, and the router is not asked)."""
    names = {t.name for t in [*tools, *inline]}
    return CALCULATOR in names or any(name in names for name in LOOKUP_TOOLS)


def choose(route: Route | None, tools: list[Tool], inline: list[Tool], *, token_level: bool = True,
           question: str = "") -> Path:
    """The path for `route` with the Agent's `tools` and `inline` tools. `token_level`: the
    backend generates in this process, so a tool can work inline (an OpenAI-compatible server
    writes the text itself: there the math path declares the calculator instead). `question`:
    the latest user turn, which the lookup path searches for before the model writes."""
    by_name = {t.name: t for t in tools}
    # a calculator that works inline (a stand-in for a caller's own tool does not)
    calculator = by_name.get(CALCULATOR) or next((t for t in inline if t.name == CALCULATOR), None)
    if route == "math" and calculator is not None and calculator.inline is not None:
        if token_level:  # the built-in calculator shows a program's errors, so the model can retry
            worker = worked_calculator if calculator is builtin_calculator else calculator
            return Path("math", [], [worker], MATH_SYSTEM, hint=False, ban=LATEX, last_line=True,
                        max_tokens=MATH_TOKENS, second_look=True)
        return Path("math", [calculator], [], None)
    lookup = [name for name in LOOKUP_TOOLS if name in by_name]
    query = " ".join(question.split())[:QUERY_CHARS]
    if route == "lookup" and lookup and query:
        # sources first, then an answer read from them: no tool declared (a lean prompt; the
        # default model narrated its tool use and browsed aimlessly when they were), the
        # question restated after the results; the browse tools still run if called
        first = tuple((name, {"query": query}) for name in lookup)
        others = [t for t in tools if t.name != CALCULATOR]  # facts are not computed
        return Path("lookup", [], [t for t in inline if t.name != CALCULATOR], LOOKUP_SYSTEM, hint=False,
                    first=first, after_first=reread(question, len(first)), runs=others, recall=True)
    if route is None:
        return Path(None, list(tools), list(inline))
    # the built-in tools serve the other paths: the direct path declares only a caller's own
    # tools (the router knows nothing of them), and with none, the prompt is the bare model's
    # (a built-in that works inline, the calculator finishing `195 × 144 =`, still does: unseen)
    own = [t for t in tools if t.name not in BUILTIN_TOOL_NAMES]
    unseen = [t for t in tools if t.name in BUILTIN_TOOL_NAMES and t.inline is not None]
    return Path("direct", own, [*inline, *(t for t in unseen if t not in inline)], hint=bool(own),
                call_check=CALL_CHECK if own else None)
