"""The scorers of the math, qa and retrieval suites, against hand-made cases."""

from fractions import Fraction

import pytest
from tooltoken.evals.metrics import (
    citation_precision,
    contains_match,
    extract_number,
    normalize_answer,
    numeric_match,
    parse_number,
    recall_at_k,
    reciprocal_rank,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text, value", [
    ("42", 42), ("-7", -7), ("−7", -7), ("1,234", 1234), ("-1,234.50", Fraction(-2469, 2)), ("$12", 12),
    ("-$3", -3), ("3/4", Fraction(3, 4)), ("2.5.", Fraction(5, 2)), ("25.000", 25),
])
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1/0", "12,34"])
def test_parse_number_refuses(text):
    assert parse_number(text) is None


@pytest.mark.parametrize("reply, value", [
    ("12 x 2 = 24 volleyball players; 24 + 34 + 12 = 70.\nAnswer: 70", 70),
    ("Answer: 70\n(that is 70 students out of 100)", 70),  # the number right after "Answer:"
    ("So the answer is -1,515.", -1515),
    ("The total is \\boxed{342}.", 342),
    ("First 3 + 4 = 7, then 7 * 2 = 14", 14),  # no marker: the last number
    ("Answer: $57.00 per hour", 57),
    ("5 - 3 = 2", 2),  # a minus between numbers is not a sign
    ("no numbers here", None),
])
def test_extract_number(reply, value):
    assert extract_number(reply) == value


def test_numeric_match_is_exact():
    assert numeric_match("Answer: 25.0", "25")
    assert numeric_match("Answer: 1,000,000", 1000000)
    assert not numeric_match("Answer: 24.99", "25")
    assert not numeric_match("I don't know", "25")
    assert numeric_match("Answer: 0.5", "1/2")


def test_normalize_answer_like_squad():
    assert normalize_answer("The  Pacific Ocean!") == "pacific ocean"
    assert normalize_answer("Leo Tolstoy's novel") == "leo tolstoy s novel"


def test_contains_match_first_20_words_and_word_boundaries():
    assert contains_match("War and Peace was written by Leo Tolstoy [1].", ["Leo Tolstoy", "Tolstoy"])
    assert contains_match("It's the pacific.", ["Pacific Ocean", "Pacific"])
    assert not contains_match("Marseille is a port.", ["Mars"])  # whole words only
    late = " ".join(["word"] * 25) + " Tolstoy"
    assert not contains_match(late, ["Tolstoy"])
    assert contains_match(late, ["Tolstoy"], first_words=None)
    assert not contains_match("anything", [""])  # an empty gold answer matches nothing


def test_citation_precision_counts_verified_citations_only():
    gold = ["Leo Tolstoy"]
    citations = [
        {"verified": True, "sources": [{"id": "a", "title": "War and Peace", "text": "by the Russian author Leo Tolstoy"}]},
        {"verified": True, "sources": [{"id": "b", "title": "Anna", "text": "a novel"}]},
        {"verified": False, "sources": [{"id": "c", "text": "Leo Tolstoy"}]},
        {"verified": True, "sources": []},
    ]
    assert citation_precision(citations, gold) == (1, 3)
    assert citation_precision([], gold) == (0, 0)
    title_only = [{"verified": True, "sources": [{"id": "d", "title": "Leo Tolstoy", "text": ""}]}]
    assert citation_precision(title_only, gold) == (1, 1)


def test_recall_and_reciprocal_rank():
    ranked = ["a", "b", "c", "d"]
    assert recall_at_k(ranked, ["c", "x"], 3) == 0.5
    assert recall_at_k(ranked, ["d"], 3) == 0.0
    assert recall_at_k(ranked, [], 3) == 0.0
    assert reciprocal_rank(ranked, ["b", "d"], 4) == 0.5
    assert reciprocal_rank(ranked, ["d"], 3) == 0.0
    assert reciprocal_rank(ranked, ["a"], 1) == 1.0


@pytest.mark.unit
@pytest.mark.parametrize(
    ("answer", "question", "number"),
    [
        ("Ana has 15 eggs left after baking 11 batches of her cake recipe.", "48 eggs, 11 batches of 3 each?", "15"),
        ("The cyclist will need 8 hours to ride a 120 km route.", "45 km in 3 hours; how long for 120 km?", "8"),
        ("```output\nanswer = 26\n```\nShe needs 26 skeins for 9 shawls.", "9 shawls of 2 skeins and 4 hats", "26"),
        ("Step 1: 12 * 2 = 24.\nAnswer: 24", "12 pairs of 2", "24"),
        ("It is 96 inches.", "The giraffe is 96 inches tall. How tall?", "96"),  # only given numbers: the last
    ],
)
def test_the_final_line_states_the_answer_not_the_question_s_numbers(answer, question, number):
    from fractions import Fraction

    from tooltoken.evals.metrics import extract_number

    assert extract_number(answer, question) == Fraction(number)


@pytest.mark.unit
def test_the_last_fresh_number_of_the_final_line():
    from fractions import Fraction

    from tooltoken.evals.metrics import extract_number

    assert extract_number("So the number of adults needed is:\n\n19 - 12 = 7", "8 children need 19 adults; 12 signed up") == 7
    assert extract_number("The mean of the 7 numbers left after removing 29 is 13.", "8 numbers, mean 15, remove 29") == Fraction(13)
