"""Each suite's run_item on a scripted backend (no model): calls mapped, scored, citations counted."""

import json
from types import SimpleNamespace
from typing import ClassVar

import pytest
from scripted import SAME_TURN, ScriptedBackend, chunks
from tooltoken.evals import bfcl, math_suite, qa
from tooltoken.evals.runner import EvalConfig

pytestmark = pytest.mark.unit


def use_script(monkeypatch, module, scripts):
    backend = ScriptedBackend(scripts)
    monkeypatch.setattr(module, "model_for", lambda config: backend)
    return backend


FACTORIAL = {
    "id": "simple_python_1",
    "category": "simple_python",
    "messages": [{"role": "user", "content": "Calculate the factorial of 5."}],
    "functions": [{"name": "math.factorial", "description": "Factorial.", "parameters": {
        "type": "dict", "properties": {"number": {"type": "integer", "description": "n"}}, "required": ["number"]}}],
    "answer": [{"math.factorial": {"number": [5]}}],
}


def call(name, args):
    import json

    return json.dumps({"name": name, "arguments": args})


def test_bfcl_item_maps_dotted_names_back_and_scores(monkeypatch):
    text = call("math_factorial", {"number": 5})
    backend = use_script(monkeypatch, bfcl, [["<tool_call>", "\n", *chunks(text)], chunks(text, 4), ["It is 120."]])
    record = bfcl.BFCLSuite(EvalConfig("bfcl")).run_item(FACTORIAL)
    assert record["tool_calls"] == [{"math.factorial": {"number": 5}}]
    assert record["correct"] and record["error"] == ""
    # the model saw the converted declaration: a valid name and BFCL's Python note
    prompt = backend.detokenize(backend.requests[0][0]).decode()
    assert "math_factorial" in prompt and "Note that the provided function is in Python 3 syntax." in prompt
    # the users' defaults: the policy's call check judged the call (the scripted model says yes)
    assert len(backend.checked) > 0 and record["call_checks"]
    assert "call check at 1.05" in bfcl.BFCLSuite(EvalConfig("bfcl")).describe()["policy"]


def test_bfcl_wrong_value_is_reported(monkeypatch):
    text = call("math_factorial", {"number": 6})
    use_script(monkeypatch, bfcl, [["<tool_call>", "\n", *chunks(text)], chunks(text, 4), ["Done."]])
    record = bfcl.BFCLSuite(EvalConfig("bfcl")).run_item(FACTORIAL)
    assert not record["correct"] and record["error_type"] == "value_error:others"


def test_bfcl_irrelevance_passes_without_a_call_and_fails_with_one(monkeypatch):
    item = {**FACTORIAL, "id": "irrelevance_0", "category": "irrelevance", "answer": None}
    use_script(monkeypatch, bfcl, [["I cannot help with that using these functions."]])
    assert bfcl.BFCLSuite(EvalConfig("bfcl")).run_item(item)["correct"]
    text = call("math_factorial", {"number": 5})
    use_script(monkeypatch, bfcl, [["<tool_call>", "\n", *chunks(text)], chunks(text, 4), ["ok"]])
    record = bfcl.BFCLSuite(EvalConfig("bfcl")).run_item(item)
    assert not record["correct"] and record["error_type"] == "irrelevance:called"


QUESTION = "Ann knits 9 shawls of 2 skeins each and 4 hats of 2 skeins each. How many skeins does she use?"


def only_calculator(monkeypatch):
    """The suite builds the default tools, as chat does; here only the calculator of them."""
    import tooltoken.tools
    from tooltoken.tools.calculator import calculator

    monkeypatch.setattr(tooltoken.tools, "default_tools", lambda *a, **k: [calculator])


def test_math_item_takes_the_default_policy_s_math_path(monkeypatch):
    # the router sends the word problem down the math path: the model writes a program, the
    # calculator runs it when the block closes, and the answer ends with the line after its output
    only_calculator(monkeypatch)
    program = ["```python\n", "shawls = 9 * 2\n", "answer = shawls + 4 * 2\n", "``", "`\n"]
    scripts = [program, ["She needs ", "26", " skeins.\n", "More text."]]
    backend = use_script(monkeypatch, math_suite, scripts)
    suite = math_suite.MathSuite(EvalConfig("math"))
    record = suite.run_item({"id": "x", "category": "gsm_symbolic", "question": QUESTION, "gold": "26"})
    assert record["answer"] == ("```python\nshawls = 9 * 2\nanswer = shawls + 4 * 2\n```\n"
                                "```output\nshawls = 18\nanswer = 26\n```\nShe needs 26 skeins.\n")
    assert record["correct"] and record["predicted"] == "26" and record["route"] == "math"
    assert record["inline_expressions"] == ["shawls = 9 * 2\nanswer = shawls + 4 * 2"] and record["tool_calls"] == []
    assert suite.metrics([record])["used_calculator"] == 1.0
    # the policy's prompt, not one of the eval's own; no tool is declared on the math path
    from tooltoken._policy import MATH_SYSTEM

    prompt = backend.detokenize(backend.requests[0][0]).decode()
    assert MATH_SYSTEM in prompt and '"name": "calculator"' not in prompt
    assert suite.describe()["policy"].startswith("routed")


