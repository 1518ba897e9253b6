"""`tooltoken bench lookup`: seconds a question with tools against closed book, side by side.

`tooltoken eval qa` and `tooltoken eval qa --tools off` answer a whole set each; on a shared
machine the two runs can meet different loads (a hypervisor that takes half the CPU for a
while), and their ratio then measures the machine as much as the answers. Here one process
answers each question both ways back to back, in alternating order (tools first on even items,
closed book first on odd), with the agents `eval qa` builds (QASuite.run_item: the default tools
and policy, or none), so both halves of every pair meet the same load. The figure is the ratio
of the mean seconds (`Final.timings["total_s"]`, the recall included); the per-pair ratios'
median and quartiles show its spread, and the right answers of each arm are counted as the eval
counts them.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from .qa import QASuite
from .runner import EvalConfig

__all__ = ["bench_lookup"]


def bench_lookup(model: str | None = None, category: str = "factual", limit: int | None = 48,
                 threads: int | None = None, progress: bool = True) -> dict[str, Any]:
    base = dict(suite="qa", model=model, category=category, limit=limit, threads=threads)
    tools, closed = QASuite(EvalConfig(**base)), QASuite(EvalConfig(**base, tools=False))
    items = tools.items(tools.config)
    if not items:
        raise ValueError(f"no questions in category {category!r}")
    pairs: list[dict[str, Any]] = []
    started = time.perf_counter()
    for n, item in enumerate(items):
        if n % 2 == 0:
            with_tools = tools.run_item(item)
            without = closed.run_item(item)
        else:
            without = closed.run_item(item)
            with_tools = tools.run_item(item)
        pairs.append({"tools_s": with_tools["seconds"], "closed_s": without["seconds"],
                      "tools_right": with_tools["correct"], "closed_right": without["correct"]})
        if progress:
            sys.stderr.write(f"\r{n + 1}/{len(items)} answered both ways")
    if progress:
        sys.stderr.write("\n")
    t = [p["tools_s"] for p in pairs]
    c = [p["closed_s"] for p in pairs]
    each = sorted(a / b for a, b in zip(t, c) if b > 0)
    quartiles = statistics.quantiles(each, n=4) if len(each) > 1 else None
    return {
        "category": category,
        "n": len(pairs),
        "tools_s_mean": round(statistics.mean(t), 3),
        "closed_s_mean": round(statistics.mean(c), 3),
        "ratio_of_means": round(statistics.mean(t) / statistics.mean(c), 3) if statistics.mean(c) > 0 else None,
        "ratio_median_pair": round(statistics.median(each), 3) if each else None,
        "ratio_quartiles": [round(quartiles[0], 3), round(quartiles[2], 3)] if quartiles else None,
        "tools_right": sum(p["tools_right"] for p in pairs),
        "closed_right": sum(p["closed_right"] for p in pairs),
        "wall_s": round(time.perf_counter() - started, 1),
    }
