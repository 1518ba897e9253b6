"""The unsupported-answer notice's rule (agent/_support.py) on labelled answers: its false
positives (the notice on a supported answer) and false negatives (no notice on an unsupported one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tooltoken._support import supported

pytestmark = pytest.mark.unit

LABELLED = [json.loads(line) for line in (Path(__file__).parent / "data" / "notice_labelled.jsonl").read_text().splitlines()]
VERDICT = {True: "supported", False: "unsupported", None: "none"}


def test_the_notice_on_labelled_answers() -> None:
    got = [VERDICT[supported(c["answer"], c["question"], c["results"])] for c in LABELLED]
    false_positive = [c["answer"] for c, g in zip(LABELLED, got) if g == "unsupported" and c["label"] != "unsupported"]
    false_negative = [c["answer"] for c, g in zip(LABELLED, got) if g != "unsupported" and c["label"] == "unsupported"]
    print(f"notice on {len(LABELLED)} labelled answers: {len(false_positive)} false positives, "
          f"{len(false_negative)} false negatives")
    assert len(LABELLED) >= 35
    assert not false_positive and not false_negative, (false_positive, false_negative)


@pytest.mark.parametrize("digit", list(range(10)))
def test_single_digit_results_are_matched(digit: int) -> None:
    assert supported(f"The answer is {digit}.", "How many are left?", [f"left = {digit}"]) is True


def test_figures_are_compared_as_values() -> None:
    assert supported("It costs $1,250.50.", "How much?", ["total = 2501/2 = 1250.5"]) is True
    assert supported("It arrives at 9:05.", "When?", ["arrive = 9:05"]) is True
    assert supported("It arrives at 9:50.", "When?", ["arrive = 9:05"]) is False


def test_a_figure_rounded_to_its_decimals_is_the_result_s() -> None:
    assert supported("It takes about 17.54 hours.", "How long?", ["t = 17.538461538462"]) is True
    assert supported("It takes about 17.5 hours.", "How long?", ["t = 17.538461538462"]) is True
    assert supported("It takes about 17.6 hours.", "How long?", ["t = 17.538461538462"]) is False
    assert supported("It takes 18 hours.", "How long?", ["t = 17.538461538462"]) is False  # whole: exact
    assert supported("A third is 0.33.", "How much?", ["x = 1/3 = 0.333333333333"]) is True


def test_code_blocks_are_not_claims() -> None:
    answer = "```python\nx = 41 + 1\n```\n```output\nx = 42\n```\nThe answer is 42."
    assert supported(answer, "What is 41 + 1?", ["x = 42"]) is True
    assert supported("```python\nx = 99\n```\nDone.", "q", ["x = 42"]) is None
