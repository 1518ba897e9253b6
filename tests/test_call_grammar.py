"""The call grammar bounds what a model can write (issue 20): every string and array has a length,
the longest call fits the call's token budget, strings are valid JSON, and a loop inside a string
is seen.

The property tests draw random tool schemas. Without a model, the longest text the grammar
allows is written out by hand (`_maximal`) and checked against `longest`, the budget and the
tool's own schema. With SmolLM2 (integration), llama.cpp's grammar sampler itself accepts that
text, and a model biased to never close a string, an array or an object (the longest
continuation the grammar allows, everywhere) still writes a call that parses and validates
within the budget.
"""

from __future__ import annotations

import ctypes
import json
import string
from typing import Annotated, Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from tooltoken._grammar import _property_names, fit_schema, longest, open_string, repeating, schema_to_gbnf, tighter
from tooltoken.tools import Tool, tool
from tooltoken.tools._tool import MAX_ITEMS, MAX_STRING, bound_schema

jsonschema = pytest.importorskip("jsonschema")


def call_schema(t: Tool) -> dict[str, Any]:
    """One call to `t` as the hermes family generates it (`Format.call_schema` of one tool)."""
    return {"type": "object", "properties": {"name": {"const": t.name}, "arguments": t.call_parameters()},
            "required": ["name", "arguments"], "additionalProperties": False}


# --- bounding ----------------------------------------------------------------------------------


def test_every_string_and_array_gets_a_bound_and_the_declared_schema_is_kept():
    @tool
    def f(q: str, tags: list[str], short: Annotated[str, Field(max_length=20)], n: int = 1) -> str:
        """F."""
        return q

    declared = json.dumps(f.schema())
    props = f.call_parameters()["properties"]
    assert props["q"]["maxLength"] == MAX_STRING and props["short"]["maxLength"] == 20
    assert props["tags"]["maxItems"] == MAX_ITEMS and props["tags"]["items"]["maxLength"] == MAX_STRING
    assert props["n"]["type"] == "integer" and "maxLength" not in props["n"]
    assert json.dumps(f.schema()) == declared and "maxLength" not in json.dumps(f.parameters["properties"]["q"])


def test_a_tool_declares_its_own_default_bounds():
    @tool(max_string=40, max_items=3)
    def g(text: str, xs: list[int]) -> str:
        """G."""
        return text

    props = g.call_parameters()["properties"]
    assert props["text"]["maxLength"] == 40 and props["xs"]["maxItems"] == 3
    t = Tool.from_schema("h", "H.", {"type": "object", "properties": {"s": {"type": "string"}}}, lambda s: s, max_string=9)
    assert t.call_parameters()["properties"]["s"]["maxLength"] == 9


def test_calculator_expression_is_bounded_by_the_calculators_own_limit():
    from tooltoken.tools.calculator import MAX_CHARS, calculator

    bound = calculator.call_parameters()["properties"]["expression"]["maxLength"]
    assert 0 < bound <= MAX_CHARS
    fitted = fit_schema(call_schema(calculator), 512)
    assert fitted["properties"]["arguments"]["properties"]["expression"]["maxLength"] <= bound
    assert longest(fitted) <= 512


class Inner(BaseModel):
    label: str
    weights: dict[str, float]


def test_refs_maps_any_patterns_and_type_lists_are_bounded():
    @tool
    def k(inner: Inner, anything: Any, code: Annotated[str, Field(pattern=r"^[A-Z]+$")], maybe: int | str | None = None) -> str:
        """K."""
        return ""

    params = k.call_parameters()
    text = json.dumps(params)
    assert "$ref" not in text and "$defs" not in text and "pattern" not in text
    inner = params["properties"]["inner"]
    assert inner["properties"]["label"]["maxLength"] == MAX_STRING
    weights = inner["properties"]["weights"]
    assert weights["maxProperties"] == MAX_ITEMS and weights["propertyNames"]["maxLength"] == MAX_STRING
    assert params["properties"]["anything"]["anyOf"][0] == {"type": "string", "maxLength": MAX_STRING}
    assert bound_schema(params) == params  # applying it again changes nothing
    assert longest(call_schema(k)) < 10**6  # finite: everything is bounded
    pair = bound_schema({"type": "array", "items": [{"type": "integer"}, {"type": "string"}]})  # an old-style tuple
    assert pair["prefixItems"][1]["maxLength"] == MAX_STRING and "items" not in pair
    both = bound_schema({"type": ["string", "null"], "maxLength": 5})["anyOf"]
    assert [alt["type"] for alt in both] == ["string", "null"] and both[0]["maxLength"] == 5


