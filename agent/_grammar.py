"""The call grammar: JSON schema → GBNF, with every call bounded by the call's token budget.

A call is generated under a grammar built from the tools' argument schemas. Two things keep a
small model that loops inside a call from running into the budget and leaving no call at all:

1. Every string and array has a length (`tooltoken.tools._tool.bound_schema`, applied by
   `Tool.call_parameters` with the tool's own defaults, and again here with the general ones),
   and `fit_schema` scales those lengths down until the longest text the grammar allows fits the
   budget. `tighter` cuts them again for a retry.
2. `repeating` says when the string being written (`open_string`) has begun to repeat itself,
   so generation can stop long before the bound.

    >>> schema = {"type": "object", "properties": {"q": {"type": "string", "maxLength": 100}}}
    >>> longest(schema)  # {"q": "...."}: braces, key, 100 characters (each maybe an escape)
    213
    >>> fit_schema(schema, 64)["properties"]["q"]["maxLength"]
    25
    >>> longest(fit_schema(schema, 64)) <= 64
    True
    >>> tighter(fit_schema(schema, 64))["properties"]["q"]["maxLength"]
    12

Lengths are counted in characters of the generated text, each at most one token. A string of
`maxLength` n may take 2n + 2 characters (every character an escape such as `\\n`); `\\u`
escapes are left out of the grammar (any character but a control character can be written as
itself), or a string could take 6n. Not handled: a model that writes one character as several
byte tokens (an emoji as four) can still take more tokens than characters; the controller's
`max_call_tokens` stop stays as the backstop for that.

Why not llama-cpp-python's converter alone (0.3.36, `llama_cpp/llama_grammar.py`): it honours
`maxLength`/`minLength` and `minItems`/`maxItems`, and bounds numbers (16 digits a part) and
whitespace (one optional space), but its string character is `[^"\\\\]`, which lets a raw line
break or other control character into a JSON string (invalid JSON: the parse fails and the
call is lost, as in issue 20); upstream llama.cpp forbids them. Its free-form objects
(`dict[str, X]`, `Any`) repeat without bound. The converter below is llama-cpp-python's with
those rules replaced; the rest is its own.
"""

from __future__ import annotations

import json
import math
from typing import Any

from tooltoken.tools._tool import bound_schema

__all__ = ["fit_schema", "longest", "open_string", "repeating", "schema_to_gbnf", "tighter"]

# Characters of the longest text of each fixed-length rule (values as the converter below writes
# them; the trailing optional space included).
_NUMBER = 1 + 16 + 1 + 16 + 1 + 1 + 3 + 1  # -integral.decimal e- exponent (3 digits here), space
_INTEGER = 1 + 16 + 1
_FIXED = {"boolean": 6, "null": 5, "number": _NUMBER, "integer": _INTEGER}
_FORMAT = {"date": 10, "time": 18, "date-time": 29}  # HH:MM:SS.sss+HH:MM is 18
_UUID = 36

# JSON's string character: no quote, backslash or control character (DEL too, as upstream
# llama.cpp has it); escapes of one letter only.
_CHAR = r'[^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt])'
# An exponent of three digits at most (past 308 a double is infinite anyway).
_NUMBER_RULE = '("-"? integral-part) ("." decimal-part)? ([eE] [-+]? [0-9] [0-9]? [0-9]?)? space'


def schema_to_gbnf(schema: dict[str, Any]) -> str:
    """JSON schema → GBNF with llama-cpp-python's converter, keys in declaration order, every
    string and array bounded (`bound_schema`), strings valid JSON.

    Its `_format_literal` (0.3.36) does not escape backslashes, so a `const`/`enum` string that
    contains a quote (a sentence offered to `quote`) made a grammar llama.cpp cannot parse; the
    subclass escapes them as upstream llama.cpp does.
    """
    from llama_cpp.llama_grammar import PRIMITIVE_RULES, RESERVED_NAMES, BuiltinRule, SchemaConverter, _build_repetition

    ours = {"char": BuiltinRule(_CHAR, []), "number": BuiltinRule(_NUMBER_RULE, ["integral-part", "decimal-part"])}

    class _Converter(SchemaConverter):
        def _format_literal(self, literal: str) -> str:
            escaped = literal.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace('"', '\\"')
            return f'"{escaped}"'

        def _add_primitive(self, name: str, rule: Any) -> str:
            return super()._add_primitive(name, ours.get(name, rule))

        def visit(self, schema: dict[str, Any], name: str) -> str:
            if not _is_map(schema):
                return super().visit(schema, name)
            # a map (dict[str, X]): at most maxProperties keys of at most propertyNames.maxLength
            prefix = f"{name}-" if name else ""
            key = self.visit({"type": "string", "maxLength": schema["propertyNames"]["maxLength"]}, f"{prefix}key")
            value = self.visit(schema["additionalProperties"], f"{prefix}value")
            kv = self._add_rule(f"{prefix}kv", f'{key} ":" space {value}')
            body = _build_repetition(kv, schema.get("minProperties", 0), schema["maxProperties"], separator_rule='"," space')
            return self._add_rule(name + "-" if name in RESERVED_NAMES else name or "root", f'"{{" space {body} "}}" space')

    assert "char" in PRIMITIVE_RULES and "number" in PRIMITIVE_RULES  # the rules replaced above
    bounded = bound_schema(schema)
    order = ["name", "arguments", *_property_names(bounded)]  # otherwise keys come out sorted
    converter = _Converter(
        prop_order={name: i for i, name in enumerate(order)}, allow_fetch=False, dotall=False, raw_pattern=False
    )
    converter.visit(converter.resolve_refs(bounded, "stdin"), "")
    return converter.format_grammar()


