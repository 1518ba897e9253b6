"""`tooltoken run`, `tooltoken serve` and `tooltoken config`: the interfaces' commands.

The main CLI calls `register(app)`. Drawing (progress bar, summary, the settings table) lives
here; the work is `tooltoken._batch.run_batch` and `tooltoken.app.server.create_app`, which never print.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

__all__ = ["register"]

out, err = Console(), Console(stderr=True)

ConfigOpt = typer.Option(None, "--config", help="A TOML settings file (else $TOOLTOKEN_CONFIG, else the user config).")
# sampling, as in `chat` and `ask` (tooltoken.Sampling); tool calls stay greedy unless call_greedy = false
TemperatureOpt = typer.Option(None, "--temperature", help="Sampling temperature (default 0: greedy).")
TopKOpt = typer.Option(None, "--top-k", help="Sample from the k most likely tokens (default 40; 0: no cut).")
TopPOpt = typer.Option(None, "--top-p", help="Sample from the top tokens up to this mass (default 0.95).")
MinPOpt = typer.Option(None, "--min-p", help="Drop tokens below min-p x the top probability (default 0.05).")
RepeatPenaltyOpt = typer.Option(None, "--repeat-penalty", help="Penalty on recent tokens (default 1: none).")
SeedOpt = typer.Option(None, "--seed", help="Sampling seed (default 0; -1: random).")
PromptCacheOpt = typer.Option(None, "--prompt-cache/--no-prompt-cache", help="Restore the prompt's static prefix "
                               "from the user cache dir instead of evaluating it (default: on).")
DraftOpt = typer.Option(None, "--draft", help="Speculative decoding: prompt-lookup, or a small draft .gguf with the "
                        "same vocabulary (batch-invariant kernels: drafts never change the text).")


def _settings(config: Optional[Path], **flags: Any) -> Any:
    from tooltoken.app._settings import load_settings

    return load_settings(flags, config)


def make_agent(s: Any, model: Optional[str] = None) -> Any:
    """The Agent of the settings `s` (chat, ask, run and serve build it here, the same way)."""
    from tooltoken import Agent

    from tooltoken._models import resolve_model

    from concurrent.futures import ThreadPoolExecutor

    path = resolve_model(model or s.model)  # a wrong name fails here, before tools load
    kwargs = s.agent_kwargs()
    with err.status("loading model..."):
        with ThreadPoolExecutor(1, thread_name_prefix="tooltoken-load") as pool:
            loading = pool.submit(Agent.load_model, path, **kwargs)  # the weights load while the tools are built
            tools = s.build_tools()
            loading.result()  # a model that does not load fails here
        return Agent(model=path, tools=tools, **kwargs)


def run(
    questions: Path = typer.Argument(..., help="JSONL, one {\"id\": ..., \"question\": ...} a line."),
    output: Path = typer.Option(..., "--output", "-o", help="JSONL answers; appended to, ids in it are skipped."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="A model pack name or a .gguf path."),
    config: Optional[Path] = ConfigOpt,
    tools: Optional[str] = typer.Option(None, "--tools", help="Built-in tools, comma-separated: calculator, browser."),
    tool_choice: Optional[str] = typer.Option(None, "--tool-choice", help="auto, required, none or a tool name."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Answer tokens per question."),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", "-j", help="Questions in flight at once."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Ask again the questions that failed before."),
    temperature: Optional[float] = TemperatureOpt,
    top_k: Optional[int] = TopKOpt,
    top_p: Optional[float] = TopPOpt,
    min_p: Optional[float] = MinPOpt,
    repeat_penalty: Optional[float] = RepeatPenaltyOpt,
    seed: Optional[int] = SeedOpt,
    draft: Optional[str] = DraftOpt,
    prompt_cache: Optional[bool] = PromptCacheOpt,
) -> None:
    """Answer a JSONL file of questions into a JSONL file of answers with citations (resumable)."""
    from tooltoken._batch import run_batch

    s = _settings(config, model=model, tools=tools, tool_choice=tool_choice, max_tokens=max_tokens,
                  concurrency=concurrency, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                  repeat_penalty=repeat_penalty, seed=seed, draft=draft, prompt_cache=prompt_cache)
    agent = make_agent(s)
    columns = (TextColumn("answering"), BarColumn(), MofNCompleteColumn(),
               TextColumn("[red]{task.fields[failed]} failed"), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("answering", total=None, failed=0)

        def progress(done: int, total: int, failed: int) -> None:
            bar.update(task, completed=done, total=total, failed=failed)

        try:
            summary = run_batch(questions, output, agent=agent, concurrency=s.concurrency, retry_failed=retry_failed,
                                progress=progress)
        except KeyboardInterrupt:
            bar.stop()
            err.print("[yellow]interrupted: answers written so far are kept; run again to resume[/yellow]")
            raise typer.Exit(130) from None
    for f in summary.failures[:10]:
        err.print(f"[red]failed[/red] {f['id']}: {f['error']['type']}: {f['error']['message']}", highlight=False)
    if len(summary.failures) > 10:
        err.print(f"... and {len(summary.failures) - 10} more (see the error field in {output})", highlight=False)
    out.print(f"{summary.answered} answered, {summary.failed} failed, {summary.skipped} skipped (already in "
              f"{output}) of {summary.total} in {summary.elapsed_s:.1f} s", highlight=False)


def serve(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="A model pack name or a .gguf path."),
    config: Optional[Path] = ConfigOpt,
    host: Optional[str] = typer.Option(None, "--host", help="Address to listen on (default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, "--port", "-p", help="Port (default 8000; 0 picks a free one)."),
    api_key: Optional[str] = typer.Option(None, "--api-key", help="Require 'Authorization: Bearer KEY' (else open)."),
    tools: Optional[str] = typer.Option(None, "--tools", help="Built-in tools, comma-separated: calculator, browser."),
    tool_choice: Optional[str] = typer.Option(None, "--tool-choice", help="Default tool_choice of every request."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Default max_tokens of a request."),
    max_tokens_cap: Optional[int] = typer.Option(None, "--max-tokens-cap", help="Largest max_tokens a request gets."),
    max_body_bytes: Optional[int] = typer.Option(None, "--max-body-bytes", help="Largest request body (413 above)."),
    rate_limit: Optional[float] = typer.Option(None, "--rate-limit", help="Requests per minute per client (0: off)."),
    max_queue: Optional[int] = typer.Option(None, "--max-queue", help="Requests admitted at once (503 above)."),
    served_model_name: Optional[str] = typer.Option(None, "--served-model-name", help="Model id in the API."),
    temperature: Optional[float] = TemperatureOpt,
    top_k: Optional[int] = TopKOpt,
    top_p: Optional[float] = TopPOpt,
    min_p: Optional[float] = MinPOpt,
    repeat_penalty: Optional[float] = RepeatPenaltyOpt,
    seed: Optional[int] = SeedOpt,
    draft: Optional[str] = DraftOpt,
    prompt_cache: Optional[bool] = PromptCacheOpt,
) -> None:
    """Serve the agent as an OpenAI-compatible API (/v1/chat/completions, /v1/models). Sampling is
    set here, for every request (a request's temperature, seed, ... are ignored)."""
    from tooltoken.app.server import create_app
    from tooltoken.app.server import serve as run_server

    s = _settings(config, model=model, host=host, port=port, api_key=api_key, tools=tools, tool_choice=tool_choice,
                  max_tokens=max_tokens, max_tokens_cap=max_tokens_cap, max_body_bytes=max_body_bytes,
                  rate_limit=rate_limit, max_queue=max_queue, served_model_name=served_model_name,
                  temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, repeat_penalty=repeat_penalty,
                  seed=seed, draft=draft, prompt_cache=prompt_cache)
    agent = make_agent(s)
    key = s.api_key.get_secret_value() if s.api_key is not None else None
    app = create_app(agent, served_model_name=s.served_model_name, api_key=key, max_body_bytes=s.max_body_bytes,
                     max_tokens_cap=s.max_tokens_cap, rate_limit=s.rate_limit, max_queue=s.max_queue)
    if s.host not in ("127.0.0.1", "localhost", "::1") and key is None:
        err.print(f"[yellow]warning:[/yellow] listening on {s.host} with no --api-key: anyone who can reach "
                  "this address can use the model", highlight=False)
    err.print(f"serving {agent.backend.name} as '{s.served_model_name}' on http://{s.host}:{s.port}/v1 "
              f"({'API key required' if key else 'no API key'}); Ctrl-C stops", highlight=False)
    run_server(app, host=s.host, port=s.port)


config_app = typer.Typer(no_args_is_help=True, help="Settings: defaults < config file < TOOLTOKEN_* < flags.")


@config_app.command("show")
def config_show(
    config: Optional[Path] = ConfigOpt,
    as_json: bool = typer.Option(False, "--json", help="Print {name: {value, origin}} as JSON."),
) -> None:
    """The effective settings and where each value came from."""
    s = _settings(config)
    rows = {}
    for name in type(s).model_fields:
        value = getattr(s, name)
        if name == "api_key" and value is not None:
            value = "****"  # set, not shown
        elif isinstance(value, Path):
            value = str(value)
        rows[name] = {"value": value, "origin": s.origin(name)}
    if as_json:
        print(json.dumps({"config_file": str(s.config_file) if s.config_file else None, "settings": rows}))
        return
    out.print(f"config file: {s.config_file or 'none'}", highlight=False)
    table = Table("setting", "value", "origin", box=None)
    for name, row in rows.items():
        table.add_row(name, json.dumps(row["value"]) if not isinstance(row["value"], str) else row["value"],
                      row["origin"], style=None if row["origin"] == "default" else "bold")
    out.print(table)


@config_app.command("path")
def config_path_cmd() -> None:
    """Where the config file is looked for."""
    from tooltoken.app._settings import config_path

    path, why = config_path()
    if path is None:
        import platformdirs

        default = Path(platformdirs.user_config_dir("tooltoken")) / "config.toml"
        out.print(f"{default} (not present)", highlight=False)
    else:
        out.print(f"{path} ({why})", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("serve")(serve)
    app.add_typer(config_app, name="config")
