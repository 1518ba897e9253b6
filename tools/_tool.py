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
and the prompt's tool declarations are built from. The call grammar's copy is bounded
(`call_parameters`, `bound_schema`): every string and array a call can write has a length, so a
model that loops inside a string is stopped by the grammar, not by the call's token budget.

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

# Bounds of the call grammar where the schema sets none (a tool may declare its own: `max_string`,
# `max_items`). 256 characters hold a search query, a find text or a calculator expression
# (its own limit is 1,000) with room to spare; the call's token budget may cut them further.
MAX_STRING = 256
MAX_ITEMS = 16


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
    # Longest string (characters) and array (items) a call may write where the argument schema
    # gives no maxLength / maxItems; None: MAX_STRING / MAX_ITEMS.
    max_string: int | None = None
    max_items: int | None = None
    # State that belongs to one answer, shared by the tools that act on it (a Browser's last
    # results and open page): an object with `fresh()`, a new one over the same shared resources
    # (the index), and `tools()`, the tools acting on it. `Agent.stream` gives each answer fresh
    # state; tools sharing one state object share one fresh copy (tooltoken._per_answer).
    state: Any = None

    @classmethod
    def from_schema(
        cls, name: str, description: str, parameters: dict[str, Any], fn: Callable[..., Any], timeout: float | None = None,
        max_string: int | None = None, max_items: int | None = None,
    ) -> "Tool":
        if not _NAME.match(name):
            raise ToolDefinitionError(f"tool name {name!r} must match {_NAME.pattern}")
        if parameters.get("type", "object") != "object":
            raise ToolDefinitionError(f"tool {name!r}: parameters must be a JSON object schema")
        return cls(name=name, description=description, fn=fn, timeout=timeout, json_schema=dict(parameters),
                   max_string=max_string, max_items=max_items)

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
        """The argument schema a call is generated under, right now: `parameters` (or what
        `grammar_parameters` narrows it to) with a length on every string and array."""
        narrowed = self.grammar_parameters() if self.grammar_parameters else None
        return bound_schema(narrowed or self.parameters, self.max_string or MAX_STRING, self.max_items or MAX_ITEMS)

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
    max_string: int | None = None,
    max_items: int | None = None,
) -> Any:
    """Turn a typed function into a `Tool`. Usable bare (`@tool`) or with options (`@tool(name=...)`).

    `max_string` / `max_items`: the longest string and array a call may write where a parameter
    sets no bound of its own (`Annotated[str, Field(max_length=...)]`); see `MAX_STRING`."""

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
        return Tool(name=tool_name, description=desc, fn=f, args_model=model, timeout=timeout,
                    max_string=max_string, max_items=max_items)

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


# --- the call grammar's bounded schema ---------------------------------------------------------

# String formats that llama.cpp's converter writes as fixed-length rules (date, time, uuid): no
# maxLength needed. Any other format, and any pattern, is written as a bounded plain string.
_FIXED_FORMATS = {"date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5"}
_RECURSION = 3  # a schema that refers to itself is unrolled this deep, then any scalar


def bound_schema(schema: dict[str, Any], max_string: int = MAX_STRING, max_items: int = MAX_ITEMS) -> dict[str, Any]:
    """A copy of `schema` in which every value a call can write has a bounded length.

        >>> ids = {"type": "array", "items": {"type": "integer"}}
        >>> bound_schema({"type": "object", "properties": {"q": {"type": "string"}, "ids": ids}}, 50, 4)["properties"]
        {'q': {'type': 'string', 'maxLength': 50}, 'ids': {'type': 'array', 'items': {'type': 'integer'}, 'maxItems': 4}}

    A string gets `maxLength` (its own if it has one, else `max_string`), an array `maxItems`
    (else `max_items`). The rest is rewritten into the forms the grammar converter bounds:
    `$ref`s are inlined; a list of types becomes `anyOf`; a free-form object (`dict[str, X]`)
    gets `maxProperties` and `propertyNames.maxLength`; an object with declared properties
    takes only those; an unconstrained value (`Any`) becomes a bounded string, number, boolean,
    null, or a bounded array or object of those. A `pattern` is dropped: the grammar cannot
    bound it, and the tool still checks it when it validates the call. Enums, consts, numbers,
    booleans and nulls are bounded already. Applying it twice changes nothing.
    """
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _bound(schema, defs, max_string, max_items, ())