def longest(schema: dict[str, Any]) -> int:
    """Characters of the longest text the grammar of `schema` (`schema_to_gbnf`) allows."""
    return _longest(bound_schema(schema))


def fit_schema(schema: dict[str, Any], budget_tokens: int) -> dict[str, Any]:
    """`schema` bounded, with string and array bounds scaled down (never below their minimum)
    until the longest call the grammar allows is at most `budget_tokens` characters.

    The alternatives of a top-level union (a forced "required" call: one per tool) are fitted
    one by one, so a tool with long strings does not shorten another's. When even the minimum
    lengths do not fit, the longest options of enums are dropped (a sentence too long to quote
    within the budget); what still does not fit after that is returned as tight as it goes
    (check with `longest`): a schema of many required numbers, for instance.
    """
    return _fit(bound_schema(schema), budget_tokens)


def tighter(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every string and array bound halved (never below its minimum): the grammar
    of a retry after a call that did not close or looped."""
    return _scale(bound_schema(schema), 0.5)


def repeating(text: str, min_span: int = 12, times: int = 3, long_span: int = 32) -> bool:
    """Has `text` started to loop? True when it ends in `times` copies of one span of at least
    `min_span` characters, or in two copies of a span of at least `long_span` characters.

        >>> repeating("1234 * 5678 = 1234 * 5678 = 1234 * 5678 = ")
        True
        >>> repeating("2 * 2 * 2 * 2 * 2 * 2 * 2 * 2")  # 2^8 written out: 29 characters of it
        False
        >>> repeating("}}</tool_call> The result is 1234. You can call }}</tool_call> The result is 1234. You can call ")
        True

    The defaults let an expression repeat a short term (`2 * 2 * 2 ...`) for 35 characters, and
    stop a string that writes one sentence twice (the loop of issue 20).
    """
    tail = text[-1024:]  # a loop is seen within its first copies; no need to look further back
    for span in range(min_span, len(tail) // 2 + 1):
        copies = 2 if span >= long_span else times
        if span * copies <= len(tail) and tail.endswith(tail[-span:] * copies):
            return True
    return False


def open_string(text: str) -> str | None:
    """The content written so far of the JSON string that `text` (a JSON value being written)
    ends inside, or None when it ends outside a string.

        >>> open_string('{"name": "calculator", "arguments": {"expression": "12 * ')
        '12 * '
        >>> open_string('{"name": "calculator"') is None
        True
    """
    start, escape = -1, False
    for i, ch in enumerate(text):
        if start >= 0:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                start = -1
        elif ch == '"':
            start = i + 1
    return text[start:] if start >= 0 else None


# --- lengths -------------------------------------------------------------------------------


def _is_map(node: Any) -> bool:
    return (isinstance(node, dict) and isinstance(node.get("additionalProperties"), dict)
            and "maxProperties" in node and not node.get("properties"))


def _longest(node: dict[str, Any]) -> int:
    """The longest text of a bounded schema, rule by rule as the converter writes it."""
    if "const" in node:
        return len(json.dumps(node["const"]))
    if "enum" in node:
        return max((len(json.dumps(v)) for v in node["enum"]), default=0)
    for key in ("anyOf", "oneOf"):
        if key in node:
            return max((_longest(alt) for alt in node[key]), default=0)
    kind = node.get("type")
    if kind in _FIXED:
        return _FIXED[kind]
    if kind == "string":
        fmt = node.get("format", "")
        if fmt in _FORMAT or fmt.startswith("uuid"):
            return _FORMAT.get(fmt, _UUID) + 3
        return 2 * node["maxLength"] + 3  # quotes, every character a two-character escape, space
    if kind == "array":
        if "prefixItems" in node:
            return _sequence([_longest(x) for x in node["prefixItems"]])
        return _sequence([_longest(node["items"])] * node["maxItems"])
    if _is_map(node):
        key = 2 * node["propertyNames"]["maxLength"] + 3
        return _sequence([key + 2 + _longest(node["additionalProperties"])] * node["maxProperties"])
    if kind == "object":
        return _sequence([len(json.dumps(k)) + 3 + _longest(v) for k, v in (node.get("properties") or {}).items()])
    raise ValueError(f"no bound for the schema {json.dumps(node)[:200]}")


def _sequence(items: list[int]) -> int:
    """`"[" space` (or `{`), the items with `"," space` between, `"]" space`."""
    return 4 + sum(items) + 2 * max(0, len(items) - 1)


# --- scaling -------------------------------------------------------------------------------


def _fit(schema: dict[str, Any], budget: int) -> dict[str, Any]:
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return {**schema, key: [_fit(alt, budget) for alt in schema[key]]}
    if _longest(schema) <= budget:
        return schema
    if _scale(schema, 0.0) == schema:  # no string or array bound to cut (an enum of sentences)
        return _trim_enums(schema, budget)
    # One factor for all bounds first; then, the others held, strings alone and arrays alone
    # take what is left (an array of numbers cut to no items leaves room a string can use).
    both = _largest(lambda f: _scale(schema, f, f), 0.0, budget)
    length = _largest(lambda f: _scale(schema, f, both), both, budget)
    items = _largest(lambda f: _scale(schema, length, f), both, budget)
    fitted = _scale(schema, length, items)
    return fitted if _longest(fitted) <= budget else _trim_enums(fitted, budget)


def _largest(scaled: Any, lo: float, budget: int) -> float:
    """The largest factor in [lo, 1] whose `scaled` schema fits (lo if none does): the longest
    text grows with the factor, so bisect."""
    hi = 1.0
    if _longest(scaled(hi)) <= budget:
        return hi
    for _ in range(30):
        mid = (lo + hi) / 2
        if _longest(scaled(mid)) <= budget:
            lo = mid
        else:
            hi = mid
    return lo


def _scale(node: Any, length: float, items: float | None = None) -> Any:
    """A copy with every string bound b (maxLength) made floor(b * length) and every count
    (maxItems, maxProperties) floor(b * items), each kept at or above its minimum."""
    items = length if items is None else items
    if isinstance(node, list):
        return [_scale(x, length, items) for x in node]
    if not isinstance(node, dict):
        return node
    if "const" in node or "enum" in node:
        return node
    out = {k: _scale(v, length, items) for k, v in node.items()}
    for bound, floor, factor in (("maxLength", "minLength", length), ("maxItems", "minItems", items),
                                 ("maxProperties", "minProperties", items)):
        if isinstance(node.get(bound), int) and "prefixItems" not in node:
            out[bound] = max(node.get(floor, 0), math.floor(node[bound] * factor))
    return out


def _trim_enums(schema: dict[str, Any], budget: int) -> dict[str, Any]:
    """Drop the longest enum options (keeping one in each enum) while the schema does not fit."""
    schema = json.loads(json.dumps(schema))
    enums: list[list[Any]] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("enum"), list):
                enums.append(node["enum"])
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(schema)
    while (excess := _longest(schema) - budget) > 0:
        lengths = [[len(json.dumps(v)) for v in e] for e in enums]
        open_ = [i for i, e in enumerate(enums) if len(e) > 1]
        if not open_:
            break
        i = max(open_, key=lambda k: max(lengths[k]))  # the enum with the longest option
        room = max(max(lengths[i]) - excess, min(lengths[i]))  # what that option may be to fit
        keep = [v for v, n in zip(enums[i], lengths[i]) if n <= room] or [enums[i][lengths[i].index(min(lengths[i]))]]
        if len(keep) == len(enums[i]):  # nothing longer than room here: drop its longest alone
            keep = [v for j, v in enumerate(enums[i]) if j != lengths[i].index(max(lengths[i]))]
        enums[i][:] = keep
    return schema


def _property_names(schema: Any) -> list[str]:
    """Property names in declaration order, depth first, so the grammar keeps the signature's order."""
    names: list[str] = []
    if isinstance(schema, dict):
        for k, v in (schema.get("properties") or {}).items():
            names.append(k)
            names += _property_names(v)
        for key in ("oneOf", "anyOf", "allOf", "prefixItems"):
            for sub in schema.get(key) or []:
                names += _property_names(sub)
        names += _property_names(schema.get("items"))
        names += _property_names(schema.get("additionalProperties"))
    return list(dict.fromkeys(names))
