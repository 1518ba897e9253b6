"""BFCL's AST checking rules, on hand-made cases (and, with the real data, on its own answers)."""

import pytest
from tooltoken.evals.bfcl import to_tool_schema, tool_names
from tooltoken.evals.bfcl_checker import check, check_call, standardize_string

pytestmark = pytest.mark.unit


def fn(name, props, required=()):
    return {"name": name, "description": "d", "parameters": {"type": "dict", "properties": props,
                                                               "required": list(required)}}


AREA = fn("geometry.area", {"base": {"type": "integer"}, "height": {"type": "float"},
                            "unit": {"type": "string"}}, ["base", "height"])
AREA_ANSWER = {"geometry.area": {"base": [10], "height": [5.0], "unit": ["units", ""]}}


def simple(call, answer=AREA_ANSWER, doc=AREA):
    return check("simple_python", [doc], call, [answer])


def test_exact_call_passes():
    assert simple([{"geometry.area": {"base": 10, "height": 5.0, "unit": "units"}}]).valid


def test_optional_param_with_empty_string_may_be_omitted():
    assert simple([{"geometry.area": {"base": 10, "height": 5.0}}]).valid


def test_optional_param_without_empty_string_must_be_given():
    answer = {"geometry.area": {"base": [10], "height": [5.0], "unit": ["units"]}}
    r = simple([{"geometry.area": {"base": 10, "height": 5.0}}], answer)
    assert not r.valid and r.error_type == "simple_function_checker:missing_optional"


def test_missing_required():
    r = simple([{"geometry.area": {"base": 10}}])
    assert not r.valid and r.error_type == "simple_function_checker:missing_required"


def test_unexpected_param_not_declared_or_not_in_answer():
    r = simple([{"geometry.area": {"base": 10, "height": 5.0, "colour": "red"}}])
    assert r.error_type == "simple_function_checker:unexpected_param"
    answer = {"geometry.area": {"base": [10], "height": [5.0]}}  # unit declared, but no answer for it
    r = simple([{"geometry.area": {"base": 10, "height": 5.0, "unit": "units"}}], answer)
    assert r.error_type == "simple_function_checker:unexpected_param"


def test_int_passes_for_float_but_not_the_other_way():
    assert simple([{"geometry.area": {"base": 10, "height": 5}}]).valid
    r = simple([{"geometry.area": {"base": 10.0, "height": 5.0}}])
    assert not r.valid and r.error_type == "type_error:simple"


def test_bool_is_not_an_int():
    r = simple([{"geometry.area": {"base": True, "height": 5.0}}])
    assert not r.valid and r.error_type == "type_error:simple"


def test_wrong_value_and_wrong_name_and_count():
    assert simple([{"geometry.area": {"base": 11, "height": 5.0}}]).error_type == "value_error:others"
    assert simple([{"area": {"base": 10, "height": 5.0}}]).error_type == "simple_function_checker:wrong_func_name"
    two = [{"geometry.area": {"base": 10, "height": 5.0}}] * 2
    assert simple(two).error_type == "simple_function_checker:wrong_count"
    assert simple([]).error_type == "simple_function_checker:wrong_count"


def test_string_normalisation_as_bfcl():
    assert standardize_string("New York, NY") == standardize_string("new york ny") == "newyorkny"
    assert standardize_string("San-Francisco_CA.") == "sanfranciscoca"
    assert standardize_string("it's") == 'it"s'
    doc = fn("weather", {"city": {"type": "string"}}, ["city"])
    answer = {"weather": {"city": ["New York, NY", "NYC"]}}
    assert check_call(doc, {"weather": {"city": "new york ny"}}, answer).valid
    assert check_call(doc, {"weather": {"city": "NEW-YORK,NY"}}, answer).valid
    r = check_call(doc, {"weather": {"city": "New York City"}}, answer)
    assert not r.valid and r.error_type == "value_error:string"


