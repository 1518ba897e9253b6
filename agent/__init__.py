"""tooltoken: tool calls caught mid-generation on a local GGUF model."""

from ._errors import ConfigError, ModelError, ToolArgumentError, ToolError, TooltokenError
from tooltoken.tools import Source, Tool, ToolOutput, tool

from ._agent import Agent
from ._batch import BatchSummary, run_batch
from ._backend import Backend, LlamaBackend
from ._openai import OpenAIBackend
from ._options import Options
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
    "ModelError",
    "Source",
    "Tool",
    "ToolArgumentError",
    "ToolError",
    "ToolOutput",
    "TooltokenError",
    "tool",
]
