"""The answer policy (agent/_policy.py) on a scripted backend: each path, step by step.

A fixed router stands in for the real one (the router is measured on its own:
tests/test_router.py and `tooltoken bench router`)."""

from __future__ import annotations

import pytest

from scripted import ScriptedBackend, chunks
from tooltoken import Agent, Final, TextDelta, ToolCall, ToolResult
from tooltoken._policy import (LOOKUP_SYSTEM, MATH_SYSTEM, NOT_LIKELY, NOT_RUN, QUERY_CHARS, RECALL_TOKENS,
                               doubt, recall_query, recall_room)
from tooltoken.tools import Browser, ConfigError, Document, Hit
from tooltoken.tools.calculator import calculator

pytestmark = pytest.mark.unit

DOCS = {"tolstoy": Document("tolstoy", "War and Peace", "War and Peace is a novel by Leo Tolstoy, published in 1869."),
        "defoe": Document("defoe", "Robinson Crusoe", "Robinson Crusoe is a novel by Daniel Defoe.")}


class Shelf:
    def __init__(self, docs=DOCS):
        self.docs, self.queries = docs, []

    def search(self, query, k=5):
        self.queries.append(query)
        return [Hit(d.id, d.title, d.text, 1.0, d.location) for d in self.docs.values()][:k]

    def get(self, id):
        return self.docs[id]


def agent(scripts, route, shelf=None, **kw):
    backend = ScriptedBackend(scripts)
    tools = [calculator, *Browser(shelf or Shelf()).tools()]
    return Agent(backend, tools=tools, router=lambda q: route, **kw), backend


def prompt_of(backend, n=0) -> str:
    return backend.detokenize(backend.requests[n][0]).decode()


def test_math_path_runs_the_program_and_ends_with_the_line_after_its_output():
    program = ["```python\n", "pens = 12 * 3\n", "answer = pens\n", "``", "`\n"]
    a, backend = agent([program, ["They cost ", "36", " dollars.\n", "```python\n", "again = 1\n"]], "math")
    events = list(a.stream("Pens cost 3 dollars each. How much do 12 pens cost?"))
    final = events[-1]
    assert isinstance(final, Final) and final.route == "math" and final.stop_reason == "stop"
    assert final.answer.endswith("```output\npens = 36\nanswer = 36\n```\nThey cost 36 dollars.\n")
    kinds = [type(e).__name__ for e in events if not isinstance(e, TextDelta)]
    assert kinds == ["ToolCall", "ToolResult", "Final"] and events[[type(e) for e in events].index(ToolCall)].inline
    prompt = prompt_of(backend)
    assert MATH_SYSTEM in prompt and "<tools>" not in prompt  # no tool declared: a short prompt
    assert backend.bans[0] and backend.bans[1]  # LaTeX is never sampled; after the output no new block
    assert "(No tool result" not in final.answer  # 36 is what the calculator returned


def test_math_path_shows_a_program_s_error_and_the_second_is_the_last():
    from tooltoken.tools._calc_inline import GIVE_UP, REWRITE

    bad = ["```python\n", "from datetime import time\n", "x = 2 * 3\n", "``", "`\n"]
    a, _ = agent([bad, bad[1:], ["It arrives at 11:38.\n", "```output\n", "made up\n"]], "math")
    final = a.run("A train leaves at 9:03 and takes 2h 35m. When does it arrive?")
    # asked to write it again, the model is in the new program's fence already
    assert f"{REWRITE}\n```\n```python\nfrom datetime import time\n" in final.answer
    # every program gets the calculator's answer, so the model never writes an output block of
    # its own; after the second error the answer ends with the line that follows it
    assert final.answer.count("error: line 1") == 2
    assert final.answer.count(REWRITE) == 1 and final.answer.count(GIVE_UP) == 1
    assert "made up" not in final.answer
    assert final.answer.rstrip().endswith("(No tool result supports this answer; it may be a guess.)")
    assert NOT_RUN in final.answer  # and a second look, closed book, follows (its script is empty here)


