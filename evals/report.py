"""Reports of eval runs: a markdown table, a bar chart, and the comparison of two runs.

    >>> print(markdown_table({"suite": "math", "model": "m", "n": 2, "accuracy": 0.5,
    ...                       "metrics": {}, "by_category": {}}))
    | suite | model | category | n | accuracy |
    | --- | --- | --- | --- | --- |
    | math | m | all | 2 | 0.500 |

The chart needs matplotlib (`pip install 'tooltoken[eval]'`); it is drawn with the Agg backend,
so no display is needed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tooltoken.tools import ConfigError

__all__ = ["compare_runs", "compare_table", "load_summary", "markdown_table", "write_chart", "write_compare_chart",
           "write_report"]

# figures shown in tables besides n and accuracy, when a summary has them
_SHOWN = ("citation_precision", "cited", "contains_anywhere", "used_calculator", "mrr", "hit@1", "tool_calls_per_item",
          "seconds_per_item")


_NOT_RATES = ("tool_calls_per_item", "seconds_per_item")


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _shown(metrics: dict[str, Any]) -> list[str]:
    return [k for k in metrics if k in _SHOWN or k.startswith("recall@")]


def markdown_table(summary: dict[str, Any]) -> str:
    """One row overall and one per category: n, accuracy and the suite's main figures."""
    keys = _shown(summary.get("metrics", {}))
    head = ["suite", "model", "category", "n", "accuracy", *keys]
    rows = [[summary["suite"], summary["model"], "all", summary["n"], summary["accuracy"],
             *[summary["metrics"].get(k, "") for k in keys]]]
    for cat, figures in summary.get("by_category", {}).items():
        rows.append([summary["suite"], summary["model"], cat, figures["n"], figures["accuracy"],
                     *[figures.get(k, summary["metrics"].get(k, "")) if k in figures else "" for k in keys]])
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(summary: dict[str, Any], path: str | os.PathLike[str]) -> None:
    cfg = summary.get("config", {})
    flags = f"tools {'on' if cfg.get('tools', True) else 'off'}, grammar {'on' if cfg.get('grammar', True) else 'off'}"
    if summary["suite"] == "retrieval":
        flags = f"backend {cfg.get('backend')}, k {cfg.get('k')}"
    text = [
        f"# {summary['suite']} · {summary['model']}",
        "",
        f"`{summary.get('command', '')}` ({flags}; seed {cfg.get('seed', 0)})",
        "",
        markdown_table(summary),
        "",
    ]
    extra = {k: v for k, v in summary.get("metrics", {}).items() if k not in _shown(summary["metrics"])}
    if extra:
        text += ["Other figures:", "", "```json", json.dumps(extra, indent=2), "```", ""]
    if summary.get("versions"):
        text += ["Versions: " + ", ".join(f"{k} {v}" for k, v in summary["versions"].items()), ""]
    Path(path).write_text("\n".join(text), encoding="utf-8")


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("eval charts need matplotlib: pip install 'tooltoken[eval]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _bars(ax: Any, labels: list[str], series: list[tuple[str, list[float]]], title: str) -> None:
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series):
        xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(labels))]
        bars = ax.bar(xs, values, width, label=name)
        for bar, v in zip(bars, values):
            ax.annotate(f"{v:.2f}", (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=20 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("score")
    ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=8)


def write_chart(summary: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Accuracy overall and per category, as bars with their values."""
    plt = _pyplot()
    labels = ["accuracy", *[f"accuracy [{c}]" for c in summary.get("by_category", {})]]
    values = [summary["accuracy"], *[c["accuracy"] for c in summary.get("by_category", {}).values()]]
    for k in _shown(summary.get("metrics", {})):  # rates in [0, 1] beside accuracy: recall, MRR, citations
        v = summary["metrics"][k]
        if k not in _NOT_RATES and isinstance(v, (int, float)) and 0 <= v <= 1:
            labels.append(k)
            values.append(float(v))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(labels) + 2), 3.2), dpi=100)
    _bars(ax, labels, [(summary["model"], values)], f"{summary['suite']} · {summary['model']} · n={summary['n']}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def load_summary(run: str | os.PathLike[str]) -> dict[str, Any]:
    """The summary of a run folder (or of a summary.json path)."""
    path = Path(run)
    if path.is_dir():
        path = path / "summary.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise ConfigError(f"{run} holds no finished eval run (no summary.json)") from None
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None


def _records(run: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    path = Path(run) / "records.jsonl" if Path(run).is_dir() else Path(run).with_name("records.jsonl")
    out: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                break
            out[str(r.get("id"))] = r
    return out


def _label(summary: dict[str, Any], fallback: str) -> str:
    cfg = summary.get("config", {})
    tags = [summary.get("model", "")]
    if cfg.get("tools") is False:
        tags.append("tools off")
    if cfg.get("grammar") is False:
        tags.append("grammar off")
    return " · ".join(t for t in tags if t) or fallback


def compare_runs(run_a: str | os.PathLike[str], run_b: str | os.PathLike[str]) -> dict[str, Any]:
    """Figures of two runs side by side, with B − A, per category, and the items they disagree on."""
    a, b = load_summary(run_a), load_summary(run_b)
    rows = []

    def row(name: str, va: Any, vb: Any, n_a: Any = "", n_b: Any = "") -> None:
        delta = round(vb - va, 4) if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
        rows.append({"figure": name, "a": va, "b": vb, "delta": delta, "n_a": n_a, "n_b": n_b})

    row("accuracy", a["accuracy"], b["accuracy"], a["n"], b["n"])
    for k in sorted(set(_shown(a.get("metrics", {}))) & set(_shown(b.get("metrics", {})))):
        row(k, a["metrics"][k], b["metrics"][k])
    for cat in [c for c in a.get("by_category", {}) if c in b.get("by_category", {})]:
        ca, cb = a["by_category"][cat], b["by_category"][cat]
        row(f"accuracy [{cat}]", ca["accuracy"], cb["accuracy"], ca["n"], cb["n"])
    ra, rb = _records(run_a), _records(run_b)
    common = [k for k in ra if k in rb]
    only_a = [k for k in common if ra[k].get("correct") and not rb[k].get("correct")]
    only_b = [k for k in common if rb[k].get("correct") and not ra[k].get("correct")]
    return {
        "a": {"run": str(run_a), "label": _label(a, "A"), "suite": a["suite"], "command": a.get("command", "")},
        "b": {"run": str(run_b), "label": _label(b, "B"), "suite": b["suite"], "command": b.get("command", "")},
        "rows": rows,
        "common_items": len(common),
        "right_only_in_a": only_a,
        "right_only_in_b": only_b,
    }


def compare_table(comparison: dict[str, Any]) -> str:
    a, b = comparison["a"]["label"], comparison["b"]["label"]
    lines = [f"| figure | A: {a} | B: {b} | B − A |", "| --- | --- | --- | --- |"]
    for r in comparison["rows"]:
        na = f" (n={r['n_a']})" if r["n_a"] != "" else ""
        nb = f" (n={r['n_b']})" if r["n_b"] != "" else ""
        delta = "" if r["delta"] is None else f"{r['delta']:+.3f}"
        lines.append(f"| {r['figure']} | {_fmt(r['a'])}{na} | {_fmt(r['b'])}{nb} | {delta} |")
    return "\n".join(lines)


def write_compare_chart(comparison: dict[str, Any], path: str | os.PathLike[str]) -> None:
    plt = _pyplot()
    rows = [r for r in comparison["rows"] if r["figure"].startswith("accuracy")]
    labels = [r["figure"].replace("accuracy [", "").rstrip("]").replace("accuracy", "all") for r in rows]
    series = [(comparison["a"]["label"], [r["a"] for r in rows]), (comparison["b"]["label"], [r["b"] for r in rows])]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(labels) + 2), 3.2), dpi=100)
    _bars(ax, labels, series, f"{comparison['a']['suite']}: A vs B")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
