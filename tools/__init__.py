"""Tools: typed functions the model can call (`@tool`), and the built-in ones."""

from collections.abc import Sequence

from ._errors import (
    ConfigError,
    ModelError,
    ToolArgumentError,
    ToolDefinitionError,
    ToolError,
    TooltokenError,
)
from ._tool import Source, Tool, ToolOutput, tool, to_output
from .browser import Browser, BrowserError
from .calculator import CalculatorError, calculate
from .corpus import CorpusError, default_search
from .http_search import HttpSearch
from .retriever import RetrieverBackend, retriever_tool
from .search import BM25Search, Document, Hit, SearchBackend, SearchError

__all__ = [
    "ConfigError",
    "ModelError",
    "Source",
    "Tool",
    "ToolArgumentError",
    "ToolDefinitionError",
    "ToolError",
    "ToolOutput",
    "TooltokenError",
    "tool",
    "to_output",
]


BUILTIN_TOOLS = ("calculator", "browser")  # browser: search, open, find, quote over the offline corpus


#: The names of the tools `default_tools` can give (the answer policy's paths are built from them).
BUILTIN_TOOL_NAMES = frozenset({"calculator", "search", "open", "find", "quote", "retrieve"})


def default_tools(names: Sequence[str] = BUILTIN_TOOLS, docs: bool | str | None = None) -> list[Tool]:
    """The built-in tools, the one list every interface builds from (chat, ask, run, serve, and
    `run_batch` in a library): `names` among BUILTIN_TOOLS, in that order (the calculator; WebGPT-
    style browsing: search, open, find, quote over the offline Wikipedia corpus, built on first
    use), then `retrieve` over your own documents whenever an index exists: `docs` names one (a
    Milvus Lite path or a server URI), or, with `docs=None`, `tooltoken index` has made the
    default one. `docs=False`: no `retrieve`."""
    from ._deferred import Deferred
    from ._errors import ConfigError
    from .calculator import calculator

    unknown = [n for n in names if n not in BUILTIN_TOOLS]
    if unknown:
        raise ConfigError(f"unknown tool(s) {unknown} (valid tools: {', '.join(BUILTIN_TOOLS)})")
    tools: list[Tool] = []
    for name in names:  # the heavy parts (the corpus's index, Milvus) are built on a first search
        tools += [calculator] if name == "calculator" else Browser(Deferred(default_search)).tools()
    if docs is None:
        from tooltoken.retrieval import data_dir

        docs = (data_dir() / "index" / "milvus.db").exists()
    if docs:
        from tooltoken.retrieval import Retriever

        where = {} if docs is True else {"uri": docs} if "://" in str(docs) else {"path": docs}
        tools.append(retriever_tool(Deferred(lambda: Retriever.open(**where))))
    return tools


__all__ += ["BUILTIN_TOOLS", "BUILTIN_TOOL_NAMES", "RetrieverBackend", "retriever_tool", "default_tools", "BM25Search", "Browser", "BrowserError", "CalculatorError", "CorpusError", "Document",
            "Hit", "HttpSearch", "SearchBackend", "SearchError", "calculate", "default_search"]
