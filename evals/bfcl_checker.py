"""BFCL's AST checker for Python categories, written again from its rules (no code of BFCL is run).

    >>> doc = {"name": "area", "parameters": {"type": "dict", "required": ["base"], "properties": {
    ...     "base": {"type": "integer"}, "unit": {"type": "string"}}}}
    >>> answer = [{"area": {"base": [10], "unit": ["units", ""]}}]
    >>> check("simple_python", [doc], [{"area": {"base": 10}}], answer).valid
    True
    >>> check("simple_python", [doc], [{"area": {"base": 10, "unit": "cm"}}], answer).error_type
    'value_error:string'

A model's output is a list of calls, each `{function_name: {param: value}}`; a possible answer
lists, for each call, the allowed values of each parameter. The rules (those of BFCL's
`ast_checker.py`, Python branch):

- simple: exactly one call; multiple: as many calls as answers (one), checked against the
  function the answer names; parallel and parallel_multiple: as many calls as answers, matched
  in any order (each answer takes the first unmatched call that passes).
- A call passes when the name is right, every required parameter is there, every parameter it
  gives is declared and has allowed values, and every parameter it leaves out has `""` among
  its allowed values (`""` means "may be omitted").
- Types are exact (`bool` is not an `int`), except that an `int` passes where a `float` is
  declared. A value of the possible answer's own type passes the type check too (BFCL calls
  this a variable: the answer gives a name where the schema says a number), and is then
  compared exactly.
- Strings are compared after dropping spaces and `,./-_*^`, lowercasing and turning `'` into
  `"`; so are the strings directly inside a list, and the string values of a dict. Lists are
  compared in order; lists of dicts element by element.
- irrelevance (handled by the suite, not here): the run passes when the model made no call.

Not handled: Java and JavaScript categories (their values are strings converted by type).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckResult", "check", "check_call", "standardize_string"]

# BFCL's Python type names (plus the JSON-schema spellings, which BFCL's Python data never uses)
_PY_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
    "number": float,
    "object": dict,
    "list": list,
    "bool": bool,
}
_NESTED = ("array", "tuple")
_STRIP = re.compile(r"[ ,./\-_*^]")


@dataclass
class CheckResult:
    valid: bool
    error: str = ""
    error_type: str = ""
    details: list[str] = field(default_factory=list)


def standardize_string(s: str) -> str:
    """`"April 1, 2024"` and `"april 1 2024"` compare equal: BFCL drops spaces and `,./-_*^`,
    lowercases, and treats single and double quotes alike."""
    return _STRIP.sub("", s).lower().replace("'", '"')


def check(category: str, functions: list[dict], calls: list[dict], answers: list[dict]) -> CheckResult:
    """Score one item of an AST category; `calls` are `{name: arguments}` with BFCL's names."""
    if "parallel" in category:
        return _parallel(functions, calls, answers)
    if "multiple" in category:
        if len(calls) != len(answers):
            return CheckResult(False, "Wrong number of functions.", "multiple_function_checker:wrong_count")
        expected = next(iter(answers[0]))
        return check_call(_find(functions, expected), calls[0], answers[0])
    if len(calls) != 1:
        return CheckResult(False, "Wrong number of functions.", "simple_function_checker:wrong_count")
    return check_call(functions[0], calls[0], answers[0])


def _find(functions: list[dict], name: str) -> dict:
    for f in functions:
        if f["name"] == name:
            return f
    raise ValueError(f"the possible answer names {name!r}, which no function of the item declares")


def _parallel(functions: list[dict], calls: list[dict], answers: list[dict]) -> CheckResult:
    if len(calls) != len(answers):
        return CheckResult(False, "Wrong number of functions.", "parallel_function_checker_no_order:wrong_count")
    matched: set[int] = set()
    for i, answer in enumerate(answers):
        doc = _find(functions, next(iter(answer)))
        errors = []
        for j, call in enumerate(calls):
            if j in matched:
                continue
            result = check_call(doc, call, answer)
            if result.valid:
                matched.add(j)
                break
            errors.append(f"call {j}: {result.error}")
        else:
            return CheckResult(
                False,
                f"Could not find a matching function among the model's calls for possible answer {i}.",
                "parallel_function_checker_no_order:cannot_find_match",
                errors,
            )
    return CheckResult(True)


