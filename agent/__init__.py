"""tooltoken: tool calls caught mid-generation on a local GGUF model."""

from tooltoken.tools import (
    ConfigError,
    ContextOverflowError,
    ModelError,
    Source,
    Tool,
    ToolArgumentError,
    ToolError,
    ToolOutput,
    TooltokenError,
    tool,
)

from ._agent import Agent
from ._batch import BatchSummary, run_batch
from ._backend import Backend, LlamaBackend
from ._openai import OpenAIBackend
from ._controller import Options
from ._sampling import Sampling
from ._events import Citation, Event, Final, TextDelta, ToolCall, ToolResult, Usage

__all__ = [
    "Agent",
    "BatchSummary",
    "run_batch",
    "Backend",
    "Citation",
    "Event",
    "Final",
    "LlamaBackend",
    "OpenAIBackend",
    "Options",
    "Sampling",
    "TextDelta",
    "ToolCall",
    "ToolResult",
    "Usage",
    "ConfigError",
    "ContextOverflowError",
    "ModelError",
    "Source",
    "Tool",
    "ToolArgumentError",
    "ToolError",
    "ToolOutput",
    "TooltokenError",
    "tool",
]
