"""Tools: typed functions the model can call (`@tool`), and the built-in ones."""

from ._errors import (
    ConfigError,
    ContextOverflowError,
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
    "ContextOverflowError",
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


def default_tools(search: bool = True, docs: bool | str | None = None) -> list[Tool]:
    """The tools `tooltoken chat` and `ask` start with: the calculator; WebGPT-style browsing
    (search, open, find, quote) over the offline Wikipedia corpus (built on first use); and
    `retrieve` over your own documents when `docs` names an index (a Milvus Lite path or a
    server URI) or, with `docs=None`, when `tooltoken index` has made the default one."""
    from .calculator import calculator

    tools = [calculator]
    if search:
        tools += Browser(default_search()).tools()
    if docs is None:
        from tooltoken.retrieval import data_dir

        docs = (data_dir() / "index" / "milvus.db").exists()
    if docs:
        from tooltoken.retrieval import Retriever

        where = {} if docs is True else {"uri": docs} if "://" in str(docs) else {"path": docs}
        tools.append(retriever_tool(Retriever.open(**where)))
    return tools


__all__ += ["RetrieverBackend", "retriever_tool", "default_tools", "BM25Search", "Browser", "BrowserError", "CalculatorError", "CorpusError", "Document",
            "Hit", "HttpSearch", "SearchBackend", "SearchError", "calculate", "default_search"]