def test_math_clock_answers_are_matched_as_clock_times(monkeypatch):
    only_calculator(monkeypatch)
    program = ["```python\n", "arrive = 9:03 + 2h 35m\n", "``", "`\n"]
    use_script(monkeypatch, math_suite, [program, ["It arrives at 11:38 am.\n"]])
    record = math_suite.MathSuite(EvalConfig("math")).run_item(
        {"id": "x", "category": "written_dev", "question": "A train leaves at 9:03 and takes 2h 35m. When does it arrive?",
         "gold": "11:38"})
    assert record["correct"] and record["predicted"] == "11:38"
    assert "arrive = 11:38" in record["answer"]


def test_math_closed_book_declares_no_tool(monkeypatch):
    backend = use_script(monkeypatch, math_suite, [["12 * 2 = 24, so 24 + 34 + 12 = 69.\nAnswer: 69"]])
    suite = math_suite.MathSuite(EvalConfig("math", tools=False))
    record = suite.run_item({"id": "x", "category": "gsm_symbolic", "question": QUESTION, "gold": "70"})
    assert not record["correct"] and record["predicted"] == "69" and record["tool_calls"] == []
    prompt = backend.detokenize(backend.requests[0][0]).decode()
    assert "calculator" not in prompt and "You are a helpful assistant." in prompt
    assert suite.describe()["policy"].startswith("closed book")


def test_written_word_problems_load_by_half() -> None:
    dev, test = math_suite.written_items("written_dev"), math_suite.written_items("written_test")
    assert len(dev) >= 40 and len(test) >= 40 and not {d["id"] for d in dev} & {t["id"] for t in test}


class Wiki:
    docs: ClassVar = {"enwiki:War_and_Peace": ("War and Peace", "War and Peace is a novel by the Russian author Leo Tolstoy.")}

    def search(self, query, k=5):
        from tooltoken.tools import Hit

        return [Hit(id, title, text, 1.0) for id, (title, text) in self.docs.items()][:k]

    def get(self, id):
        from tooltoken.tools import Document

        title, text = self.docs[id]
        return Document(id, title, text)


def test_qa_item_scores_the_final_part_and_citations(monkeypatch):
    # the default policy: the question is routed to lookup, searched before the model writes
    monkeypatch.setattr(qa, "load_backend", lambda spec: Wiki())
    use_script(monkeypatch, qa, [["Tolstoy."], ["Leo Tolstoy wrote it [1]."]])  # closed book first: the query adds it
    suite = qa.QASuite(EvalConfig("qa"))
    item = {"id": "qa001", "question": "Who wrote War and Peace?", "answers": ["Leo Tolstoy", "Tolstoy"]}
    record = suite.run_item(item)
    assert record["route"] == "lookup"
    assert record["tool_calls"] == [{"search": {"query": "Who wrote War and Peace? Tolstoy."}}]
    assert record["correct"] and record["final_part"] == "Leo Tolstoy wrote it [1]."
    assert (record["citations_supporting"], record["citations_verified"]) == (1, 1)
    assert record["citations"][0]["sources"] == ["enwiki:War_and_Peace"]
    from tooltoken.evals.runner import summarize

    assert summarize(EvalConfig("qa"), suite, [record])["policy"].startswith("routed")  # the summary says so
    figures = suite.metrics([record, {**record, "citations_supporting": 0, "correct": False}])
    assert figures["citation_precision"] == 0.5 and figures["cited"] == 1.0


def test_qa_closed_book_wrong_answer(monkeypatch):
    use_script(monkeypatch, qa, [["Samuel Richardson wrote it."]])
    record = qa.QASuite(EvalConfig("qa", tools=False)).run_item(
        {"id": "q", "question": "Who wrote War and Peace?", "answers": ["Tolstoy"]})
    assert not record["correct"] and record["citations_verified"] == 0 and record["tool_calls"] == []


def test_dev_sets_are_well_formed():
    questions = qa.load_questions()  # the default sets: known facts, held-out factual questions
    assert {q["category"] for q in questions} == {"known", "factual"}
    dev = qa.load_questions(category="factual_dev")
    assert dev and {q["category"] for q in dev} == {"factual_dev"}
    rows = [json.loads(line) for line in (qa._data(qa.SETS["factual_dev"])).read_text().splitlines()]
    rows += [json.loads(line) for line in (qa._data(qa.SETS["factual"])).read_text().splitlines()]
    assert all(r.get("closed_book") for r in rows)  # each wrong closed book, with that answer recorded
    every = questions + dev
    assert len({q["id"] for q in every}) == len(every)
    assert all(q["answers"] and q["doc_id"].startswith("enwiki:") for q in every)
    from tooltoken.evals.retrieval_suite import load_queries

    known_dev = qa.load_questions(category="known_dev")  # where the recall was chosen: apart from `known`
    assert len(known_dev) >= 30 and all(q["answers"] for q in known_dev)
    assert not {q["question"] for q in known_dev} & {q["question"] for q in questions}
    docs = qa.load_questions(category="userdocs")
    assert len(docs) == 20 and all((qa._data(qa.USERDOCS["userdocs"]) / q["doc_id"]).is_file() for q in docs)
    dev_docs = qa.load_questions(category="userdocs_dev")  # another company's documents: apart
    assert len(dev_docs) >= 20 and all((qa._data(qa.USERDOCS["userdocs_dev"]) / q["doc_id"]).is_file() for q in dev_docs)
    assert not {q["doc_id"] for q in dev_docs} & {q["doc_id"] for q in docs}
    queries = load_queries()
    assert [q["query"] for q in queries] == [q["question"] for q in questions + dev]
    assert [q["relevant_ids"] for q in queries] == [[q["doc_id"]] for q in questions + dev]
    assert [q["query"] for q in load_queries(category="factual_dev")] == [q["question"] for q in dev]


