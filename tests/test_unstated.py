"""Unstated optional values (Options.drop_unstated): optional values that no user turn or tool
result states are left out of a call, and the context shows the call that ran."""

from __future__ import annotations

import pytest

from scripted import ScriptedBackend, chunks
from tooltoken import Agent, Tool, ToolCall
from tooltoken._unstated import drop_unstated

pytestmark = pytest.mark.unit

SCHEMA = {
    "type": "object",
    "properties": {
        "origin": {"type": "string"},
        "unit": {"type": "string"},
        "avoid": {"type": "array", "items": {"type": "string"}},
        "stops": {"type": "integer"},
        "scenic": {"type": "boolean"},
    },
    "required": ["origin"],
}
seen: list[dict] = []


def _route(**kw) -> str:
    seen.append(kw)
    return "312 km"


ROUTE = Tool.from_schema("route", "Driving distance from a place.", SCHEMA, _route)


@pytest.mark.parametrize("request_text, value, kept", [
    ("Find the shortest driving distance between New York City and Washington D.C.", "miles", False),
    ("What's the distance in milesfrom the Earth to the Moon?", "miles", True),  # part of a word
    ("How far is it in kilometers?", "kilometer", True),  # first four letters
    ("Directions avoiding highways and toll roads", "tolls", True),
    ("the shortest path by using a public transportation", "transit", True),
    ("felony convictions in California", "CA", True),  # a short word: the start of one
    ("the potential in December", "Dec", True),
    ("Find me the detailed profile of basketball player Lebron James", "Los Angeles Lakers", False),
    ("Einstein's contribution to science on March 17, 1915", "Physics", False),
    ("Einstein's contribution to science on March 17, 1915", "1915-03-17", True),  # a number as a word
    ("Event on March 17, 1915", "1917", False),
    ("in 24 hour format", "", True),  # nothing to look for
    ("top rated modern sculpture", "high", False),  # other words entirely: not handled, dropped
])
def test_a_value_is_stated_when_one_of_its_words_is(request_text, value, kept):
    args, dropped = drop_unstated(ROUTE, {"origin": "x", "unit": value}, request_text)
    assert ("unit" in args) is kept
    assert dropped == ([] if kept else [f"unit={value!r}"])


def test_required_values_numbers_and_booleans_stay_lists_keep_their_stated_items():
    args, dropped = drop_unstated(
        ROUTE, {"origin": "Atlantis", "stops": 3, "scenic": True, "avoid": ["tolls", "ferries", "highways"]},
        "Route from here avoiding highways and toll roads")
    assert args == {"origin": "Atlantis", "stops": 3, "scenic": True, "avoid": ["tolls", "highways"]}
    assert dropped == ["avoid['ferries']"]
    args, dropped = drop_unstated(ROUTE, {"origin": "x", "avoid": ["ferries"], "unit": "km"}, "Route via km 4")
    assert args == {"origin": "x", "unit": "km"} and dropped == ["avoid['ferries']"]


CALL = '{"name": "route", "arguments": {"origin": "Paris", "unit": "miles", "scenic": true}}'


def test_the_call_runs_without_them_and_the_context_shows_the_call_that_ran():
    backend = ScriptedBackend([["<tool_call>"], chunks(CALL, 5), ["It is 312 km [1]."]])
    agent = Agent(backend, tools=[ROUTE], unsupported_notice=None, drop_unstated=True)
    seen.clear()
    events = list(agent.stream("How far is Lyon by road from Paris?"))
    call = next(e for e in events if isinstance(e, ToolCall))
    assert call.arguments == {"origin": "Paris", "scenic": True} and seen == [call.arguments]
    assert call.raw == CALL  # what the model wrote
    final = events[-1]
    assert any("left out of the route call" in w and "unit='miles'" in w for w in final.warnings)
    context = backend.detokenize(backend.requests[-1][0]).decode()
    assert '{"name": "route", "arguments": {"origin": "Paris", "scenic": true}}' in context
    assert "miles" not in context


def test_values_from_a_tool_result_or_an_earlier_turn_are_stated():
    second = '{"name": "route", "arguments": {"origin": "Paris", "unit": "km"}}'
    backend = ScriptedBackend([["<tool_call>"], chunks(CALL, 5), ["<tool_call>"], chunks(second, 5), ["Done [2]."]])
    agent = Agent(backend, tools=[ROUTE], unsupported_notice=None, drop_unstated=True)
    seen.clear()
    agent.run("How far is Lyon by road from Paris?")
    assert seen == [{"origin": "Paris", "scenic": True}, {"origin": "Paris", "unit": "km"}]  # "312 km"
    backend = ScriptedBackend([["<tool_call>"], chunks(CALL, 5), ["Done [1]."]])
    agent = Agent(backend, tools=[ROUTE], unsupported_notice=None, drop_unstated=True)
    seen.clear()
    agent.run([{"role": "user", "content": "I count in miles."}, {"role": "assistant", "content": "Noted."},
               {"role": "user", "content": "How far is Lyon from Paris?"}])
    assert seen == [{"origin": "Paris", "unit": "miles", "scenic": True}]


def test_off_by_default():
    backend = ScriptedBackend([["<tool_call>"], chunks(CALL, 5), ["It is 312 km [1]."]])
    seen.clear()
    final = Agent(backend, tools=[ROUTE], unsupported_notice=None).run("How far is Lyon from Paris?")
    assert seen == [{"origin": "Paris", "unit": "miles", "scenic": True}] and final.warnings == []


def test_the_users_own_system_prompt_states_values_the_tool_declarations_do_not():
    for system, kept in [("The user counts in miles.", True), (None, False)]:
        backend = ScriptedBackend([["<tool_call>"], chunks(CALL, 5), ["Done [1]."]])
        agent = Agent(backend, tools=[ROUTE], unsupported_notice=None, drop_unstated=True, system=system)
        seen.clear()
        agent.run("How far is Lyon from Paris?")
        assert ("unit" in seen[0]) is kept
    backend = ScriptedBackend([["<tool_call>"], chunks(CALL, 5), ["Done [1]."]])
    seen.clear()
    Agent(backend, tools=[ROUTE], unsupported_notice=None, drop_unstated=True).run(
        [{"role": "system", "content": "Distances in miles."}, {"role": "user", "content": "Lyon from Paris?"}])
    assert seen[0]["unit"] == "miles"
    backend = ScriptedBackend([["<tool_call>"], chunks(CALL, 5), ["Done [1]."]])
    seen.clear()
    Agent(backend, tools=[ROUTE], unsupported_notice=None, drop_unstated=True).run(
        "Lyon from Paris?", history=[{"role": "system", "content": "Distances in miles."}])
    assert seen[0]["unit"] == "miles"  # a system prompt at the head of the history counts as well
