"""Questions in JSONL, answers with citations in JSONL: resumable, and a failure never ends the run.

    >>> summary = run_batch("questions.jsonl", "answers.jsonl", model="smollm2-135m")   # doctest: +SKIP
    >>> summary.answered, summary.failed, summary.skipped                              # doctest: +SKIP
    (9, 1, 0)

Each input line is a JSON object with `id` and `question`; its other fields are copied to the
output line. Each output line is the input's fields plus `answer`, `stop_reason`, `citations`,
`tool_calls`, `tool_results`, `usage`, `timings` and `error` (null, or `{"type", "message"}` when
that question failed; then `answer` is null). A bad input line (not JSON, no `id` or `question`,
an id seen before) is a failed line too, under the id `line:N` when it has none.

Resuming: ids already in the output are skipped (with `retry_failed=True`, only those that were
answered: failed ones run again and their new line follows the old one; readers take the last
line of an id). Every line is flushed and fsynced when written, so a crash loses at most the
answers in flight; a half-written last line left by a crash is cut off before appending.

Concurrency: `concurrency` questions are in flight at once. On one in-process model they queue
on its lock, so more than 1 only helps with backends that serve requests in parallel.
"""

from __future__ import annotations

import inspect
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tooltoken.tools import ConfigError

__all__ = ["BatchSummary", "ProgressHook", "run_batch"]

#: Called after each question as progress(done, total, failed): done counts this run's answered
#: and failed questions, total those this run has to do. A hook, never printed by the library.
ProgressHook = Callable[[int, int, int], None]