def test_a_recursive_schema_is_unrolled_a_few_levels():
    schema = {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}},
              "$defs": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}}}
    assert longest(schema) < 10**5


def test_fit_scales_bounds_until_the_longest_call_fits():
    schema = {"type": "object", "properties": {"q": {"type": "string", "maxLength": 300, "minLength": 5},
                                               "xs": {"type": "array", "items": {"type": "integer"}, "maxItems": 20}}}
    assert longest(schema) > 512
    for budget in (40, 64, 128, 512):
        fitted = fit_schema(schema, budget)
        assert longest(fitted) <= budget
        assert fitted["properties"]["q"]["minLength"] == 5 <= fitted["properties"]["q"]["maxLength"]
    small, large = fit_schema(schema, 100), fit_schema(schema, 400)
    assert small["properties"]["q"]["maxLength"] < large["properties"]["q"]["maxLength"] <= 300
    assert fit_schema({"type": "string", "maxLength": 10}, 512) == {"type": "string", "maxLength": 10}  # fits: kept


def test_fit_fits_each_tool_of_a_union_on_its_own():
    long_tool = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 400}}}
    short_tool = {"type": "object", "properties": {"b": {"type": "string", "maxLength": 100}}}
    fitted = fit_schema({"oneOf": [long_tool, short_tool]}, 256)
    assert fitted["oneOf"][0]["properties"]["a"]["maxLength"] < 128
    assert fitted["oneOf"][1]["properties"]["b"]["maxLength"] == 100  # it fitted already: untouched
    assert longest(fitted) <= 256


def test_fit_drops_enum_options_too_long_for_the_budget():
    sentences = ["short one.", "x" * 300, "a middle sentence of some length."]
    fitted = fit_schema({"type": "object", "properties": {"text": {"type": "string", "enum": sentences}}}, 128)
    assert fitted["properties"]["text"]["enum"] == ["short one.", "a middle sentence of some length."]
    assert longest(fitted) <= 128


def test_tighter_halves_the_bounds_down_to_their_minimum():
    schema = {"type": "object", "properties": {"q": {"type": "string", "maxLength": 100, "minLength": 30},
                                               "xs": {"type": "array", "items": {"type": "string", "maxLength": 9},
                                                      "maxItems": 8, "minItems": 1}}}
    cut = tighter(schema)
    assert cut["properties"]["q"]["maxLength"] == 50 and cut["properties"]["xs"]["maxItems"] == 4
    assert cut["properties"]["xs"]["items"]["maxLength"] == 4
    assert tighter(cut)["properties"]["q"]["maxLength"] == 30  # not below minLength
    assert longest(cut) < longest(schema)


def test_strings_in_the_grammar_are_valid_json():
    gbnf = schema_to_gbnf({"type": "object", "properties": {"s": {"type": "string"}}})
    char = next(line for line in gbnf.splitlines() if line.startswith("char ::="))
    assert r"\x00-\x1F" in char and '"u"' not in char  # no raw control character, no \u escape
    assert "char*" not in gbnf and "(char (char" in gbnf  # bounded


# --- loops -------------------------------------------------------------------------------------


def test_repeating_sees_the_loop_of_issue_20():
    loop = "}}\n</tool_call>\nThe result is 1234.\n\nYou can call the calculator tool. "
    assert repeating(loop * 2)
    assert not repeating(loop)
    assert not repeating("(3 + 4) / 7^2 + sqrt(2) * 17% of 2400")
    assert not repeating("days = 6 * 2 * 12\npay = 195 * days")
    assert repeating("ab" * 40)


def test_open_string_follows_escapes():
    assert open_string('{"name": "c", "arguments": {"expression": "a \\"b') == 'a \\"b'
    assert open_string('{"name": "c", "arguments": {"expression": "a \\\\"') is None
    assert open_string('{"name": "c", "arguments": {"expression": "a", "x": ') is None
    assert open_string('{"name": "c", "arguments": {"expression": "') == ""


# --- properties over random tool schemas -------------------------------------------------------

_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True)
_ENUM_TEXT = st.text(alphabet=string.ascii_letters + ' "\\\né', max_size=24)


def _string_schema(bounds: tuple[int | None, int | None]) -> dict[str, Any]:
    lo, hi = bounds
    return {"type": "string", **({"minLength": lo} if lo is not None else {}), **({"maxLength": hi} if hi is not None else {})}