def test_lists_compare_in_order_with_normalised_strings():
    doc = fn("f", {"xs": {"type": "array", "items": {"type": "integer"}},
                   "names": {"type": "array", "items": {"type": "string"}}}, ["xs"])
    answer = {"f": {"xs": [[1, 2, 3]], "names": [["Ann Lee", "Bob"], ""]}}
    assert check_call(doc, {"f": {"xs": [1, 2, 3]}}, answer).valid
    assert check_call(doc, {"f": {"xs": [1, 2, 3], "names": ["ann lee", "BOB"]}}, answer).valid
    assert check_call(doc, {"f": {"xs": [3, 2, 1]}}, answer).error_type == "value_error:list/tuple"
    assert check_call(doc, {"f": {"xs": [1, 2, 3], "names": ["Bob", "Ann Lee"]}}, answer).error_type == (
        "value_error:list/tuple")


def test_no_int_to_float_inside_lists():
    """BFCL converts a bare int to float, not the items of a list: [1, 2] fails float items."""
    doc = fn("f", {"xs": {"type": "array", "items": {"type": "float"}}}, ["xs"])
    answer = {"f": {"xs": [[1.0, 2.0]]}}
    assert check_call(doc, {"f": {"xs": [1.0, 2.0]}}, answer).valid
    r = check_call(doc, {"f": {"xs": [1, 2]}}, answer)
    assert not r.valid and r.error_type == "type_error:nested"


def test_empty_list_matches_an_omittable_list():
    doc = fn("f", {"xs": {"type": "array", "items": {"type": "string"}}})
    assert check_call(doc, {"f": {"xs": []}}, {"f": {"xs": [""]}}).valid


def test_variable_answers_compare_exactly():
    """An answer of another type than declared is a variable name: the model may give that name."""
    doc = fn("f", {"n": {"type": "integer"}}, ["n"])
    answer = {"f": {"n": ["num_items"]}}
    assert check_call(doc, {"f": {"n": "num_items"}}, answer).valid
    assert not check_call(doc, {"f": {"n": "Num Items"}}, answer).valid  # no normalisation for variables


def test_dict_params():
    doc = fn("book", {"prefs": {"type": "dict", "properties": {"room": {"type": "string"},
                                                               "view": {"type": "string"}}}}, ["prefs"])
    answer = {"book": {"prefs": [{"room": ["Double", "double room"], "view": ["sea", ""]}]}}
    assert check_call(doc, {"book": {"prefs": {"room": "double"}}}, answer).valid
    assert check_call(doc, {"book": {"prefs": {"room": "DOUBLE ROOM", "view": "Sea"}}}, answer).valid
    assert check_call(doc, {"book": {"prefs": {"view": "sea"}}}, answer).error_type == "value_error:dict_key"
    assert check_call(doc, {"book": {"prefs": {"room": "single"}}}, answer).error_type == "value_error:dict_value"
    assert check_call(doc, {"book": {"prefs": {"room": "double", "bed": "x"}}}, answer).error_type == (
        "value_error:dict_key")


def test_list_of_dicts():
    doc = fn("f", {"items": {"type": "array", "items": {"type": "dict"}}}, ["items"])
    answer = {"f": {"items": [[{"a": [1]}, {"a": [2]}]]}}
    assert check_call(doc, {"f": {"items": [{"a": 1}, {"a": 2}]}}, answer).valid
    assert not check_call(doc, {"f": {"items": [{"a": 2}, {"a": 1}]}}, answer).valid
    r = check_call(doc, {"f": {"items": [{"a": 1}]}}, answer)
    assert r.error_type == "value_error:list_dict_count"


def test_multiple_checks_the_function_the_answer_names():
    other = fn("other", {"x": {"type": "integer"}}, ["x"])
    funcs = [other, AREA]
    good = [{"geometry.area": {"base": 10, "height": 5.0}}]
    assert check("multiple", funcs, good, [AREA_ANSWER]).valid
    r = check("multiple", funcs, [{"other": {"x": 1}}], [AREA_ANSWER])
    assert r.error_type == "simple_function_checker:wrong_func_name"
    assert check("multiple", funcs, good * 2, [AREA_ANSWER]).error_type == "multiple_function_checker:wrong_count"


