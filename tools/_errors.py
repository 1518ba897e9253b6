"""The errors tools raise, from the one tree in `tooltoken._errors` (drawn in its docstring)."""

from __future__ import annotations

from tooltoken._errors import ConfigError, ModelError, ToolArgumentError, ToolDefinitionError, ToolError, TooltokenError

__all__ = ["ConfigError", "ModelError", "ToolArgumentError", "ToolDefinitionError", "ToolError", "TooltokenError"]