def test_math_path_works_a_result_that_cannot_stand_out_again_closed_book():
    program = ["```python\n", "john = 292 - 130\n", "left = john - 292\n", "``", "`\n"]
    a, backend = agent([program, ["John has -130 meters left.\n"], ["John gets (292 - 130) / 2 = ", "81 meters."]], "math")
    events = list(a.stream("John and Dave share 292 m of fence; Dave gets 130 m more. How much does John get?"))
    final = events[-1]
    assert isinstance(final, Final) and final.route == "math" and final.stop_reason == "stop"
    look = NOT_LIKELY.format(value="-130")
    assert final.answer.endswith(f"John has -130 meters left.\n{look}John gets (292 - 130) / 2 = 81 meters.\n\n"
                                 "(No tool result supports this answer; it may be a guess.)")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == final.answer  # streamed as it came
    # the second look is the direct path's closed-book prompt: no program asked for, no tool
    assert MATH_SYSTEM in prompt_of(backend, 0) and MATH_SYSTEM not in prompt_of(backend, 2)
    assert "<tools>" not in prompt_of(backend, 2) and final.timings["second_look_s"] > 0
    assert final.usage.completion_tokens == len(program) + 1 + 2
    # a result that stands gets none
    a, backend = agent([program[:2] + ["left = 292 - john\n", "``", "`\n"], ["John has 130 meters left.\n"], ["x"]],
                       "math")
    assert a.run("How much is left?").answer.endswith("John has 130 meters left.\n") and len(backend.requests) == 2


@pytest.mark.parametrize("outputs, why", [
    ([], None),  # no program: words with exact arithmetic inline, left as they are
    ([" 28080"], None),
    (["```output\nerror: line 1: unknown name 'x'\nThe calculator cannot run this program.\n```\n"], NOT_RUN),
    (["```output\na = 5\n```\n", "```output\nerror: line 2: unknown name 'if'\nWrite the program again\n```\n"],
     NOT_RUN),
    (["```output\nplants = 350\nleft = 0\n0\n```\n"], NOT_LIKELY.format(value="0")),
    (["```output\nb = -7/2 = -3.5\n```\n"], NOT_LIKELY.format(value="-3.5")),
    (["```output\nleft = 46\n46\n```\n"], None),
    (["```output\narrival = 11:38\n```\n"], None),
    (["```output\nerror: x\n```\n", "```output\nleft = 46\n```\n"], None),
])
def test_what_the_math_path_doubts(outputs, why):
    assert doubt(outputs) == why


def test_math_answer_ends_at_a_line_that_states_the_number_before_introducing_steps():
    program = ["```python\n", "km = 4 * 400 * 5 / 1000\n", "answer = km\n", "``", "`\n"]
    line = ["Maya runs 8 kilometers in all. The calculation is as follows:\n", "\n", "1. She runs 4 laps.\n"]
    a, _ = agent([program, line], "math")
    final = a.run("Maya runs 4 laps of a 400 m track on each of 5 days. How many km is that?")
    assert final.answer.endswith("```\nMaya runs 8 kilometers in all. The calculation is as follows:\n")
    assert "(No tool result" not in final.answer
    # "The answer is:" alone introduces the number: the answer goes on to the line that states it
    a, _ = agent([program, ["The answer is:\n", "8 km.\n", "More.\n"]], "math")
    assert a.run("Maya runs 4 laps of a 400 m track on each of 5 days. How many km is that?").answer.endswith(
        "The answer is:\n8 km.\n")


def test_math_answer_stating_another_number_gets_the_notice():
    program = ["```python\n", "answer = 12 * 3\n", "``", "`\n"]
    a, _ = agent([program, ["They cost 38 dollars.\n"]], "math")
    final = a.run("Pens cost 3 dollars each. How much do 12 pens cost?")
    assert final.answer.endswith("(No tool result supports this answer; it may be a guess.)")


