"""The eval runner, reports and CLI, with a fake suite and a fake search backend (no model)."""

import json
from types import SimpleNamespace

import pytest
from tooltoken import ConfigError
from tooltoken.evals.report import compare_runs, compare_table, markdown_table
from tooltoken.evals.runner import EvalConfig, run_eval, spread

pytestmark = pytest.mark.unit


class FakeSuite:
    name = "fake"

    def __init__(self, n=6, fail_at=None):
        self.n, self.fail_at, self.ran = n, fail_at, []

    def items(self, config):
        items = [{"id": f"q{i}", "category": "even" if i % 2 == 0 else "odd"} for i in range(self.n)]
        return spread(items, config.limit)

    def run_item(self, item):
        if item["id"] == self.fail_at:
            raise KeyboardInterrupt
        self.ran.append(item["id"])
        return {"correct": item["category"] == "even", "tool_calls": [{"f": {}}], "stop_reason": "stop"}

    def metrics(self, records):
        return {"cited": 0.5}

    def describe(self):
        return {"model": "fake-model", "versions": {"data": "1"}}


def test_spread_is_even_and_nested():
    items = list(range(400))
    assert spread(items, 4) == [0, 100, 200, 300]
    assert set(spread(items, 15)) <= set(spread(items, 30))  # a half-size run is a subset
    assert spread(items, None) == items and spread(items, 1000) == items and spread(items, 0) == []


def test_run_writes_records_summary_report_and_chart(tmp_path):
    cfg = EvalConfig("math", model="fake-model", limit=None)
    summary = run_eval(cfg, tmp_path, suite=FakeSuite())
    assert summary["suite"] == "math" and summary["model"] == "fake-model"
    assert summary["n"] == 6 and summary["accuracy"] == 0.5
    assert summary["by_category"]["even"] == {"n": 3, "accuracy": 1.0, "cited": 0.5}
    assert summary["metrics"]["tool_calls_per_item"] == 1.0 and summary["metrics"]["stop_reasons"] == {"stop": 6}
    assert summary["command"] == "tooltoken eval math --model fake-model"
    for name in ("config.json", "records.jsonl", "summary.json", "report.md", "chart.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"
    assert "| math | fake-model | even | 3 | 1.000 |" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "summary.json").read_text())["accuracy"] == 0.5


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    cfg = EvalConfig("math", model="fake-model")
    with pytest.raises(KeyboardInterrupt):
        run_eval(cfg, tmp_path, suite=FakeSuite(fail_at="q3"))
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == 3
    with open(tmp_path / "records.jsonl", "a") as f:
        f.write('{"id": "q3", "corr')  # a torn line, as a crash mid-write leaves it
    suite = FakeSuite()
    summary = run_eval(cfg, tmp_path, suite=suite)
    assert suite.ran == ["q3", "q4", "q5"]
    assert summary["n"] == 6
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [f"q{i}" for i in range(6)]


def test_a_larger_limit_extends_a_run_and_other_settings_are_refused(tmp_path):
    suite = FakeSuite(n=8)
    run_eval(EvalConfig("math", model="m", limit=2), tmp_path, suite=suite)
    run_eval(EvalConfig("math", model="m", limit=4), tmp_path, suite=suite)
    assert suite.ran == ["q0", "q4", "q2", "q6"]
    with pytest.raises(ConfigError, match="tools differ"):
        run_eval(EvalConfig("math", model="m", tools=False), tmp_path, suite=FakeSuite())


def test_a_run_from_before_a_setting_existed_resumes_at_its_default(tmp_path):
    run_eval(EvalConfig("math", model="m", limit=2), tmp_path, suite=FakeSuite(n=8))
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["drop_unstated"]  # as a run made before --drop-unstated wrote it
    (tmp_path / "config.json").write_text(json.dumps(saved))
    suite = FakeSuite(n=8)
    run_eval(EvalConfig("math", model="m", limit=4), tmp_path, suite=suite)
    assert suite.ran == ["q2", "q6"]  # q0 and q4 were done
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ConfigError, match="drop_unstated differ"):
        run_eval(EvalConfig("math", model="m", limit=4, drop_unstated=True), tmp_path, suite=FakeSuite(n=8))