@dataclass
class BatchSummary:
    output: str
    total: int = 0  # lines in the input
    skipped: int = 0  # already in the output
    answered: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    failures: list[dict[str, Any]] = field(default_factory=list)  # {"id", "error"} of this run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_batch(
    questions: str | os.PathLike[str] | Iterable[dict[str, Any]],
    output: str | os.PathLike[str],
    *,
    agent: Any = None,
    model: Any = None,
    tools: Any = None,
    concurrency: int = 1,
    retry_failed: bool = False,
    progress: ProgressHook | None = None,
    cancel: threading.Event | None = None,
    **options: Any,
) -> BatchSummary:
    """Answer every question not yet in `output`, appending one JSON line per question.

    `agent`: an `Agent` to use; else one is made from `model`, `tools` (default: the default
    tools) and the agent keyword arguments in `options` (n_ctx, system, temperature, top_k,
    top_p, min_p, repeat_penalty, seed, call_greedy, draft: see `agent_options`; with `agent`
    they are an error). The other `options` (tool_choice, max_tokens, ...) apply to every
    question. Each question browses on its own (`Agent.stream`). `cancel`: set it to stop after
    the questions in flight.
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
    start = time.perf_counter()
    out_path = Path(output)
    done_ids = _done_ids(out_path, retry_failed)
    items = list(_read(questions))
    summary = BatchSummary(output=str(out_path), total=len(items))
    todo: list[tuple[str, dict[str, Any], str | None]] = []  # (id, record, problem)
    seen: set[str] = set()
    for n, item in items:
        key, record, problem = _check(n, item, seen)
        if key in done_ids:
            summary.skipped += 1
            continue
        todo.append((key, record, problem))
    agent_kwargs = {k: v for k, v in options.items() if k in agent_options()}
    if agent is not None and agent_kwargs:
        raise ConfigError(f"{sorted(agent_kwargs)} configure the Agent: pass them to Agent(...), or pass `model` "
                          "instead of `agent`")
    if agent is None and any(p is None for _, _, p in todo):
        agent = _make_agent(model, tools, agent_kwargs)
    run_options = {k: v for k, v in options.items() if k not in agent_kwargs}
    cancel = cancel or threading.Event()
    lock = threading.Lock()
    _repair_tail(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "a", encoding="utf-8") as out:

        def write(line: dict[str, Any]) -> None:
            with lock:
                out.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
                out.flush()
                os.fsync(out.fileno())
                if line["error"] is None:
                    summary.answered += 1
                else:
                    summary.failed += 1
                    summary.failures.append({"id": line["id"], "error": line["error"]})
                if progress is not None:
                    progress(summary.answered + summary.failed, len(todo), summary.failed)

        def one(key: str, record: dict[str, Any], problem: str | None) -> None:
            if problem is not None:
                write({**record, "id": key, "answer": None, "error": {"type": "InputError", "message": problem}})
                return
            line = answer_one(agent, record, run_options, cancel)
            if line is not None:
                write(line)

        if progress is not None:
            progress(0, len(todo), 0)
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="tooltoken-batch") as pool:
            pending: set[Future] = set()
            try:
                for job in todo:
                    if cancel.is_set():
                        break
                    pending.add(pool.submit(one, *job))
                    if len(pending) >= concurrency:  # submit lazily, so a cancel leaves the rest unstarted
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for f in finished:
                            f.result()  # one() records failures itself; this only re-raises our own bugs
                for f in pending:
                    f.result()
            except BaseException:  # Ctrl-C or our bug: stop the answers in flight, write nothing half done
                cancel.set()
                raise
    summary.elapsed_s = time.perf_counter() - start
    return summary


def answer_one(
    agent: Any, record: dict[str, Any], options: dict[str, Any], cancel: threading.Event
) -> dict[str, Any] | None:
    """One output line for one input record; an exception becomes the line's `error`.
    None when the run was cancelled during this question (nothing to write)."""
    try:
        final = None
        for event in agent.stream(record["question"], cancel=cancel, **options):
            final = event
        if final.stop_reason == "cancelled" and cancel.is_set():  # type: ignore[union-attr]
            return None  # not written: a resumed run asks it again
        data = final.to_dict()  # type: ignore[union-attr]
        if data.get("prompt") is None:
            del data["prompt"]
        return {**record, **data, "error": None}
    except Exception as exc:  # recorded in the output and the summary; the run goes on
        return {**record, "answer": None, "error": {"type": type(exc).__name__, "message": str(exc) or repr(exc)}}


def agent_options() -> frozenset[str]:
    """The keyword arguments that configure `Agent(...)` itself (system, n_ctx, the sampling
    settings, draft, ...), read from its signature so that none is dropped as it grows; the
    other options (tool_choice, max_tokens, ...) apply per question."""
    from tooltoken import Agent

    params = inspect.signature(Agent.__init__).parameters.values()
    return frozenset(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def _make_agent(model: Any, tools: Any, kw: dict[str, Any]) -> Any:
    from tooltoken import Agent
    from tooltoken.tools import default_tools

    return Agent(model=model, tools=default_tools() if tools is None else tools, **kw)


def _read(questions: str | os.PathLike[str] | Iterable[dict[str, Any]]) -> Iterator[tuple[int, Any]]:
    """(line number from 1, parsed object or the error text) for each non-blank input line."""
    if not isinstance(questions, (str, os.PathLike)):
        for n, item in enumerate(questions, 1):
            yield n, item
        return
    path = Path(questions)
    try:
        f = open(path, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read questions from {path}: {exc}") from None
    with f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except ValueError as exc:
                yield n, _Bad(f"line {n} is not JSON: {exc}")


class _Bad(str):
    """The text of why an input line could not be read."""


def _check(n: int, item: Any, seen: set[str]) -> tuple[str, dict[str, Any], str | None]:
    if isinstance(item, _Bad):
        return f"line:{n}", {}, str(item)
    if not isinstance(item, dict):
        return f"line:{n}", {}, f"line {n} is not a JSON object"
    raw_id = item.get("id")
    key = str(raw_id) if raw_id is not None and raw_id != "" else f"line:{n}"
    record = dict(item)
    if raw_id is None or raw_id == "":
        return key, record, f"line {n} has no \"id\""
    if key in seen:
        return f"line:{n}", record, f"line {n} repeats id {key!r}"
    seen.add(key)
    if not isinstance(item.get("question"), str) or not item["question"].strip():
        return key, record, f"line {n} has no \"question\" (a non-empty string)"
    return key, record, None


def _done_ids(path: Path, retry_failed: bool) -> set[str]:
    """Ids in an existing output file (only the answered ones when retrying failures)."""
    last: dict[str, bool] = {}  # id -> answered, by its last line
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        return set()
    with f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:  # a line cut by a crash: that question runs again
                continue
            if isinstance(row, dict) and row.get("id") is not None:
                last[str(row["id"])] = row.get("error") is None
    return {k for k, ok in last.items() if ok or not retry_failed}


def _repair_tail(path: Path) -> None:
    """Cut a last line that a crash left without its newline, so the next line starts clean."""
    try:
        with open(path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            pos = size
            while pos > 0:  # back to the last newline, a block at a time
                step = min(65536, pos)
                f.seek(pos - step)
                block = f.read(step)
                cut = block.rfind(b"\n")
                if cut != -1:
                    f.truncate(pos - step + cut + 1)
                    return
                pos -= step
            f.truncate(0)
    except FileNotFoundError:
        return