def test_parallel_any_order_each_call_used_once():
    answers = [{"geometry.area": {"base": [10], "height": [5.0]}}, {"geometry.area": {"base": [3], "height": [4.0]}}]
    a = {"geometry.area": {"base": 10, "height": 5.0}}
    b = {"geometry.area": {"base": 3, "height": 4}}
    assert check("parallel", [AREA], [b, a], answers).valid
    assert check("parallel_multiple", [AREA], [a, b], answers).valid
    r = check("parallel", [AREA], [a, a], answers)
    assert not r.valid and r.error_type == "parallel_function_checker_no_order:cannot_find_match"
    assert check("parallel", [AREA], [a], answers).error_type == "parallel_function_checker_no_order:wrong_count"


def test_tool_names_map_dots_and_clashes_back():
    names = tool_names([{"name": "math.factorial"}, {"name": "math_factorial"}, {"name": "3d.plot"}])
    assert names == {"math_factorial": "math.factorial", "math_factorial_2": "math_factorial", "_3d_plot": "3d.plot"}


def test_schema_conversion_as_bfcl_for_fc_models():
    doc = fn("f", {
        "n": {"type": "integer", "description": "n"},
        "x": {"type": "float", "description": "x"},
        "opts": {"type": "dict", "properties": {"y": {"type": "float", "description": "y"}}, "required": True},
        "pts": {"type": "array", "items": {"type": "tuple"}},
        "anything": {"type": "any"},
        "nothing": {"description": "no type"},
    }, ["n", "ghost"])
    s = to_tool_schema(doc)
    assert s["type"] == "object" and s["additionalProperties"] is False
    assert s["required"] == ["n"]  # names that are not properties are dropped
    p = s["properties"]
    assert p["x"] == {"type": "number", "format": "float", "description": "x This is a float type value."}
    assert p["opts"]["type"] == "object" and p["opts"]["properties"]["y"]["type"] == "number"
    assert "required" not in p["opts"]
    assert p["pts"] == {"type": "array", "items": {"type": "array"}}
    assert p["anything"]["type"] == "string" and p["nothing"]["type"] == "string"
    assert doc["parameters"]["properties"]["x"]["type"] == "float"  # the original is left alone


def test_parallel_matching_is_greedy_as_in_bfcl():
    """BFCL gives each answer the first unmatched call that fits, with no backtracking: an answer
    that allows two values can take the call a later answer needed (parallel_178 in the data)."""
    doc = fn("price", {"co": {"type": "string"}}, ["co"])
    answers = [{"price": {"co": ["Microsoft", "Apple"]}}, {"price": {"co": ["Apple"]}}]
    assert check("parallel", [doc], [{"price": {"co": "Microsoft"}}, {"price": {"co": "Apple"}}], answers).valid
    assert not check("parallel", [doc], [{"price": {"co": "Apple"}}, {"price": {"co": "Microsoft"}}], answers).valid


def _pick(allowed, required):
    """The first allowed value; dicts in answers hold allowed values per key, so pick inside too."""
    options = [a for a in allowed if a != ""] if required or "" not in allowed else []
    if not options:
        return None
    v = options[0]
    if isinstance(v, dict):
        return {k: _pick(opts, False) for k, opts in v.items() if _pick(opts, False) is not None}
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        return [{k: _pick(opts, False) for k, opts in d.items() if _pick(opts, False) is not None} for d in v]
    return v


def _oracle_call(answer, functions):
    """The call a perfect model would make: omit what may be omitted, else the first allowed value."""
    (name, params), = answer.items()
    doc = next(f for f in functions if f["name"] == name)["parameters"]
    call = {}
    for p, allowed in params.items():
        if p not in doc["properties"]:
            continue  # an answer for an undeclared parameter (it always allows "")
        v = _pick(allowed, p in doc.get("required", []))
        if v is not None:
            call[p] = v
    return {name: call}


@pytest.mark.integration
@pytest.mark.parametrize("category", ["simple_python", "multiple", "parallel", "parallel_multiple"])
def test_checker_accepts_bfcl_own_answers(category):
    """Every item of the real data is passed by the call built from its own possible answer."""
    from tooltoken.evals.bfcl import load_category

    items = load_category(category)
    assert len(items) >= 200
    failures = []
    for it in items:
        calls = [_oracle_call(a, it["functions"]) for a in it["answer"]]
        result = check(category, it["functions"], calls, it["answer"])
        if not result.valid:
            failures.append((it["id"], result.error))
    assert not failures, failures[:5]