def test_lookup_path_searches_the_question_first_then_answers_with_a_citation():
    shelf = Shelf()
    # first the model answers closed book (one line, never shown): the query adds it to the question
    a, backend = agent([chunks("Leo Tolstoy.\nMore text"), chunks("Leo Tolstoy wrote it [1].")], "lookup", shelf)
    events = list(a.stream("Who wrote War and Peace?"))
    assert isinstance(events[0], ToolCall) and events[0].name == "search"
    query = "Who wrote War and Peace? Leo Tolstoy."
    assert events[0].arguments == {"query": query} and shelf.queries == [query]
    assert isinstance(events[1], ToolResult) and events[1].source == 1 and "Leo Tolstoy" in events[1].content
    final = events[-1]
    assert final.route == "lookup" and final.answer == "Leo Tolstoy wrote it [1]."
    assert [c.verified for c in final.citations][:1] == [True]
    assert final.citations[0].source_id == "tolstoy" and final.citations[0].title == "War and Peace"
    assert final.timings["recall_s"] >= 0
    recall = prompt_of(backend, 0)  # the bare model's prompt: no tool, no lookup instructions
    assert recall.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>") and LOOKUP_SYSTEM not in recall
    prompt = prompt_of(backend, 1)
    # the reader is never shown the guess (it copied it): the call and the result's header show the question
    assert LOOKUP_SYSTEM in prompt and "Leo Tolstoy." not in prompt and 'Results for "Who wrote War and Peace?"' in prompt
    assert '{"query": "Who wrote War and Peace?"}' in prompt
    assert "<tools>" not in prompt  # a lean prompt: nothing declared, facts are not computed
    # the model saw the search as its own call, then the result and the question again,
    # before writing a word
    assert prompt.rstrip().endswith("<|im_start|>assistant") and "<tool_response>" in prompt
    assert "</tool_response>\nAnswer my question from the search results [1], and cite the one you use: " \
        "Who wrote War and Peace?<|im_end|>" in prompt


def test_the_support_check_withdraws_a_string_supported_citation_the_model_judges_unstated():
    # "Leo Tolstoy" occurs in the source, so the citation is verified as string support; asked
    # on the side whether the source states that answer, the model says no: the ✓ goes
    a, backend = agent([chunks("Tolstoy.\n"), chunks("Leo Tolstoy wrote it [1].")], "lookup", support_check=2.0)
    backend.judgements = [-2.0]
    final = a.run("Who wrote War and Peace?")
    assert final.support == -2.0 and final.timings["support_s"] >= 0
    assert [c.verified for c in final.citations] == [False]
    assert "the model judged not (yes-no log-odds -2.00 < 2)" in final.citations[0].reason
    assert final.answer.endswith("(No tool result supports this answer; it may be a guess.)")
    side = backend.detokenize(backend.checked[-1]).decode()
    assert side.startswith("<|im_start|>system\nYou check answers against sources.<|im_end|>")
    assert "Question: Who wrote War and Peace?\nAnswer: Leo Tolstoy wrote it." in side and "War and Peace:" in side
    # judged yes: the ✓ stays, no notice; off (the default): never asked
    a, backend = agent([chunks("Tolstoy.\n"), chunks("Leo Tolstoy wrote it [1].")], "lookup", support_check=2.0)
    backend.judgements = [3.0]
    final = a.run("Who wrote War and Peace?")
    assert final.support == 3.0 and final.citations[0].verified and final.answer == "Leo Tolstoy wrote it [1]."
    a, backend = agent([chunks("Tolstoy.\n"), chunks("Leo Tolstoy wrote it [1].")], "lookup")
    final = a.run("Who wrote War and Peace?")
    assert final.support is None and final.citations[0].verified and not backend.checked


def test_the_support_check_rejects_bad_settings():
    a, _ = agent([], "lookup")
    for bad in ("on", "auto", True, [1]):
        with pytest.raises(ConfigError, match="support_check"):
            a.run("Who wrote War and Peace?", support_check=bad)


