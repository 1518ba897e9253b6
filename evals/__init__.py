"""Evals and benchmarks: datasets, metrics, runners, reports.

    >>> from tooltoken.evals import EvalConfig, run_eval
    >>> summary = run_eval(EvalConfig("bfcl", category="simple_python", limit=50), "runs/bfcl")  # doctest: +SKIP

Suites (`tooltoken eval SUITE`): `bfcl` (bfcl.py, scored by bfcl_checker.py), `math`
(math_suite.py), `qa` (qa.py) and `retrieval` (retrieval_suite.py); the runner (runner.py) writes
records, a summary, a table and a chart (report.py); the scorers are in metrics.py.
"""

from .report import compare_runs, load_summary
from .runner import SUITES, EvalConfig, run_eval

__all__ = ["SUITES", "EvalConfig", "compare_runs", "load_summary", "run_eval"]