_LEAVES = st.one_of(
    st.tuples(st.none() | st.integers(0, 4), st.none() | st.integers(4, 400)).map(_string_schema),
    st.sampled_from([{"type": "number"}, {"type": "integer"}, {"type": "boolean"}]),
    st.lists(_ENUM_TEXT, min_size=1, max_size=4, unique=True).map(lambda xs: {"type": "string", "enum": xs}),
)


def _object(props: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.lists(st.sampled_from(sorted(props)), unique=True).map(
        lambda req: {"type": "object", "properties": props, "required": req, "additionalProperties": False})


_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.tuples(inner, st.none() | st.integers(0, 30)).map(
            lambda t: {"type": "array", "items": t[0], **({"maxItems": t[1]} if t[1] is not None else {})}),
        st.dictionaries(_NAMES, inner, min_size=1, max_size=3).flatmap(_object),
        inner.map(lambda v: {"type": "object", "additionalProperties": v}),  # dict[str, X]
    ),
    max_leaves=6,
)
TOOL_SCHEMAS = st.dictionaries(_NAMES, _VALUES, min_size=1, max_size=4).flatmap(_object)


def _maximal(node: dict[str, Any], order: list[str] | None = None) -> str:
    """The longest text the grammar of a bounded schema allows, written out: every optional key,
    every item, every string at its bound in two-character escapes, the longest numbers, and
    the optional space after each value. Keys come as the grammar has them: required ones first,
    each group in the order of first appearance in the schema."""
    if order is None:
        order = ["name", "arguments", *_property_names(node)]
    if "const" in node or "enum" in node:
        return max((json.dumps(v) for v in node.get("enum", [node.get("const")])), key=len)
    if "anyOf" in node or "oneOf" in node:
        return max((_maximal(alt, order) for alt in node.get("anyOf") or node["oneOf"]), key=len)
    kind = node["type"]
    if kind == "string":
        return '"' + "\\n" * node["maxLength"] + '" '
    if kind == "number":
        return "-1234567890123456.1234567890123456e-123 "
    if kind == "integer":
        return "-1234567890123456 "
    if kind == "boolean":
        return "false "
    if kind == "array":
        return "[ " + ", ".join([_maximal(node["items"], order)] * node["maxItems"]) + "] "
    if "maxProperties" in node:
        kv = _maximal({"type": "string", "maxLength": node["propertyNames"]["maxLength"]}, order) + ": " + _maximal(
            node["additionalProperties"], order)
        return "{ " + ", ".join([kv] * node["maxProperties"]) + "} "
    props, required = node["properties"], set(node.get("required", []))
    keys = sorted(props, key=lambda k: (k not in required, order.index(k)))
    return "{ " + ", ".join(f"{json.dumps(k)} : {_maximal(props[k], order)}" for k in keys) + "} "


def _tool(schema: dict[str, Any]) -> Tool:
    return Tool.from_schema("probe", "A probe.", schema, lambda **kw: "")


@settings(max_examples=150, deadline=None)
@given(schema=TOOL_SCHEMAS, extra=st.integers(0, 400))
def test_longest_call_fits_parses_and_validates_without_a_model(schema, extra):
    t = _tool(schema)
    whole = call_schema(t)
    floor = longest(fit_schema(whole, 0))  # as tight as the bounds go
    budget = floor + extra
    fitted = fit_schema(whole, budget)
    text = _maximal(fitted)
    assert len(text) == longest(fitted) <= budget
    call = json.loads(text)
    assert call["name"] == "probe"
    jsonschema.validate(call["arguments"], schema)  # the tool's own, unbounded schema
    wider = fit_schema(whole, budget + 200)
    assert longest(fitted) <= longest(wider)


# --- with the real grammar sampler and SmolLM2 ---------------------------------------------------


@pytest.fixture(scope="module")
def backend(smollm2_path):
    from tooltoken._backend import LlamaBackend

    # Weights not repacked (batch_invariant): the grammar is under test, not the matmul kernels, and
    # on a VM that reports AMX it cannot run, the repacked ones stop the process (SIGILL). One
    # thread: a 135M model needs no more, and two spin against other work on a 2-core machine.
    return LlamaBackend(smollm2_path, n_ctx=1024, batch_invariant=True, n_threads=1)