def test_lookup_recall_is_bounded_and_an_empty_one_leaves_the_question_alone():
    shelf = Shelf()
    a, _ = agent([[], chunks("Leo Tolstoy wrote it [1].")], "lookup", shelf)
    assert a.run("Who wrote War and Peace?").answer == "Leo Tolstoy wrote it [1]."
    assert shelf.queries == ["Who wrote War and Peace?"]
    long = "Who wrote War and Peace, the long novel about the French invasion of Russia in 1812, and when? " * 3
    shelf = Shelf()
    a, backend = agent([chunks("Tolstoy [1].")], "lookup", shelf)
    assert a.run(long).answer == "Tolstoy [1]."
    # the question fills the query: no recall is asked
    assert shelf.queries == [" ".join(long.split())[:QUERY_CHARS].strip()] and len(backend.requests) == 1


def test_the_recall_stops_when_its_draft_fills_the_query():
    question, draft = "Who wrote War and Peace?", "Leo Tolstoy wrote the novel War and Peace " * 10  # one line
    shelf = Shelf()
    a, backend = agent([chunks(draft, 10), chunks("Leo Tolstoy wrote it [1].")], "lookup", shelf)
    played, generate = [], backend.generate

    def counted(*args, **kwargs):
        played.append(0)
        for token in generate(*args, **kwargs):
            played[-1] += 1
            yield token

    backend.generate = counted
    a.run(question)
    assert shelf.queries == [recall_query(question, draft)]  # the query it would be, cut at QUERY_CHARS
    room = recall_room(question)
    assert room == QUERY_CHARS - len(question) - 1 and played[0] <= room // 10 + 2 < RECALL_TOKENS


def test_the_reader_never_sees_the_guess_where_the_query_is_cut_at_a_space():
    # the query is cut at QUERY_CHARS; where the cut fell right after a word, the query as run
    # ended in a space, the tool tidied it, and its header kept the guess (the reader copied it)
    question = "Who wrote War and Peace?"
    pad = next(n for n in range(12) if
               " ".join(f"{question} {'y' * n} {'Chekhov wrote it ' * 20}".split())[QUERY_CHARS - 1] == " ")
    draft = f"{'y' * pad} {'Chekhov wrote it ' * 20}"
    shelf = Shelf()
    a, backend = agent([chunks(draft, 10), chunks("Leo Tolstoy wrote it [1].")], "lookup", shelf)
    a.run(question)
    assert shelf.queries == [recall_query(question, draft)] and not shelf.queries[0].endswith(" ")
    prompt = prompt_of(backend, 1)
    assert "Chekhov" not in prompt and f'Results for "{question}"' in prompt


@pytest.mark.parametrize("draft", ["As an AI language model, I do not have access to your leave policy.",
                                   "I'm sorry, but I cannot answer that.", "I don't know."])
def test_a_recall_that_only_refuses_leaves_the_question_alone(draft):
    shelf = Shelf()
    a, _ = agent([chunks(draft), chunks("Leo Tolstoy wrote it [1].")], "lookup", shelf)
    a.run("Who wrote War and Peace?")
    assert shelf.queries == ["Who wrote War and Peace?"]


def test_a_cancelled_lookup_stops_in_the_recall():
    import threading

    cancel = threading.Event()
    cancel.set()
    a, backend = agent([chunks("Leo Tolstoy."), chunks("Leo Tolstoy wrote it [1].")], "lookup")
    final = a.run("Who wrote War and Peace?", cancel=cancel)
    assert final.stop_reason == "cancelled" and final.answer == "" and not final.tool_calls


def test_lookup_path_says_when_the_sources_do_not_hold_it():
    a, _ = agent([chunks("Sir John Wolfe Barry."), chunks("The results do not say who built the bridge.")], "lookup",
                 Shelf({"x": Document("x", "Weather", "It rained in Oslo.")}))
    final = a.run("Who built the Tyne Bridge?")
    assert final.answer == "The results do not say who built the bridge."  # a decline: no notice


