"""Per-answer tool state: each answer browses on its own, over the shared search index.

A tool declares state that belongs to one answer in `Tool.state` (an object with `fresh()`);
`Agent.stream` calls `fresh_tools` for every answer, so two answers streamed at once from one
Agent (server requests, batch questions, LangChain calls, chat turns) never see each other's
search results or open page, nor get them in their call grammar.
"""

from __future__ import annotations

from dataclasses import replace

from tooltoken.tools import Tool

__all__ = ["fresh_tools"]


def fresh_tools(tools: list[Tool]) -> list[Tool]:
    """`tools` with each stateful tool rebound to a fresh copy of its state: the same-named
    action (by function name) of the tools the fresh state makes. Tools that share one state
    share one fresh copy; stateless tools are returned as they are.

    A tool keeps its own name, description and timeout (it may have been renamed or given a
    timeout after it was made); only its function, call grammar and state are new."""
    made: dict[int, dict[str, Tool]] = {}  # id(old state) -> {function name: the tool on the new state}
    out = []
    for t in tools:
        fresh = getattr(t.state, "fresh", None)
        if fresh is None:
            out.append(t)
            continue
        if id(t.state) not in made:
            new = fresh()
            made[id(t.state)] = {x.fn.__name__: x for x in new.tools()}
        twin = made[id(t.state)].get(t.fn.__name__)
        if twin is None:  # not one of the state's own actions: share it rather than guess
            out.append(t)
            continue
        out.append(replace(t, fn=twin.fn, grammar_parameters=twin.grammar_parameters, state=twin.state))
    return out
