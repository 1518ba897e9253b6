"""The exception tree of tooltoken.

    TooltokenError                  our bug or the user's bad input: raised, with what to do
    ├── ConfigError                 bad settings, bad arguments to a public function
    ├── ModelError                  a model pack or GGUF file is missing, broken or unloadable
    ├── ContextOverflowError        the prompt alone does not fit the model's context
    └── ToolError                   a tool cannot be built or called as asked
        ├── ToolDefinitionError     a function cannot become a tool (no types, bad name)
        └── ToolArgumentError       arguments do not fit the tool's schema
    CalculatorError (ToolError)     defined in tooltoken.tools.calculator

"The model got it wrong" is not an exception: a bad call, a tool that raises, a tool that times
out all become a tool result the model can read, and the loop continues (see the controller).
The root lives here, in the lowest room that needs it, so tools/ never imports the controller.
"""

from __future__ import annotations


class TooltokenError(Exception):
    """Base class of every error tooltoken raises on purpose."""


class ConfigError(TooltokenError):
    """Bad settings or arguments given by the user."""


class ModelError(TooltokenError):
    """A model pack or GGUF file is missing, corrupt or cannot be loaded."""


class ContextOverflowError(TooltokenError):
    """The prompt does not fit in the model's context window."""


class ToolError(TooltokenError):
    """A tool could not be defined or called."""


class ToolDefinitionError(ToolError):
    """A Python function cannot be turned into a tool."""


class ToolArgumentError(ToolError):
    """Arguments given to a tool do not fit its schema."""