def test_progress_is_reported(tmp_path):
    seen = []
    run_eval(EvalConfig("math", limit=2), tmp_path, suite=FakeSuite(), progress=lambda d, t, r: seen.append((d, t, r is None)))
    assert seen == [(0, 2, True), (1, 2, False), (2, 2, False)]


def test_compare_two_runs(tmp_path):
    run_eval(EvalConfig("math", model="m"), tmp_path / "a", suite=FakeSuite())

    class Better(FakeSuite):
        def run_item(self, item):
            return {"correct": item["id"] != "q0"}

    run_eval(EvalConfig("math", model="m", tools=False), tmp_path / "b", suite=Better())
    comparison = compare_runs(tmp_path / "a", tmp_path / "b")
    first = comparison["rows"][0]
    assert first["figure"] == "accuracy" and first["a"] == 0.5 and first["b"] == pytest.approx(5 / 6, abs=1e-3)
    assert comparison["right_only_in_a"] == ["q0"] and comparison["right_only_in_b"] == ["q1", "q3", "q5"]
    table = compare_table(comparison)
    assert "B: fake-model · tools off" in table and "+0.333" in table
    with pytest.raises(ConfigError, match="no finished eval run"):
        compare_runs(tmp_path / "a", tmp_path / "missing")


def test_markdown_table_has_one_row_per_category():
    table = markdown_table({"suite": "qa", "model": "m", "n": 4, "accuracy": 0.75,
                            "metrics": {"citation_precision": 0.5, "errors": {}},
                            "by_category": {"x": {"n": 4, "accuracy": 0.75}}})
    assert table.splitlines()[0] == "| suite | model | category | n | accuracy | citation_precision |"
    assert "| qa | m | x | 4 | 0.750 |  |" in table


def test_unknown_suite_and_category_are_named_errors():
    from tooltoken.evals.runner import get_suite

    with pytest.raises(ConfigError, match="valid suites: bfcl, math, qa, retrieval"):
        get_suite(EvalConfig("nope"))
    with pytest.raises(ConfigError, match="valid categories"):
        get_suite(EvalConfig("bfcl", category="simple_java"))
    with pytest.raises(ConfigError, match="--tools off has no meaning"):
        get_suite(EvalConfig("bfcl", tools=False))


# -- the retrieval suite and the CLI, over a fake backend ---------------------------------------

DOCS = {"d1": "paris is the capital of france", "d2": "berlin is the capital of germany",
        "d3": "the eiffel tower is in paris"}


class FakeSearch:
    def search(self, query, k=5):
        words = set(query.lower().split())
        scored = sorted(DOCS, key=lambda d: (-len(words & set(DOCS[d].split())), d))
        return [SimpleNamespace(id=d) for d in scored[:k] if words & set(DOCS[d].split())]


def fake_backend():
    return FakeSearch()


def test_retrieval_suite_and_cli_json(tmp_path):
    typer_testing = pytest.importorskip("typer.testing")
    from tooltoken.app.cli import app

    data = tmp_path / "q.jsonl"
    rows = [{"query": "capital of france", "relevant_ids": ["d1"]},
            {"query": "eiffel tower paris", "relevant_ids": ["d3", "d1"]},
            {"query": "capital of spain", "relevant_ids": "d9"}]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "run"
    result = typer_testing.CliRunner().invoke(app, [
        "eval", "retrieval", "--data", str(data), "--backend", f"{__name__}:fake_backend", "--k", "2",
        "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["suite"] == "retrieval" and summary["n"] == 3
    assert summary["accuracy"] == pytest.approx(2 / 3, abs=1e-3)  # hit@2
    assert summary["metrics"]["recall@2"] == pytest.approx((1 + 1 + 0) / 3, abs=1e-3)
    assert summary["metrics"]["mrr"] == pytest.approx((1 + 1 + 0) / 3, abs=1e-3)
    assert (out / "chart.png").exists()
    result = typer_testing.CliRunner().invoke(app, ["eval", "compare", str(out), str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"][0]["delta"] == 0.0


def test_cli_rejects_a_bad_switch(tmp_path):
    typer_testing = pytest.importorskip("typer.testing")
    from tooltoken.app.cli import app

    result = typer_testing.CliRunner().invoke(app, ["eval", "math", "--tools", "maybe", "--out", str(tmp_path)])
    assert result.exit_code != 0
