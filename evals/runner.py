"""The eval runner: items in, one JSON line per item out, then a summary, a table and a chart.

    >>> summary = run_eval(EvalConfig("math", model="smollm2-135m", limit=3), "runs/math-smoke")  # doctest: +SKIP
    >>> summary["n"], summary["accuracy"]                                                     # doctest: +SKIP
    (3, 0.33)

An output folder holds:
- `config.json`   what was run (suite, model, flags); a folder belongs to one configuration;
- `records.jsonl` one JSON object per finished item, appended and flushed as each ends, so a run
                  that was stopped (Ctrl-C, a crash, a reboot) goes on where it was when started
                  again with the same command; a torn last line is dropped and redone;
- `summary.json`  suite, model, n, accuracy, the suite's other metrics, per-category figures,
                  timings, versions and the command that reproduces it;
- `report.md`     the summary as a markdown table; `chart.png` the same as a bar chart.

A suite (bfcl.py, math_suite.py, qa.py, retrieval_suite.py) is an object with `items(config)`,
`run_item(item)` and `metrics(records)`. The runner never prints: the CLI passes a `progress`
callable and draws the bar.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from tooltoken.tools import ConfigError

__all__ = ["SUITES", "EvalConfig", "ProgressFn", "Suite", "data_rows", "get_suite", "model_for", "model_name",
           "policy_of", "run_eval", "spread", "summarize"]

#: progress(done, total, record): called once before the first item (record None) and after each item.
ProgressFn = Callable[[int, int, "dict[str, Any] | None"], None]

SUITES = {
    "bfcl": "tooltoken.evals.bfcl:BFCLSuite",
    "math": "tooltoken.evals.math_suite:MathSuite",
    "qa": "tooltoken.evals.qa:QASuite",
    "retrieval": "tooltoken.evals.retrieval_suite:RetrievalSuite",
}


@dataclass
class EvalConfig:
    """What to run. `None` fields take the suite's default (see each suite's docstring)."""

    suite: str
    model: str | None = None  # a model pack name or a .gguf path; None: the default pack
    tools: bool = True  # False: closed book, no tool is declared
    grammar: bool = True  # False: calls are written without the call grammar
    limit: int | None = None  # at most this many items, spread evenly over each category
    seed: int = 0  # generators' seed (math) and the sampler's
    category: str | None = None  # one category of the suite (BFCL category, math generator)
    data: str | None = None  # a JSONL file (qa, retrieval); None: the suite's dev set
    backend: str = "bm25"  # search backend of qa and retrieval: "bm25" (Wikipedia) or "module:factory"
    k: int = 10  # retrieval: recall@k and MRR cut-off
    max_tokens: int | None = None  # answer tokens per item
    n_ctx: int = 4096
    threads: int | None = None  # llama.cpp threads; None: the backend's default (all cores)
    # bfcl: the call check's threshold (Options.call_check); "off": none; None: the policy's
    call_check: float | str | None = None
    drop_unstated: bool = False  # bfcl: leave out optional values nobody stated (Options.drop_unstated)

    def identity(self) -> dict[str, Any]:
        """The fields that make two runs comparable item by item (a resumed run must match)."""
        d = asdict(self)
        d.pop("limit")  # a larger --limit extends a run; items already done stay valid
        d.pop("threads")  # speed only
        return d

    def command(self) -> str:
        """The `tooltoken eval` command line that runs this configuration."""
        parts = ["tooltoken", "eval", self.suite]
        defaults = EvalConfig(self.suite)
        for f in fields(self):
            if f.name == "suite":
                continue
            value, default = getattr(self, f.name), getattr(defaults, f.name)
            if value == default:
                continue
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                parts += [flag, "on" if value else "off"]
            else:
                parts += [flag, str(value)]
        return " ".join(parts)


def policy_of(config: EvalConfig) -> str:
    """The answer policy a run of `config` answers with, as its summary records it."""
    if not config.tools:
        return "closed book (no tools)"
    from tooltoken._router import default_router

    return f"routed ({type(default_router()).__name__})"


class Suite(Protocol):
    name: str

    def items(self, config: EvalConfig) -> list[dict[str, Any]]:
        """Items with at least `id` and `category`, in a fixed order (limit already applied)."""
        ...

    def run_item(self, item: dict[str, Any]) -> dict[str, Any]:
        """Answer and score one item: a JSON-able record with at least `correct` (bool)."""
        ...

    def metrics(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """The suite's figures beyond accuracy, over the given records."""
        ...

    def describe(self) -> dict[str, Any]:
        """Model name, versions of the data and tools: what the summary should say was used."""
        ...


def get_suite(config: EvalConfig) -> Suite:
    if config.suite not in SUITES:
        raise ConfigError(f"unknown eval suite {config.suite!r} (valid suites: {', '.join(SUITES)})")
    module, _, name = SUITES[config.suite].partition(":")
    return getattr(importlib.import_module(module), name)(config)


def data_rows(path: Path, keys: tuple[str, ...], what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a JSONL data file whose rows must hold `keys`; blank lines skipped,
    anything else a ConfigError naming the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} data {path}: {exc}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not all(k in row for k in keys):
                raise KeyError
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{path}:{n}: each line must be a JSON object with {' and '.join(keys)}") from None
        yield n, row