def _accepts(backend, gbnf: str, text: str) -> bool:
    """Does llama.cpp's grammar sampler let `text` through, token by token, to a complete value?"""
    import llama_cpp

    smpl = llama_cpp.llama_sampler_init_grammar(backend._vocab, gbnf.encode(), b"root")
    assert smpl, "llama.cpp rejected the grammar"
    try:
        for token in backend.tokenize(text, special=False):
            data = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, 0.0, 0.0))
            arr = llama_cpp.llama_token_data_array(data=data, size=1, selected=-1, sorted=False)
            llama_cpp.llama_sampler_apply(smpl, ctypes.byref(arr))
            if arr.data[0].logit == float("-inf"):
                return False
            llama_cpp.llama_sampler_accept(smpl, token)
        eos = llama_cpp.llama_token_data(backend.llm.token_eos(), 0.0, 0.0)
        arr = llama_cpp.llama_token_data_array(data=(llama_cpp.llama_token_data * 1)(eos), size=1, selected=-1,
                                               sorted=False)
        llama_cpp.llama_sampler_apply(smpl, ctypes.byref(arr))
        return arr.data[0].logit != float("-inf")  # the end is allowed: the value is complete
    finally:
        llama_cpp.llama_sampler_free(smpl)


@pytest.mark.integration
def test_the_grammar_sampler_refuses_raw_control_characters_in_strings(backend):
    gbnf = schema_to_gbnf({"type": "object", "properties": {"s": {"type": "string", "maxLength": 8}}})
    assert _accepts(backend, gbnf, '{"s": "a\\nb"}')
    assert not _accepts(backend, gbnf, '{"s": "a\nb"}')  # a raw line break
    assert not _accepts(backend, gbnf, '{"s": "a\tb"}')
    assert not _accepts(backend, gbnf, '{"s": "123456789"}')  # past maxLength
    assert _accepts(backend, gbnf, '{"s": "12345678"}')
    items = schema_to_gbnf({"type": "array", "items": {"type": "integer"}, "maxItems": 2})
    assert _accepts(backend, items, "[1, 2]") and not _accepts(backend, items, "[1, 2, 3]")


@pytest.mark.integration
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schema=TOOL_SCHEMAS, extra=st.integers(0, 300))
def test_llama_cpp_accepts_exactly_the_longest_call(backend, schema, extra):
    whole = call_schema(_tool(schema))
    fitted = fit_schema(whole, longest(fit_schema(whole, 0)) + extra)
    text = _maximal(fitted)
    gbnf = schema_to_gbnf(fitted)
    assert _accepts(backend, gbnf, text.rstrip())
    assert not _accepts(backend, gbnf, text.rstrip() + "}")


def _never_close(backend):
    """A logits processor that makes every token with a closing quote, `}` or `]` the least
    likely, so greedy decoding under the grammar continues as long as the grammar allows."""
    import numpy as np

    n = backend.llm.n_vocab()
    closing = np.array([i for i in range(n) if any(c in backend.detokenize([i]).decode("utf-8", "replace")
                                                   for c in '"}]')])

    def bias(_ids: Any, logits: Any) -> Any:
        logits[closing] = logits.min() - 1000.0
        return logits

    return bias


@pytest.mark.integration
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schema=TOOL_SCHEMAS, extra=st.integers(0, 64))
def test_a_model_that_never_closes_still_writes_a_valid_call_within_the_budget(backend, schema, extra):
    from llama_cpp import LogitsProcessorList

    whole = call_schema(_tool(schema))
    floor = longest(fit_schema(whole, 0))
    assume(floor <= 128)  # a few hundred tokens a draw would take minutes
    budget = floor + extra
    fitted = fit_schema(whole, budget)
    if not hasattr(backend, "_never_close"):
        backend._never_close = _never_close(backend)
    prompt = backend.tokenize("<|im_start|>user\nCall the probe tool.<|im_end|>\n<|im_start|>assistant\n<tool_call>\n",
                              special=True)
    backend.llm.set_seed(0)
    gen = backend.llm.generate(prompt, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
                               grammar=backend.grammar(fitted),
                               logits_processor=LogitsProcessorList([backend._never_close]))
    tokens, text, value = [], "", None
    try:
        for token in gen:
            if backend.is_eog(token) or len(tokens) > budget:
                break
            tokens.append(token)
            text = backend.detokenize(tokens).decode("utf-8", "replace")
            if text.rstrip()[-1:] in "}]":
                try:
                    value = json.loads(text)
                    break
                except ValueError:
                    pass
    finally:
        gen.close()
    assert value is not None, f"no call closed within {len(tokens)} tokens: {text!r}"
    assert len(tokens) <= budget
    assert value["name"] == "probe"
    jsonschema.validate(value["arguments"], schema)
