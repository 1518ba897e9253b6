"""`tooltoken index PATH...` and `tooltoken bench retrieval`: the retrieval room's commands.

The main CLI calls `register(app)`. Rendering (progress bar, summary) lives here; the work is
`tooltoken.retrieval.ingest`, which reports through its progress callback and never prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["register"]

_STAGES = {"scan": "hashing files", "read": "reading files", "embed": "embedding chunks", "done": "done"}


def index(
    paths: list[Path] = typer.Argument(..., exists=True, help="Files or folders to index (.txt .md .rst .html .pdf)."),
    chunk_size: int = typer.Option(800, "--chunk-size", help="Characters per chunk."),
    chunk_overlap: int = typer.Option(100, "--chunk-overlap", help="Characters shared by neighbouring chunks."),
    max_file_mb: float = typer.Option(25.0, "--max-file-mb", help="Skip files larger than this (MiB)."),
    db: Optional[Path] = typer.Option(None, "--db", help="Milvus Lite index folder (default: in the user data dir)."),
    uri: Optional[str] = typer.Option(None, "--uri", help="A Milvus server instead, e.g. http://localhost:19530."),
    token: Optional[str] = typer.Option(None, "--token", envvar="TOOLTOKEN_MILVUS_TOKEN", help="Milvus server token."),
    collection: str = typer.Option("chunks", "--collection", help="Collection name."),
    model: Optional[Path] = typer.Option(None, "--model", help="A local sentence-transformers model folder."),
) -> None:
    """Index documents for retrieval; re-running only embeds what changed."""
    from tooltoken.retrieval import MilvusStore, RetrievalError, SentenceTransformerEmbedder, ingest

    out, err = Console(), Console(stderr=True)
    try:
        with MilvusStore(db, uri=uri, token=token, collection=collection) as store:  # first: a held lock fails fast
            with err.status("loading the embedding model..."):
                embedder = SentenceTransformerEmbedder(model)
            with _bar(err) as (bar, on_progress):
                report = ingest(
                    paths, store, embedder, chunk_size=chunk_size, chunk_overlap=chunk_overlap, progress=on_progress,
                    max_file_bytes=int(max_file_mb * 1024 * 1024),
                )
            where = store.where
    except RetrievalError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    out.print(
        f"indexed into {where}: {report.files_new} new, {report.files_changed} changed, "
        f"{report.files_unchanged} unchanged, {report.files_deleted} deleted files; "
        f"{report.chunks_embedded} chunks embedded, {report.chunks_deleted} removed "
        f"in {report.seconds:.1f} s",
        highlight=False,
    )
    if report.recovered:
        out.print("an interrupted earlier run was rolled back first", highlight=False)
    if report.skipped:
        out.print(f"[yellow]skipped {len(report.skipped)} file(s):[/yellow]")
        for s in report.skipped:
            out.print(f"  {s.path}: {s.reason}", highlight=False, markup=False)


class _bar:
    """A rich progress bar fed by ingest's progress callback: files while hashing and reading,
    chunks (with ETA) while embedding."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<17}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task: Any = None
        self.stage = ""

    def __enter__(self) -> tuple[Progress, Any]:
        self.progress.__enter__()
        return self.progress, self.update

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def update(self, p: Any) -> None:
        chunks = p.stage in ("embed", "done") and p.chunks_total > 0
        done, total = (p.chunks_done, p.chunks_total) if chunks else (p.files_done, p.files_total)
        unit = "chunks" if chunks else "files"
        if p.stage != self.stage and p.stage != "done":
            if self.task is not None:
                previous = next(t for t in self.progress.tasks if t.id == self.task)
                self.progress.update(self.task, completed=previous.total)
            self.task = self.progress.add_task(_STAGES.get(p.stage, p.stage), total=max(total, 1), unit=unit)
            self.stage = p.stage
        if self.task is not None:
            self.progress.update(self.task, completed=done, total=max(total, 1))


def register(app: typer.Typer) -> None:
    """Add `index` to `app`."""
    app.command("index")(index)