def check_call(doc: dict, call: dict, answer: dict) -> CheckResult:
    """One call against one function's possible answer (BFCL's `simple_function_checker`)."""
    allowed_by_param: dict[str, list] = next(iter(answer.values()))
    name = doc["name"]
    params = doc.get("parameters", {})
    details = params.get("properties", {})
    if name not in call:
        return CheckResult(False, f"Function name {name!r} not found in model output.",
                           "simple_function_checker:wrong_func_name")
    given = call[name]
    for p in params.get("required", []):
        if p not in given:
            return CheckResult(False, f"Missing required parameter: {p!r}.", "simple_function_checker:missing_required")
    for p, value in given.items():
        if p not in details or p not in allowed_by_param:
            return CheckResult(False, f"Unexpected parameter: {p!r}.", "simple_function_checker:unexpected_param")
        allowed = allowed_by_param[p]
        declared = details[p].get("type", "string")
        expected = _PY_TYPES.get(declared, str)
        nested = None
        if declared in _NESTED:
            item_type = (details[p].get("items") or {}).get("type")
            nested = _PY_TYPES.get(item_type, str) if item_type else None
        if declared == "float" and type(value) is int:  # Python's int -> float
            value = float(value)
        ok, is_variable, why = _type_check(p, value, allowed, declared, expected, nested)
        if not ok:
            return CheckResult(False, why, "type_error:nested" if "Nested" in why else "type_error:simple")
        if not is_variable:
            if expected is dict:
                result = _dict_check(p, value, allowed)
            elif expected is list and nested is dict:
                result = _list_dict_check(p, value, allowed)
            elif expected is str:
                result = _string_check(p, value, allowed)
            elif expected is list:
                result = _list_check(p, value, allowed)
            else:
                result = None
            if result is not None:
                if not result.valid:
                    return result
                continue
        if value not in allowed:
            return CheckResult(False, f"Invalid value for parameter {p!r}: {value!r}. Expected one of {allowed}.",
                               "value_error:others")
    for p, allowed in allowed_by_param.items():
        if p not in given and "" not in allowed:
            return CheckResult(False, f"Optional parameter {p!r} not provided and not marked as optional.",
                               "simple_function_checker:missing_optional")
    return CheckResult(True)


def _answer_type(allowed: list) -> type | None:
    for a in allowed:
        if a != "":
            return type(a)
    return None


def _type_check(p: str, value: Any, allowed: Any, declared: str, expected: type, nested: type | None):
    """(ok, is_variable, error). Nested types are checked one level deep, as in BFCL."""
    answer_type = _answer_type(allowed) if isinstance(allowed, list) else None
    is_variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        if nested is None:
            return True, is_variable, ""
        for option in allowed:
            fits = True
            if type(option) is list:
                fits = all(_type_check(p, v, option, str(nested), nested, None)[0] for v in value)
            if fits:
                return True, is_variable, ""
        return False, is_variable, (f"Nested type checking failed for parameter {p!r}. Expected outer type "
                                    f"{declared} with inner type {nested.__name__}. Parameter value: {value!r}.")
    if answer_type is not None and type(value) is answer_type:
        return True, True, ""
    return False, is_variable, (f"Incorrect type for parameter {p!r}. Expected type {declared}, "
                                f"got {type(value).__name__}. Parameter value: {value!r}.")


def _std(x: Any) -> Any:
    return standardize_string(x) if type(x) is str else x


def _string_check(p: str, value: str, allowed: list) -> CheckResult:
    if _std(value) not in [standardize_string(a) for a in allowed if type(a) is str]:
        return CheckResult(False, f"Invalid value for parameter {p!r}: {value!r}. Expected one of {allowed}. "
                           "Case insensitive.", "value_error:string")
    return CheckResult(True)


def _list_check(p: str, value: list, allowed: list) -> CheckResult:
    got = [_std(v) for v in value]
    # an allowed entry is iterated as BFCL does: a list element-wise ("" gives the empty list)
    if got not in [[_std(x) for x in option] for option in allowed]:
        return CheckResult(False, f"Invalid value for parameter {p!r}: {value!r}. Expected one of {allowed}.",
                           "value_error:list/tuple")
    return CheckResult(True)


def _dict_check(p: str, value: dict, allowed: list) -> CheckResult:
    result = CheckResult(False, f"Invalid value for parameter {p!r}: {value!r}.", "dict_checker:unclear")
    for option in allowed:
        if option == "":
            continue
        result = _dict_against(value, option)
        if result.valid:
            return result
    return result


def _dict_against(value: dict, option: dict) -> CheckResult:
    for key, v in value.items():
        if key not in option:
            return CheckResult(False, f"Unexpected dict key parameter: {key!r}.", "value_error:dict_key")
        if _std(v) not in [_std(a) for a in option[key]]:
            return CheckResult(False, f"Invalid value for parameter {key!r}: {v!r}. Expected one of {option[key]}.",
                               "value_error:dict_value")
    for key, options in option.items():
        if key not in value and "" not in options:
            return CheckResult(False, f"Missing dict key parameter: {key!r}.", "value_error:dict_key")
    return CheckResult(True)


def _list_dict_check(p: str, value: list, allowed: list) -> CheckResult:
    result = CheckResult(False, f"Invalid value for parameter {p!r}: {value!r}.", "list_dict_checker:unclear")
    for option in allowed:
        if len(value) != len(option):
            result = CheckResult(False, "Wrong number of dictionaries in the list.", "value_error:list_dict_count")
            continue
        ok = True
        for got, want in zip(value, option):
            result = _dict_check(p, got, [want]) if isinstance(got, dict) else CheckResult(
                False, f"Invalid value for parameter {p!r}: {got!r} is not a dict.", "value_error:dict_value")
            if not result.valid:
                ok = False
                break
        if ok:
            return CheckResult(True)
    return result
