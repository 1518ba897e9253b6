"""Every suite end to end through the CLI on the real small model, and the dev set on the real corpus."""

import json

import pytest

pytestmark = pytest.mark.integration


def run_cli(*args):
    typer_testing = pytest.importorskip("typer.testing")
    from tooltoken.app.cli import app

    # one llama.cpp thread: on a busy machine more threads wait on each other (see evals/runner.py)
    result = typer_testing.CliRunner().invoke(app, ["eval", *args, "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_run(summary, out, suite, n):
    assert summary["suite"] == suite and summary["n"] == n
    assert 0.0 <= summary["accuracy"] <= 1.0
    for name in ("records.jsonl", "summary.json", "report.md", "chart.png"):
        assert (out / name).exists(), name
    assert len((out / "records.jsonl").read_text().splitlines()) == n


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("suite, args, n", [
    ("bfcl", ["--category", "simple_python", "--max-tokens", "32"], 3),
    ("math", ["--max-tokens", "24"], 6),  # 3 items of each generator
    ("qa", ["--max-tokens", "32"], 3),
])
def test_suite_runs_on_smollm2(tmp_path, smollm2_path, suite, args, n):
    out = tmp_path / suite
    summary = run_cli(suite, "--model", "smollm2-135m", "--limit", "3", *args, "--out", str(out))
    check_run(summary, out, suite, n)
    assert summary["model"] == "smollm2-135m"
    again = run_cli(suite, "--model", "smollm2-135m", "--limit", "3", *args, "--out", str(out))  # resumes: no work
    assert again["n"] == n and again["accuracy"] == summary["accuracy"]


@pytest.mark.timeout(1200)
def test_math_closed_book_and_compare(tmp_path, smollm2_path):
    a, b = tmp_path / "tools", tmp_path / "closed"
    run_cli("math", "--model", "smollm2-135m", "--limit", "1", "--max-tokens", "32", "--out", str(a))
    summary = run_cli("math", "--model", "smollm2-135m", "--limit", "1", "--max-tokens", "32", "--tools", "off",
                      "--out", str(b))
    assert summary["config"]["tools"] is False and summary["metrics"]["used_calculator"] == 0.0
    typer_testing = pytest.importorskip("typer.testing")
    from tooltoken.app.cli import app

    result = typer_testing.CliRunner().invoke(app, ["eval", "compare", str(a), str(b)])
    assert result.exit_code == 0 and "accuracy" in result.output


@pytest.mark.timeout(1200)
def test_grammar_off_and_seed_reach_the_run(tmp_path, smollm2_path):
    free = run_cli("bfcl", "--model", "smollm2-135m", "--category", "simple_python", "--limit", "1", "--max-tokens",
                   "32", "--grammar", "off", "--out", str(tmp_path / "free"))
    assert free["config"]["grammar"] is False and free["n"] == 1
    seeded = run_cli("math", "--model", "smollm2-135m", "--limit", "1", "--max-tokens", "8", "--seed", "3",
                     "--out", str(tmp_path / "seed3"))
    other = run_cli("math", "--model", "smollm2-135m", "--limit", "1", "--max-tokens", "8", "--out", str(tmp_path / "seed0"))
    assert seeded["config"]["seed"] == 3 and other["config"]["seed"] == 0

    def ids(out):
        return [json.loads(line)["id"] for line in (out / "records.jsonl").read_text().splitlines()]

    assert ids(tmp_path / "seed3") != ids(tmp_path / "seed0")  # another seed, other items


def test_retrieval_on_the_wikipedia_bm25(tmp_path):
    out = tmp_path / "retrieval"
    summary = run_cli("retrieval", "--limit", "3", "--out", str(out))
    check_run(summary, out, "retrieval", 3)
    assert set(summary["metrics"]) >= {"recall@10", "mrr", "hit@1"}


def test_qa_dev_gold_answers_occur_in_their_documents():
    """Each gold answer set has an answer that occurs in the article the question was written from."""
    from tooltoken.evals.metrics import source_supports
    from tooltoken.evals.qa import load_questions
    from tooltoken.tools import default_search

    search = default_search()
    missing = []
    for q in load_questions():
        doc = search.get(q["doc_id"])
        if not source_supports({"title": doc.title, "text": doc.text}, q["answers"]):
            missing.append(q["id"])
    assert not missing


@pytest.mark.timeout(1200)
def test_drop_unstated_reaches_the_run_and_leaves_no_unstated_optional_value(tmp_path, smollm2_path):
    from tooltoken import Tool
    from tooltoken._unstated import drop_unstated
    from tooltoken.evals.bfcl import load_category, to_tool_schema

    out = tmp_path / "drop"
    summary = run_cli("bfcl", "--model", "smollm2-135m", "--category", "multiple", "--limit", "3", "--max-tokens",
                      "32", "--drop-unstated", "on", "--out", str(out))
    assert summary["config"]["drop_unstated"] is True and summary["n"] == 3
    assert summary["command"].endswith("--drop-unstated on")
    items = {it["id"]: it for it in load_category("multiple")}
    for line in (out / "records.jsonl").read_text().splitlines():
        record = json.loads(line)
        item = items[record["id"]]
        request = " ".join(m["content"] for m in item["messages"] if m["role"] == "user")
        docs = {f["name"]: f for f in item["functions"]}
        for call in record["tool_calls"]:
            (name, args), = call.items()
            if name in docs:  # what ran has nothing left to drop
                tool = Tool.from_schema("f", "", to_tool_schema(docs[name]), lambda **_: "")
                assert drop_unstated(tool, args, request) == (args, [])


@pytest.mark.timeout(1200)
def test_bench_lookup_answers_each_question_both_ways(smollm2_path):
    """`tooltoken bench lookup`: each question with tools and closed book back to back, as the
    qa eval builds both agents; the figure is the ratio of the two means."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "from tooltoken.app.cli import main; main()", "bench", "lookup",
                          "--model", "smollm2-135m", "--limit", "2", "--json"], capture_output=True, text=True,
                         timeout=1200)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["category"] == "factual" and result["n"] == 2
    assert result["tools_s_mean"] > 0 and result["closed_s_mean"] > 0
    assert abs(result["ratio_of_means"] - result["tools_s_mean"] / result["closed_s_mean"]) < 0.01
    assert 0 <= result["tools_right"] <= 2 and 0 <= result["closed_right"] <= 2
    bad = subprocess.run([sys.executable, "-c", "from tooltoken.app.cli import main; main()", "bench", "lookup",
                          "--model", "smollm2-135m", "--category", "nonsense", "--json"], capture_output=True,
                         text=True, timeout=600)
    assert bad.returncode == 1 and "no questions" in bad.stderr
