"""Per-answer tool state: each answer (a server request, a batch question, a LangChain call, a
chat turn) browses on its own, over the shared search index."""

from __future__ import annotations

from typing import Any

__all__ = ["fresh_tools", "per_answer"]


def per_answer(agent: Any) -> Any:
    """`agent` with its per-answer tool state made new: a shallow copy (same model, lock, options)
    whose `Browser` tools come from new `Browser`s over the same search backends. The index is
    shared; the last results and the open document are not, so one client's (or question's)
    browsing never shows in another's answer, nor in its call grammar. Other tools are shared as
    they are. Returns `agent` itself when it has no Browser tools (or no `tools` at all: any
    object with a `stream` method will do where an Agent is expected).
    """
    import copy

    old = getattr(agent, "tools", None) or []
    tools = fresh_tools(old)
    if all(a is b for a, b in zip(tools, old)):
        return agent
    clone = copy.copy(agent)
    clone.tools = tools
    return clone


def fresh_tools(tools: list[Any]) -> list[Any]:
    """`tools` with each Browser's tools replaced by the same-named action of a new Browser.

    A tool keeps its own name, description and timeout (it may have been renamed or given a
    timeout after `Browser.tools()`); only the function and its call grammar are rebound."""
    from dataclasses import replace

    from tooltoken.tools import Browser

    made: dict[int, dict[str, Any]] = {}  # id(old browser) -> {function name: new tool}
    out = []
    for t in tools:
        browser = _browser_of(t, Browser)
        if browser is None:
            out.append(t)
            continue
        if id(browser) not in made:
            new = Browser(browser.backend, k=browser.k, page_lines=browser.page_lines, width=browser.width)
            made[id(browser)] = {x.fn.__name__: x for x in new.tools()}
        twin = made[id(browser)].get(t.fn.__name__)
        if twin is None:  # not one of the four actions: share it rather than guess
            out.append(t)
            continue
        out.append(replace(t, fn=twin.fn, grammar_parameters=twin.grammar_parameters))
    return out


def _browser_of(t: Any, browser_type: type) -> Any:
    """The Browser a tool from `Browser.tools()` acts on (its function closes over it), or None."""
    bound = getattr(t.grammar_parameters, "__self__", None)
    if isinstance(bound, browser_type):
        return bound
    for cell in getattr(t.fn, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, browser_type):
            return value
    return None
