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

__all__ = [
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