def test_direct_path_declares_only_the_caller_s_own_tools():
    a, backend = agent([chunks("Rain on the roof.")], "direct")
    final = a.run("Write a haiku about rain.")
    assert final.route == "direct" and final.answer == "Rain on the roof."
    prompt = prompt_of(backend)  # the built-ins serve the other paths: the bare model's prompt
    assert "<tools>" not in prompt and "Use a tool" not in prompt
    assert prompt.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>")

    from tooltoken.tools import tool

    @tool
    def weather(city: str) -> str:
        """Today's weather in a city.

        city: the city's name
        """
        return "rain"

    backend = ScriptedBackend([chunks("Rain.")])
    a = Agent(backend, tools=[calculator, *Browser(Shelf()).tools(), weather], router=lambda q: "direct")
    assert a.run("Will it rain in Oslo?").route == "direct"
    prompt = prompt_of(backend)  # the router knows nothing of a caller's tool: it stays declared
    assert '"name": "weather"' in prompt and '"name": "calculator"' not in prompt and '"name": "search"' not in prompt


def test_opting_out_and_forcing_calls_are_not_routed():
    a, backend = agent([chunks("Fine.")], "lookup", policy="plain")
    assert a.run("Who wrote War and Peace?").route is None and '"name": "calculator"' in prompt_of(backend)
    call = chunks('{"name": "calculator", "arguments": {"expression": "2+2"}}')
    a, _ = agent([call, chunks("It is 4 [1].")], "lookup")  # forced calls: no route, no recall
    final = a.run("What is 2+2?", tool_choice="calculator")
    assert final.route is None and final.tool_calls[0].name == "calculator"


def test_a_path_needs_its_tools():
    backend = ScriptedBackend([chunks("Tolstoy.")])
    a = Agent(backend, tools=[calculator], router=lambda q: "lookup")  # no search: the direct path
    assert a.run("Who wrote War and Peace?").route == "direct"
    backend = ScriptedBackend([chunks("36.")])
    a = Agent(backend, tools=Browser(Shelf()).tools(), router=lambda q: "math")  # no calculator
    assert a.run("12 * 3?").route == "direct"


def test_empty_question_is_a_clear_error():
    from tooltoken.tools import ConfigError

    a, _ = agent([], "direct")
    with pytest.raises(ConfigError, match="empty"):
        a.run("   ")


def test_router_names_and_bad_routers():
    from tooltoken._router import RuleRouter
    from tooltoken.tools import ConfigError

    assert isinstance(Agent(ScriptedBackend([]), router="rules").router, RuleRouter)
    with pytest.raises(ConfigError):
        Agent(ScriptedBackend([]), router="coin flip")
    with pytest.raises(ConfigError):
        Agent(ScriptedBackend([]), policy="random")


def test_an_empty_answer_after_a_result_gets_the_notice():
    a, _ = agent([chunks("Tolstoy."), []], "lookup")
    final = a.run("Who wrote War and Peace?")
    assert final.answer.strip() == "(No tool result supports this answer; it may be a guess.)"


def test_math_path_ends_where_the_model_begins_an_output_block_itself():
    bad = ["```python\n", "from datetime import time\n", "x = 2 * 3\n", "``", "`\n"]
    a, _ = agent([bad, ["``", "`output\n", "It arrives at 11:38.\n", "```\n"]], "math")
    final = a.run("A train leaves at 9:03 and takes 2h 35m. When does it arrive?")
    assert "11:38" not in final.answer and any("output itself" in w for w in final.warnings)


def test_math_path_caps_the_answer_s_tokens():
    from tooltoken._policy import MATH_TOKENS

    endless = ["```python\n", *["x = 1\n"] * (MATH_TOKENS + 50)]
    a, _ = agent([endless], "math")
    final = a.run("Pens cost 3 dollars each. How much do 12 pens cost?")
    assert final.stop_reason == "length" and str(MATH_TOKENS) in final.message
    a, _ = agent([endless], "math", max_tokens=16)  # a lower cap of the caller's holds
    assert "(16)" in a.run("Pens cost 3 dollars each. How much do 12 pens cost?").message
