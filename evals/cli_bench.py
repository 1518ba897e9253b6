"""`tooltoken bench ...`: benchmarks are commands, not tests. Registered on the CLI through the
"tooltoken.commands" entry point (pyproject.toml), so the interfaces never import evals.

    tooltoken bench controller --json
    tooltoken bench retrieval --chunks 600

Each command imports its benchmark inside it: a missing extra shows up when that one runs.
"""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

__all__ = ["bench_app", "bench_controller", "bench_forced", "bench_invariance", "bench_lookup", "bench_retrieval",
           "bench_router", "bench_search", "bench_speculative", "bench_startup", "register"]

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (commands, not tests).")


@bench_app.command("controller")
def bench_controller(
    model: Optional[str] = typer.Option("smollm2-135m", "--model", "-m"),
    as_json: bool = typer.Option(False, "--json"),
    repeats: int = typer.Option(3, "--repeats"),
) -> None:
    """Streaming overhead, tokens evaluated per call, and call round trip versus re-prompting."""
    from tooltoken.evals.bench_controller import bench_controller as run

    _print_bench(run(model, repeats=repeats), as_json)

def _print_bench(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>28}  {v}")

@bench_app.command("search")
def bench_search(as_json: bool = typer.Option(False, "--json")) -> None:
    """BM25 over the offline Wikipedia corpus: build seconds, query latency p50/p95."""
    from tooltoken.evals.bench_search import bench_search as run

    _print_bench(run(), as_json)

@bench_app.command("invariance")
def bench_invariance(
    model: Optional[str] = typer.Option(None, "--model", "-m"),
    as_json: bool = typer.Option(False, "--json"),
    context: int = typer.Option(700, "--context"),
) -> None:
    """Logits of a batch against one token at a time, and prefill/decode speed, default vs batch-invariant."""
    from tooltoken.evals.bench_invariance import bench_invariance as run

    _print_bench(run(model, context=context), as_json)

@bench_app.command("speculative")
def bench_speculative(
    model: Optional[str] = typer.Option(None, "--model", "-m"),
    as_json: bool = typer.Option(False, "--json"),
    limit: int = typer.Option(20, "--limit"),
    batch_invariant: bool = typer.Option(
        True, "--batch-invariant/--no-batch-invariant",
        help="llama.cpp settings under which a draft batch computes as one token does (default)"),
) -> None:
    """Prompt-lookup speculative decoding on grounded answers, against plain greedy decoding."""
    from tooltoken.evals.bench_speculative import bench_speculative as run

    _print_bench(run(model, limit=limit, batch_invariant=batch_invariant), as_json)


@bench_app.command("forced")
def bench_forced(
    model: Optional[str] = typer.Option("smollm2-135m", "--model", "-m"),
    n: int = typer.Option(200, "--n", help="Forced calls to make, at least."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Calls forced by tool_choice across the built-in tools: how many came out empty-named or unreadable."""
    from tooltoken.evals.bench_forced import bench_forced as run

    _print_bench(run(model, n), as_json)


@bench_app.command("lookup")
def bench_lookup(
    model: Optional[str] = typer.Option(None, "--model", "-m"),
    category: str = typer.Option("factual", "--category", "-c", help="A qa category (factual, known, ...)."),
    limit: Optional[int] = typer.Option(48, "--limit", "-n", help="At most N questions, spread evenly."),
    threads: Optional[int] = typer.Option(None, "--threads"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Seconds a question with tools against closed book, each question answered both ways back to back."""
    from tooltoken.evals.bench_lookup import bench_lookup as run

    try:
        result = run(model, category=category, limit=limit, threads=threads)
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(1) from None
    _print_bench(result, as_json)


@bench_app.command("router")
def bench_router(
    fit: bool = typer.Option(False, "--fit", help="Fit the embedding router on evals/data/routes.jsonl first "
                                                  "(writes agent/router_weights.json)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The router's accuracy on held-out labelled questions, and its cost per question."""
    from tooltoken.evals.bench_router import bench_router as run

    _print_bench(run(fit=fit), as_json)


@bench_app.command("retrieval")
def bench_retrieval(
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    chunks: int = typer.Option(600, "--chunks", help="Real chunks to ingest and encode."),
) -> None:
    """Ingest vs. raw encode throughput, search latency at 10k/100k vectors, recall vs. exact."""
    from tooltoken.evals.bench_retrieval import bench_retrieval as run
    from tooltoken.retrieval import RetrievalError

    try:
        result = run(chunks=chunks)
    except RetrievalError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(1) from None
    _print_bench(result, as_json)


@bench_app.command("startup")
def bench_startup(
    model: Optional[str] = typer.Option(None, "--model", "-m"),
    as_json: bool = typer.Option(False, "--json"),
    questions: Optional[str] = typer.Option(None, "--questions", help="A JSONL file of {\"question\": ...} "
                                            "(default: five direct questions)."),
    max_tokens: int = typer.Option(48, "--max-tokens"),
    repeats: int = typer.Option(1, "--repeats"),
    in_process: bool = typer.Option(True, "--in-process/--no-in-process", help="Also time answers once loaded."),
) -> None:
    """Cold processes side by side: the bare model, tooltoken with a cold and a warm prompt cache."""
    from tooltoken.evals.bench_startup import QUESTIONS
    from tooltoken.evals.bench_startup import bench_startup as run

    asked = list(QUESTIONS)
    if questions:
        try:
            with open(questions, encoding="utf-8") as f:
                asked = [str(json.loads(line)["question"]) for line in f if line.strip()]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            sys.stderr.write(f"error: {questions}: {exc}\n")
            raise typer.Exit(1) from None
    _print_bench(run(model, asked, max_tokens=max_tokens, repeats=repeats, in_process=in_process), as_json)


def register(app: typer.Typer) -> None:
    """Add the `bench` group to the main CLI."""
    app.add_typer(bench_app, name="bench")