def test_hit_ids_of_both_result_kinds():
    from tooltoken.evals._backends import hit_id

    assert hit_id(SimpleNamespace(id="a")) == "a"
    assert hit_id(SimpleNamespace(chunk=SimpleNamespace(id="c"), score=1.0)) == "c"


def test_bfcl_scores_the_first_turn_with_all_its_calls(monkeypatch):
    text = call("math_factorial", {"number": 5})
    again = call("math_factorial", {"number": 6})
    # a first turn with one call, then (after the result) another call: only the first is scored
    scripts = [["<tool_call>", "\n", *chunks(text)], chunks(text, 4),
               ["<tool_call>", "\n", *chunks(again)], chunks(again, 4), ["Both done."]]
    use_script(monkeypatch, bfcl, [list(s) for s in scripts])
    record = bfcl.BFCLSuite(EvalConfig("bfcl")).run_item(FACTORIAL)
    assert record["tool_calls"] == [{"math.factorial": {"number": 5}}] and record["stop_reason"] == "cancelled"
    assert record["correct"]
    # a first turn holding two calls: both are scored
    scripts = [["<tool_call>", "\n", *chunks(text)], chunks(text, 4),
               [SAME_TURN, "\n", "<tool_call>"], chunks(again, 4), ["Both done."]]
    use_script(monkeypatch, bfcl, [list(s) for s in scripts])
    item = {**FACTORIAL, "id": "parallel_1", "category": "parallel",
            "answer": [{"math.factorial": {"number": [6]}}, {"math.factorial": {"number": [5]}}]}
    record = bfcl.BFCLSuite(EvalConfig("bfcl")).run_item(item)
    assert record["tool_calls"] == [{"math.factorial": {"number": 5}}, {"math.factorial": {"number": 6}}]
    assert record["correct"] and record["stop_reason"] == "cancelled"


def test_malformed_data_lines_name_their_file_and_line(tmp_path):
    from tooltoken.evals.qa import load_questions
    from tooltoken.evals.retrieval_suite import load_queries
    from tooltoken.tools import ConfigError

    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "q", "answers": "a"}\n\n"a string"\n')
    with pytest.raises(ConfigError, match=r"qa.jsonl:3: each line must be a JSON object with question and answers"):
        load_questions(qa)
    rq = tmp_path / "r.jsonl"
    rq.write_text('{"query": "q"}\n')
    with pytest.raises(ConfigError, match=r"r.jsonl:1: .* query and relevant_ids"):
        load_queries(rq)
    with pytest.raises(ConfigError, match="cannot read the retrieval data"):
        load_queries(tmp_path / "missing.jsonl")
    ok = tmp_path / "ok.jsonl"
    ok.write_text('{"question": "q", "answers": "a"}\n')
    assert load_questions(ok)[0]["answers"] == ["a"]


def test_the_math_closed_book_answers_are_recorded():
    # the word-problem dev set's closed-book answers (written and generated items, and the seed
    # each generated one came from), so a later run can be compared with them item by item
    path = qa._data("math_closed_book.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) >= 200  # the dev set: at least 200 problems
    keys = {(r["category"], r.get("seed"), r["id"]) for r in rows}
    assert len(keys) == len(rows)
    assert all(r["question"] and r["gold"] != "" and isinstance(r["closed_book"], str) for r in rows)
    assert all(r.get("seed") is not None for r in rows if r["category"] in ("gsm_symbolic", "basic_arithmetic"))


def test_the_bfcl_call_check_can_be_set_or_turned_off(monkeypatch):
    from tooltoken.evals.cli import _threshold, default_out

    use_script(monkeypatch, bfcl, [])
    assert (_threshold(None), _threshold("off"), _threshold("0.9")) == (None, "off", 0.9)
    off = bfcl.BFCLSuite(EvalConfig("bfcl", call_check="off"))
    assert "no call check" in off.describe()["policy"] and off._agent([]).options.call_check is None
    assert str(default_out(EvalConfig("bfcl", call_check="off"))).endswith("check-off")
    assert bfcl.BFCLSuite(EvalConfig("bfcl", call_check=0.9))._agent([]).options.call_check == 0.9
    assert bfcl.BFCLSuite(EvalConfig("bfcl"))._agent([]).options.call_check == "auto"