def spread(items: list[Any], limit: int | None) -> list[Any]:
    """`limit` items taken evenly across `items` (first, ..., never the same twice), in order.

    Spreading, rather than taking the first N, keeps a short run representative: BFCL files
    and our dev sets are grouped by topic.
    """
    if limit is None or limit >= len(items):
        return list(items)
    if limit <= 0:
        return []
    return [items[(i * len(items)) // limit] for i in range(limit)]


def run_eval(
    config: EvalConfig,
    out_dir: str | os.PathLike[str],
    *,
    progress: ProgressFn | None = None,
    suite: Suite | None = None,
) -> dict[str, Any]:
    """Run (or resume) `config` into `out_dir` and return the summary (see the module docstring)."""
    suite = suite or get_suite(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _claim(out, config)
    items = suite.items(config)
    ids = [str(it["id"]) for it in items]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"the {config.suite} items have duplicate ids; every item needs its own id")
    done = _read_records(out / "records.jsonl")
    wanted = set(ids)
    done = {k: v for k, v in done.items() if k in wanted}
    if progress:
        progress(len(done), len(items), None)
    started = time.time()
    with open(out / "records.jsonl", "a", encoding="utf-8") as f:
        for item in items:
            key = str(item["id"])
            if key in done:
                continue
            t0 = time.perf_counter()
            record = suite.run_item(item)
            record = {"id": key, "category": item.get("category", ""), **record}
            record.setdefault("seconds", round(time.perf_counter() - t0, 3))
            f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            f.flush()
            done[key] = record
            if progress:
                progress(len(done), len(items), record)
    records = [done[k] for k in ids]
    summary = summarize(config, suite, records)
    summary["wall_s"] = round(time.time() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    from .report import write_chart, write_report

    write_report(summary, out / "report.md")
    write_chart(summary, out / "chart.png")
    return summary


def summarize(config: EvalConfig, suite: Suite, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy overall and per category, the suite's own metrics, timings and provenance."""
    described = suite.describe()
    n = len(records)
    summary: dict[str, Any] = {
        "suite": config.suite,
        "model": described.get("model", config.model or ""),
        "n": n,
        "accuracy": _mean([bool(r.get("correct")) for r in records]),
        "metrics": {**_common_metrics(records), **suite.metrics(records)},
        "by_category": {},
        "config": asdict(config),
        "command": config.command(),
        "versions": described.get("versions", {}),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if "policy" in described:  # the answer policy the run answered with (agent/_policy.py)
        summary["policy"] = described["policy"]
    categories = list(dict.fromkeys(str(r.get("category", "")) for r in records))
    if len(categories) > 1 or (categories and categories[0]):
        for cat in categories:
            rs = [r for r in records if str(r.get("category", "")) == cat]
            summary["by_category"][cat] = {
                "n": len(rs),
                "accuracy": _mean([bool(r.get("correct")) for r in rs]),
                **suite.metrics(rs),
            }
    return summary


def _common_metrics(records: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"seconds_per_item": _mean([float(r.get("seconds", 0.0)) for r in records], 2)}
    if any("tool_calls" in r for r in records):
        out["tool_calls_per_item"] = _mean([len(r.get("tool_calls") or []) for r in records], 2)
    stops: dict[str, int] = {}
    for r in records:
        if r.get("stop_reason"):
            stops[r["stop_reason"]] = stops.get(r["stop_reason"], 0) + 1
    if stops:
        out["stop_reasons"] = stops
    return out


def _mean(values: list[float], digits: int = 4) -> float:
    return round(sum(values) / len(values), digits) if values else 0.0


def _claim(out: Path, config: EvalConfig) -> None:
    """A folder holds one configuration: resuming with other settings would mix two runs."""
    path = out / "config.json"
    identity = config.identity()
    if path.exists():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            previous = None
        if previous is not None:  # a setting added since that run was made ran at its default
            previous = {**EvalConfig(config.suite).identity(), **previous}
        if previous is not None and previous != identity:
            diff = sorted(k for k in set(previous) | set(identity) if previous.get(k) != identity.get(k))
            raise ConfigError(
                f"{out} holds a run with other settings ({', '.join(diff)} differ); "
                "choose another --out folder, or delete that one to start again"
            )
    path.write_text(json.dumps(identity, indent=2) + "\n", encoding="utf-8")


def _read_records(path: Path) -> dict[str, dict[str, Any]]:
    """Finished items of an earlier, possibly interrupted run; a torn last line is cut off."""
    records: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return records
    good = 0
    with open(path, "rb") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                break
            if not isinstance(record, dict) or "id" not in record or not line.endswith(b"\n"):
                break
            records[str(record["id"])] = record
            good += len(line)
    if good != path.stat().st_size:
        with open(path, "r+b") as f:
            f.truncate(good)
    return records


_BACKENDS: dict[tuple, Any] = {}


def model_for(config: EvalConfig) -> Any:
    """What to pass as `Agent(model=...)`: the name, or with `threads` set a backend loaded with
    that many llama.cpp threads (shared by the items of a run).

    Why a thread count: on a machine whose cores are busy with other work, llama.cpp's default
    of one thread per core makes its threads wait on each other; measured on 2 shared cores,
    Qwen2.5-Coder-1.5B decoded 1.8 tok/s with 2 threads and 9.1 tok/s with 1.
    """
    if config.threads is None:
        return config.model
    from tooltoken import LlamaBackend
    from tooltoken._models import resolve_model

    key = (str(resolve_model(config.model)), config.n_ctx, config.seed, config.threads)
    if key not in _BACKENDS:
        if not _BACKENDS:
            import atexit

            atexit.register(_close_backends)
        _BACKENDS[key] = LlamaBackend(key[0], n_ctx=config.n_ctx, seed=config.seed, temperature=0.0,
                                      n_threads=config.threads)
    return _BACKENDS[key]


def _close_backends() -> None:
    for backend in _BACKENDS.values():
        backend.llm.close()
    _BACKENDS.clear()


def model_name(model: str | None) -> str:
    """A short name for reports: the pack name, or a .gguf file's stem."""
    from tooltoken._models import DEFAULT_MODEL

    if model is None:
        return DEFAULT_MODEL
    return Path(model).stem if model.endswith(".gguf") else model
