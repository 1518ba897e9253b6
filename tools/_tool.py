"""A tool is a typed Python function plus its docstring.

    >>> @tool
    ... def add(a: int, b: int = 1) -> int:
    ...     '''Add two integers.'''
    ...     return a + b
    >>> add.name, add.parameters["required"]
    ('add', ['a'])
    >>> add.invoke({"a": 2})
    ToolOutput(content='3', sources=[])

The argument schema comes from the signature through a pydantic model with `extra="forbid"`, so
the same object validates what a model wrote and produces the JSON schema that the call grammar
and the prompt's tool declarations are built from.

A tool returns a string, any JSON-serialisable value, or a `ToolOutput` carrying `Source`s; the
sources are what citations point at (the controller numbers them [1], [2], ... per answer).
"""

from __future__ import annotations

import inspect
import typing
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import pydantic

from ._errors import ToolArgumentError, ToolDefinitionError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass
class Source:
    """Something a tool result came from, that a citation can point at.

    `id` is stable across runs (a path with line range, a URL, a corpus id); `text` is what a
    quote must occur in verbatim to count as verified.
    """

    id: str
    title: str = ""
    location: str = ""
    text: str = ""


@dataclass
class ToolOutput:
    content: str
    sources: list[Source] = field(default_factory=list)


@dataclass
class Tool:
    """A callable the model may use. Build one with `@tool`, or `Tool.from_schema` for a tool
    declared only by JSON schema (such as the BFCL eval's functions)."""

    name: str
    description: str
    fn: Callable[..., Any]
    args_model: type[pydantic.BaseModel] | None = None
    timeout: float | None = None
    json_schema: dict[str, Any] | None = None
    # Narrower argument schema for the call grammar, read at each call (e.g. quote: only
    # sentences of the open document). The prompt still declares `parameters`.
    grammar_parameters: Callable[[], dict[str, Any] | None] | None = None
    # Use inside the answer's own text (Toolformer-style): given the answer so far, the call's
    # arguments and the text to write next when the text ends in this tool's inline trigger, else
    # None. Asked at every token that could end a trigger, so it must be fast and bounded.
    inline: Callable[[str], tuple[dict[str, Any], str] | None] | None = None

    @classmethod
    def from_schema(
        cls, name: str, description: str, parameters: dict[str, Any], fn: Callable[..., Any], timeout: float | None = None
    ) -> "Tool":
        if not _NAME.match(name):
            raise ToolDefinitionError(f"tool name {name!r} must match {_NAME.pattern}")
        if parameters.get("type", "object") != "object":
            raise ToolDefinitionError(f"tool {name!r}: parameters must be a JSON object schema")
        return cls(name=name, description=description, fn=fn, timeout=timeout, json_schema=dict(parameters))

    @property
    def parameters(self) -> dict[str, Any]:
        """JSON schema of the arguments (an object, no extra keys)."""
        if self.json_schema is not None:
            return self.json_schema
        assert self.args_model is not None
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        schema.setdefault("required", [])
        schema["additionalProperties"] = False
        return schema

    def call_parameters(self) -> dict[str, Any]:
        """The argument schema a call is generated under, right now."""
        narrowed = self.grammar_parameters() if self.grammar_parameters else None
        return narrowed or self.parameters

    def schema(self) -> dict[str, Any]:
        """The OpenAI-style declaration, as chat templates expect it."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def validate(self, arguments: Any) -> dict[str, Any]:
        if not isinstance(arguments, dict):
            raise ToolArgumentError(f"{self.name}: arguments must be a JSON object, got {type(arguments).__name__}")
        if self.args_model is None:
            return _check_shallow(self.name, self.parameters, arguments)
        try:
            model = self.args_model.model_validate(arguments)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}" for e in exc.errors()
            )
            raise ToolArgumentError(f"{self.name}: {problems}") from None
        return {k: getattr(model, k) for k in type(model).model_fields}

    def invoke(self, arguments: Any) -> ToolOutput:
        """Validate, call, and normalise the return value. Exceptions from the function propagate."""
        result = self.fn(**self.validate(arguments))
        return to_output(result)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def to_output(result: Any) -> ToolOutput:
    if isinstance(result, ToolOutput):
        return result
    if isinstance(result, str):
        return ToolOutput(result)
    try:
        return ToolOutput(json.dumps(result, ensure_ascii=False, default=str))
    except (TypeError, ValueError):
        return ToolOutput(str(result))


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> Any:
    """Turn a typed function into a `Tool`. Usable bare (`@tool`) or with options (`@tool(name=...)`)."""

    def build(f: Callable[..., Any]) -> Tool:
        tool_name = name or f.__name__
        if not _NAME.match(tool_name):
            raise ToolDefinitionError(f"tool name {tool_name!r} must match {_NAME.pattern}")
        doc = inspect.getdoc(f) or ""
        desc = description if description is not None else doc.strip()
        fields: dict[str, Any] = {}
        try:  # string annotations (`from __future__ import annotations`) resolved in f's module
            hints = typing.get_type_hints(f, include_extras=True)
        except Exception:  # noqa: BLE001 - a name only a type checker knows: keep the raw annotation
            hints = {}
        for pname, param in inspect.signature(f).parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise ToolDefinitionError(f"tool {tool_name!r}: *args/**kwargs cannot be described to a model")
            if param.annotation is inspect.Parameter.empty:
                raise ToolDefinitionError(f"tool {tool_name!r}: parameter {pname!r} needs a type annotation")
            annotation = hints.get(pname, f.__annotations__.get(pname, param.annotation))
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[pname] = (annotation, pydantic.Field(default, description=_param_doc(doc, pname)))
        model = pydantic.create_model(  # type: ignore[call-overload]
            f"{tool_name}_args", __config__=pydantic.ConfigDict(extra="forbid"), **fields
        )
        return Tool(name=tool_name, description=desc, fn=f, args_model=model, timeout=timeout)

    if fn is not None:
        return build(fn)
    return build


def _param_doc(doc: str, pname: str) -> str | None:
    """Pick `pname: text` out of a Google/Sphinx-style docstring, if present."""
    m = re.search(rf"^\s*(?::param\s+)?{re.escape(pname)}\s*(?:\([^)]*\))?\s*:\s*(.+)$", doc, re.M)
    return m.group(1).strip() if m else None


def _check_shallow(name: str, schema: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
    """Required keys present, no unknown keys. The call grammar enforces the rest at generation."""
    props = schema.get("properties", {})
    missing = [k for k in schema.get("required", []) if k not in arguments]
    unknown = [k for k in arguments if props and k not in props]
    if missing or unknown:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"unknown {', '.join(unknown)}"] if unknown else []
        raise ToolArgumentError(f"{name}: " + "; ".join(parts))
    return dict(arguments)
