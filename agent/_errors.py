"""The one exception tree of tooltoken. Every error raised on purpose is a `TooltokenError`.

    TooltokenError                    our bug or the user's bad input: raised, with what to do
    ├── ConfigError                   bad settings, bad arguments to a public function
    ├── ModelError                    a model pack or GGUF file is missing, broken or unloadable
    ├── ToolError                     a tool cannot be built or called as asked
    │   ├── ToolDefinitionError       a function cannot become a tool (no types, bad name)
    │   ├── ToolArgumentError         arguments do not fit the tool's schema
    │   └── CalculatorError, SearchError, BrowserError, CorpusError   (tooltoken.tools)
    └── RetrievalError                (tooltoken.retrieval)
        ├── RetrievalConfigError      bad arguments or settings; a missing optional extra
        │   └── FilterError           a metadata filter names an unknown field or holds a bad value
        ├── EmbedderError             an embedding model is missing, not local, or cannot be loaded
        └── StoreError                the vector store cannot be opened, read or written
            └── StoreLockedError      another process holds the Milvus Lite directory

"The model got it wrong" is not an exception: a bad call, a tool that raises, a tool that times
out all become a tool result the model can read, and the loop goes on; a limit (a full context,
too many calls) ends the answer with a `Final` whose stop reason says which (see _loop.py).

This module imports nothing of tooltoken: every room (tools/ and retrieval/ too) may import it,
and it is the only arrow the one-way rule allows upward (tests/test_layers.py).
"""

from __future__ import annotations

__all__ = ["ConfigError", "ModelError", "ToolArgumentError", "ToolDefinitionError", "ToolError", "TooltokenError"]


class TooltokenError(Exception):
    """Base class of every error tooltoken raises on purpose."""


class ConfigError(TooltokenError):
    """Bad settings or arguments given by the user."""


class ModelError(TooltokenError):
    """A model pack or GGUF file is missing, corrupt or cannot be loaded."""


class ToolError(TooltokenError):
    """A tool could not be defined or called."""


class ToolDefinitionError(ToolError):
    """A Python function cannot be turned into a tool."""


class ToolArgumentError(ToolError):
    """Arguments given to a tool do not fit its schema."""
