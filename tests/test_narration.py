"""The narration detector (evals/metrics.py `narrates`) on labelled answers."""

from __future__ import annotations

import pytest

from tooltoken.evals.metrics import narrates

pytestmark = pytest.mark.unit

NARRATES = [
    'To find the class of ship, I used the `search` function with the query "Majesty of the Seas class of ship".',
    "The search results provided information about the ship.",
    "The function call was calculator(expression='2+2').",
    "The result came from tool number [1].",
    "The calculator returned 14040.",
    "I called the search tool to find it.",
    "Let me use the calculator for this.",
    "The error message indicates that the calculator function does not recognize mean.",
    "We will use the search function to look it up.",
    "<tool_call>\n{\"name\": \"search\"}",
    "According to the tool result [1], it is Paris.",
    "The `open` function returned the page.",
    "To answer this question, I'll use the `calculator` function to compute it.",
    "I will use the search tool.",
]
PLAIN = [
    "Leo Tolstoy wrote War and Peace [1].",
    "The train arrives at 11:38.",
    "Nina has 84 minutes of calls left this month.",
    "Michelangelo painted the ceiling between 1508 and 1512 [1].",
    "The results do not say when the bridge was built.",
    "Here is a haiku:\nsoft rain on the roof\n...",
    "def add(a, b):\n    return a + b",
    "The function returns the sum of a list.",  # a coding answer about a function is not narration
    "The Sovereign class [2].",
    "I think you should learn Python first.",
    "Call your landlord and explain the problem politely.",
    "I run every morning before work.",
    "We can run the numbers again: 12 * 3 = 36.",
    "I'll call you when the report is ready.",
]


@pytest.mark.parametrize("answer", NARRATES)
def test_narration_is_detected(answer: str) -> None:
    assert narrates(answer)


@pytest.mark.parametrize("answer", PLAIN)
def test_answers_are_not_narration(answer: str) -> None:
    assert not narrates(answer)


def test_the_framework_s_notice_is_not_narration() -> None:
    from tooltoken import Options

    assert not narrates(f"It is 12.\n\n{Options.unsupported_notice}")
