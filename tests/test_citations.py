"""A ✓ means support: a citation is verified only when a source of the cited result holds the
sentence it marks and is about the question (agent/_citations.py)."""

import pytest

from tooltoken import ToolCall, ToolResult
from tooltoken._citations import check_citations

pytestmark = pytest.mark.unit

HITS = [
    {"id": "enwiki:Fish_tank", "title": "Fish tank", "location": "https://w/Fish_tank", "text": "A fish tank holds fish."},
    {"id": "enwiki:Aquarium", "title": "Aquarium", "location": "https://w/Aquarium",
     "text": "The term aquarium was coined by the English naturalist Philip Henry Gosse in 1854."},
]
QUESTION = "Who coined the term aquarium?"


def search(content="\n".join(h["text"] for h in HITS), sources=HITS, n=1):
    return [ToolCall(f"c{n}", "search", {"query": QUESTION})], [ToolResult(f"c{n}", "search", content, n, sources=sources)]


def test_the_citation_names_the_hit_that_holds_the_sentence():
    calls, results = search()
    [c] = check_citations("Philip Henry Gosse coined it [1].", calls, results, QUESTION)
    assert c.verified and c.source_id == "enwiki:Aquarium" and c.title == "Aquarium"
    [c] = check_citations("Darwin did not. It was Philip Henry Gosse. [1]", calls, results, QUESTION)
    assert c.verified and c.source_id == "enwiki:Aquarium"  # a marker after the sentence's stop


def test_a_sentence_the_cited_result_does_not_hold_is_not_verified():
    calls, results = search()
    [c] = check_citations("Charles Darwin coined it in 1859 [1].", calls, results, QUESTION)
    assert not c.verified and "does not hold" in c.reason


def test_a_marker_before_its_sentence_and_a_marker_per_sentence():
    calls, results = search()
    cs = check_citations("According to [1], Gosse coined it in 1854. It means water [1].", calls, results, QUESTION)
    assert cs[0].verified and cs[0].source_id == "enwiki:Aquarium"


def test_a_result_that_is_not_about_the_question_never_supports_it():
    calls = [ToolCall("c1", "calculator", {"expression": "1000 / 10000"})]
    results = [ToolResult("c1", "calculator", "0.1", 1)]
    question = "How long do zorblax refunds take?"
    [c] = check_citations("The answer is 0.1 [1].", calls, results, question)
    assert not c.verified and "not about the question" in c.reason
    assert check_citations("The answer is 0.1.", calls, results, question) == []  # nor inferred
    # the same figure for a question the calculation is about
    [c] = check_citations("It is 0.1 [1].", calls, results, "What is 1000 / 10000?")
    assert c.verified


def test_a_quote_must_occur_in_a_hit():
    calls, results = search()
    [c] = check_citations('It was "coined by the English naturalist Philip Henry Gosse" [1].', calls, results, QUESTION)
    assert c.verified and c.quote.startswith("coined by")
    [c] = check_citations('It was "coined by Darwin" [1].', calls, results, QUESTION)
    assert not c.verified and "quote" in c.reason


def test_an_unmarked_fact_gets_an_inferred_citation_naming_its_source():
    calls, results = search()
    [c] = check_citations("The term was coined by Philip Henry Gosse.", calls, results, QUESTION)
    assert c.inferred and c.verified and c.source_id == "enwiki:Aquarium" and c.quote == "Philip Henry Gosse"
    [c] = check_citations("In 1854, maybe.", calls, results, QUESTION)
    assert c.quote == "1854" and c.source_id == "enwiki:Aquarium"
    hits = [{"id": "w:Bird", "title": "Frigatebird", "text": "Its wingspan reaches 2.3 m."}]
    calls, results = search("Its wingspan reaches 2.3 m.", hits)
    [c] = check_citations("The wingspan is 2.3 metres.", calls, results, "What is the frigatebird's wingspan?")
    assert c.quote == "2.3" and c.inferred
    assert check_citations("Charles Darwin coined it in 1901.", calls, results, QUESTION) == []
    assert check_citations("Aquarium is the term.", calls, results, QUESTION) == []  # the question's own words