def _bound(node: Any, defs: dict[str, Any], s: int, n: int, refs: tuple[str, ...]) -> dict[str, Any]:
    if node is True or not isinstance(node, dict):
        return _any(s, n, 1)
    node = {k: v for k, v in node.items() if k not in ("$defs", "definitions")}
    ref = node.pop("$ref", None)
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name not in defs or refs.count(name) >= _RECURSION:
            return _any(s, n, 0)
        return _bound({**defs[name], **node}, defs, s, n, refs + (name,))
    if "const" in node or "enum" in node:
        return node
    kind = node.get("type")
    if isinstance(kind, list):
        rest = {k: v for k, v in node.items() if k != "type"}
        return {"anyOf": [_bound({**rest, "type": t}, defs, s, n, refs) for t in kind]}
    for key in ("anyOf", "oneOf"):
        if key in node:
            node[key] = [_bound(alt, defs, s, n, refs) for alt in node[key]]
            return node
    if "allOf" in node:
        return _bound(_merge(node, defs), defs, s, n, refs)
    if kind == "string":
        if node.get("format") in _FIXED_FORMATS and "pattern" not in node:
            return node
        node.pop("pattern", None)
        node.pop("format", None)
        node["maxLength"] = node.get("maxLength", s)
        return node
    if kind in ("number", "integer", "boolean", "null"):
        return node
    if kind == "array" or (kind is None and ("items" in node or "prefixItems" in node)):
        node["type"] = "array"
        if isinstance(node.get("items"), list):  # a tuple in the older spelling
            node["prefixItems"] = node.pop("items")
        if isinstance(node.get("prefixItems"), list):  # a tuple: a fixed number of items
            node["prefixItems"] = [_bound(x, defs, s, n, refs) for x in node["prefixItems"]]
            node.pop("items", None)
        else:
            node["items"] = _bound(node.get("items", True), defs, s, n, refs)
            node["maxItems"] = node.get("maxItems", n)
        return node
    if kind == "object" or (kind is None and ("properties" in node or "additionalProperties" in node)):
        node["type"] = "object"
        props = node.get("properties") or {}
        if props:  # declared keys only: a call is generated to the signature
            node["properties"] = {k: _bound(v, defs, s, n, refs) for k, v in props.items()}
            node["additionalProperties"] = False
        elif node.get("additionalProperties", True) is False:
            node["properties"] = {}
        else:  # a map such as dict[str, int]
            node.pop("properties", None)
            node["additionalProperties"] = _bound(node.get("additionalProperties", True), defs, s, n, refs)
            node["maxProperties"] = node.get("maxProperties", n)
            names = node.get("propertyNames") if isinstance(node.get("propertyNames"), dict) else {}
            node["propertyNames"] = {"maxLength": names.get("maxLength", s)}
        return node
    return _any(s, n, 1)


def _any(s: int, n: int, depth: int) -> dict[str, Any]:
    """Any JSON value, bounded: scalars, and `depth` levels of arrays and maps around them."""
    options: list[dict[str, Any]] = [
        {"type": "string", "maxLength": s}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}
    ]
    if depth > 0:
        inner = _any(s, n, depth - 1)
        options += [
            {"type": "array", "items": inner, "maxItems": n},
            {"type": "object", "additionalProperties": inner, "maxProperties": n, "propertyNames": {"maxLength": s}},
        ]
    return {"anyOf": options}


def _merge(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """`allOf` as one object schema (its parts' properties and required keys), as the grammar
    converter reads it; a single part (pydantic's `allOf: [$ref]` with a description) as itself."""
    parts = node.pop("allOf")
    if len(parts) == 1:
        return {**node, **parts[0]}
    merged: dict[str, Any] = {**node, "type": "object", "properties": {}, "required": list(node.get("required", []))}
    for part in parts:
        ref = part.get("$ref") if isinstance(part, dict) else None
        if isinstance(ref, str):
            part = defs.get(ref.rsplit("/", 1)[-1], {})
        if isinstance(part, dict):
            merged["properties"].update(part.get("properties") or {})
            merged["required"] += [k for k in part.get("required", []) if k not in merged["required"]]
    return merged
