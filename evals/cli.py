"""`tooltoken eval`: run a suite, resume it, compare two runs. Registered by the main CLI.

    tooltoken eval bfcl --category simple_python --limit 50
    tooltoken eval math --tools off --limit 40 --json
    tooltoken eval compare runs/math-qwen2.5-coder-1.5b runs/math-qwen2.5-coder-1.5b-tools-off

This module is the only part of tooltoken.evals that prints. Heavy imports happen inside the
commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

__all__ = ["default_out", "register"]

_SUITES = ("bfcl", "math", "qa", "retrieval")


def _switch(value: str, flag: str) -> bool:
    v = value.strip().lower()
    if v in ("on", "true", "yes", "1"):
        return True
    if v in ("off", "false", "no", "0"):
        return False
    raise typer.BadParameter(f"{flag} takes on or off, not {value!r}")


def _threshold(value: str | None) -> float | str | None:
    """--call-check: a threshold, "off", or None (not given: the answer policy's)."""
    if value is None or value.strip().lower() == "off":
        return None if value is None else "off"
    try:
        return float(value)
    except ValueError:
        raise typer.BadParameter(f"--call-check takes a number or off, not {value!r}") from None


def default_out(config: Any) -> Path:
    """runs/<suite>[-<category>]-<model>[-tools-off][-grammar-off][-seed<n>][-k<k>][-max<n>][-<data>]:
    rerunning the same command finds the same folder and resumes there."""
    from .runner import model_name

    parts = [config.suite]
    if config.category:
        parts.append(config.category)
    parts.append(model_name(config.model) if config.suite != "retrieval" else config.backend.replace(":", "-"))
    if not config.tools:
        parts.append("tools-off")
    if not config.grammar:
        parts.append("grammar-off")
    if config.seed:
        parts.append(f"seed{config.seed}")
    if config.suite == "retrieval" and config.k != 10:
        parts.append(f"k{config.k}")
    if config.max_tokens is not None:
        parts.append(f"max{config.max_tokens}")
    if config.call_check == "off":
        parts.append("check-off")
    elif config.call_check is not None:
        parts.append(f"check{config.call_check:g}")
    if config.drop_unstated:
        parts.append("drop-unstated")
    if config.data:
        parts.append(Path(config.data).stem)
    return Path("runs") / "-".join(p.replace("/", "_") for p in parts)


def register(app: typer.Typer) -> None:
    eval_app = typer.Typer(
        no_args_is_help=True,
        help="Evals: BFCL tool calls, calculator math, grounded QA, retrieval. Results go to an output folder.",
    )
    app.add_typer(eval_app, name="eval")

    def run_suite(
        suite: str,
        model: str | None,
        tools: str,
        grammar: str,
        limit: int | None,
        seed: int,
        category: str | None,
        data: str | None,
        backend: str,
        k: int,
        max_tokens: int | None,
        threads: int | None,
        call_check: str | None,
        drop_unstated: str,
        out: Path | None,
        as_json: bool,
    ) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        from .runner import EvalConfig, run_eval

        config = EvalConfig(
            suite, model=model, tools=_switch(tools, "--tools"), grammar=_switch(grammar, "--grammar"),
            limit=limit, seed=seed, category=category, data=data, backend=backend, k=k, max_tokens=max_tokens,
            threads=threads, call_check=_threshold(call_check), drop_unstated=_switch(drop_unstated, "--drop-unstated"),
        )  # fmt: skip
        folder = out or default_out(config)
        err = Console(stderr=True)
        columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("acc {task.fields[acc]}"), TimeElapsedColumn(), TimeRemainingColumn())
        right = [0, 0]
        with Progress(*columns, console=err, transient=as_json) as bar:
            task = bar.add_task(f"{suite}", total=None, acc="-")

            def progress(done: int, total: int, record: dict | None) -> None:
                if record is None:
                    bar.update(task, total=total, completed=done, description=f"{suite} (loading)" if done < total else suite)
                    return
                right[0] += bool(record.get("correct"))
                right[1] += 1
                bar.update(task, total=total, completed=done, description=suite, acc=f"{right[0] / right[1]:.2f}")

            summary = run_eval(config, folder, progress=progress)
        if as_json:
            print(json.dumps(summary, ensure_ascii=False))
            return
        from rich.markdown import Markdown

        from .report import markdown_table

        console = Console()
        console.print(Markdown(markdown_table(summary)))
        console.print(f"[dim]{folder}/ — records.jsonl, summary.json, report.md, chart.png[/dim]")

    def make(suite: str, doc: str) -> None:
        def command(
            model: str | None = typer.Option(None, "--model", "-m", help="A model pack name or a .gguf path."),
            tools: str = typer.Option("on", "--tools", help="on, or off for closed book (no tool declared)."),
            grammar: str = typer.Option("on", "--grammar", help="on, or off: calls written without the call grammar."),
            limit: int | None = typer.Option(None, "--limit", "-n", help="At most N items (per category), spread evenly."),
            seed: int = typer.Option(0, "--seed", help="Generators' and sampler's seed."),
            category: str | None = typer.Option(None, "--category", "-c", help="One category of the suite."),
            data: str | None = typer.Option(None, "--data", help="A JSONL data file (qa, retrieval)."),
            backend: str = typer.Option(
                "bm25", "--backend", help="qa/retrieval search: bm25, dense or hybrid over Wikipedia (dense, hybrid: "
                                          "MiniLM in Milvus Lite, built once), or module:factory."),
            k: int = typer.Option(10, "--k", help="retrieval: cut-off of recall@k and MRR."),
            max_tokens: int | None = typer.Option(None, "--max-tokens", help="Answer tokens per item."),
            threads: int | None = typer.Option(None, "--threads", help="llama.cpp threads (default: one per core)."),
            call_check: str | None = typer.Option(
                None, "--call-check", help="bfcl: drop calls the model itself judges off the request below this "
                                           "yes-no log-odds, or off (the call check; default: the answer "
                                           "policy's, 1.05 on the direct path)."),
            drop_unstated: str = typer.Option(
                "off", "--drop-unstated", help="bfcl: on leaves out of calls the optional values that the "
                                               "request never states (off by default)."),
            out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default runs/<suite>-<model>...)."),
            as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
        ) -> None:
            run_suite(suite, model, tools, grammar, limit, seed, category, data, backend, k, max_tokens, threads,
                      call_check, drop_unstated, out, as_json)

        command.__doc__ = doc
        eval_app.command(suite)(command)

    make("bfcl", "Berkeley Function Calling Leaderboard v4 (simple_python, multiple, parallel, parallel_multiple, "
                 "irrelevance), AST-checked.")
    make("math", "Word problems and arithmetic (reasoning-gym gsm_symbolic, basic_arithmetic; the written "
                 "word problems: written_dev, written_test) under the default answer policy, as chat answers "
                 "them; exact numeric match.")
    make("qa", "Questions answered under the default answer policy (search first) over the Wikipedia corpus; "
               "contains-match and citation precision.")
    make("retrieval", "recall@k and MRR of a search backend on {query, relevant_ids} JSONL.")

    @eval_app.command("compare")
    def compare(
        run_a: Path = typer.Argument(..., help="A run folder (with summary.json)."),
        run_b: Path = typer.Argument(..., help="Another run folder."),
        as_json: bool = typer.Option(False, "--json", help="Print the comparison as one JSON object."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Also write compare.md and compare.png here."),
    ) -> None:
        """Two runs side by side: accuracy and figures, per category, and the items they disagree on."""
        from rich.console import Console
        from rich.markdown import Markdown

        from .report import compare_runs, compare_table, write_compare_chart

        comparison = compare_runs(run_a, run_b)
        table = compare_table(comparison)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "compare.md").write_text(
                f"A: `{comparison['a']['command']}`\n\nB: `{comparison['b']['command']}`\n\n{table}\n", encoding="utf-8")
            write_compare_chart(comparison, out / "compare.png")
        if as_json:
            print(json.dumps(comparison, ensure_ascii=False))
            return
        console = Console()
        console.print(f"A: {comparison['a']['run']}  ({comparison['a']['command']})", markup=False, highlight=False)
        console.print(f"B: {comparison['b']['run']}  ({comparison['b']['command']})", markup=False, highlight=False)
        console.print(Markdown(table))
        if comparison["common_items"]:
            console.print(
                f"{comparison['common_items']} items in both; right only in A: {len(comparison['right_only_in_a'])}"
                f" {comparison['right_only_in_a'][:10]}; right only in B: {len(comparison['right_only_in_b'])}"
                f" {comparison['right_only_in_b'][:10]}", markup=False, highlight=False,
            )
        sys.stdout.flush()