def test_a_fact_stated_before_a_marker_that_fails_is_still_inferred_but_never_the_marked_sentence():
    calls, results = search()
    # the marker sits on a sentence that only points at the result; the fact before it came from it
    cs = check_citations("The term was coined by Philip Henry Gosse. This is stated in the Aquarium Handbook [1].",
                         calls, results, QUESTION)
    assert [(c.marker, c.verified, c.inferred) for c in cs] == [(1, False, False), (1, True, True)]
    assert cs[1].quote == "Philip Henry Gosse" and cs[1].source_id == "enwiki:Aquarium"
    # the sentence its marker failed on gets no ✓ from that result by inference
    cs = check_citations("Philip Henry Gosse coined it in 1901 [1].", calls, results, QUESTION)
    assert [(c.marker, c.verified) for c in cs] == [(1, False)]


def test_markers_that_point_at_nothing_or_at_a_failed_tool_are_kept_unverified():
    calls, results = search()
    results[0].error = True
    cs = check_citations("Gosse [1]. Darwin [7].", calls, results, QUESTION)
    assert [(c.marker, c.verified) for c in cs] == [(1, False), (7, False)]
    assert cs[0].reason == "the tool failed" and cs[1].reason == "no tool result has this number"


COLOURS = [
    {"id": "enwiki:Blue", "title": "Blue", "text": "Blue is one of the three primary colours in the RGB colour model."},
    {"id": "enwiki:Orange_(colour)", "title": "Orange (colour)",
     "text": "Orange is the colour between yellow and red. In the RGB colour model, it is a tertiary colour."},
]
ORANGE = "In the RGB colour model, what type of colour is orange classified as?"


def test_an_unmarked_sentence_with_no_new_name_is_cited_by_its_words():
    calls = [ToolCall("c1", "search", {"query": ORANGE})]
    results = [ToolResult("c1", "search", "…", 1, sources=COLOURS)]
    # "Orange" is the question's own word (written there in lower case): the claim is "tertiary"
    [c] = check_citations("Orange is classified as a tertiary colour in the RGB colour model.", calls, results, ORANGE)
    assert c.inferred and c.verified and c.source_id == "enwiki:Orange_(colour)" and c.quote == "tertiary"
    # a sentence no source holds gets no citation
    assert check_citations("Orange is classified as a warm pastel shade.", calls, results, ORANGE) == []


def test_numbers_in_words_are_figures():
    from tooltoken._support import figures_of, supported

    assert figures_of("an anthology of twenty-four short stories, Twenty four, forty one") == {"24", "41"}
    assert figures_of("one of the three-attempt lifts; someone; seventy") == {"3", "70"}
    tales = "The Canterbury Tales are an anthology of twenty-four short stories by Geoffrey Chaucer."
    assert supported("The Canterbury Tales have 24 stories.", "How many stories make up The Canterbury Tales?",
                     [tales]) is True
    calls = [ToolCall("c1", "search", {"query": "How many stories make up The Canterbury Tales?"})]
    results = [ToolResult("c1", "search", tales, 1, sources=[{"id": "enwiki:The_Canterbury_Tales", "text": tales}])]
    [c] = check_citations("It has 24 stories [1].", calls, results, "How many stories make up The Canterbury Tales?")
    assert c.verified


def test_a_fact_the_query_named_is_cited_only_where_a_document_holds_the_sentence():
    # the lookup path's query holds the model's closed-book guess beside the question
    guess = f"{QUESTION} It was coined by Philip Henry Gosse in 1854."
    calls, results = search()
    calls = [ToolCall("c1", "search", {"query": guess})]
    [c] = check_citations("Philip Henry Gosse coined it in 1854.", calls, results, QUESTION)
    assert c.inferred and c.verified and c.source_id == "enwiki:Aquarium" and c.quote == "Philip Henry Gosse"
    # the guess's year is not the document's: the sentence is not held, so no citation
    calls = [ToolCall("c1", "search", {"query": f"{QUESTION} Philip Henry Gosse in 1859."})]
    assert check_citations("Philip Henry Gosse coined it in 1859.", calls, results, QUESTION) == []
    # a tool without sources (its text is its own output) never cites what its call named
    calls = [ToolCall("c1", "lookup", {"query": "Philip Henry Gosse"})]
    results = [ToolResult("c1", "lookup", "Philip Henry Gosse", 1)]
    assert check_citations("Philip Henry Gosse coined it.", calls, results, QUESTION) == []
