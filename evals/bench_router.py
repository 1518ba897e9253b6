"""`tooltoken bench router`: the router's accuracy on labelled questions, and what it costs.

    $ tooltoken bench router            # both routers on the held-out questions
    $ tooltoken bench router --fit      # fit the embedding router on routes.jsonl first

Data: evals/data/routes.jsonl (282 labelled questions, the set the routers were built on: the
rules written against it, the embedding classifier fitted on all of it) and
evals/data/routes_heldout.jsonl (173 questions written afterwards, by someone who never saw the
routers, from the same rules in evals/data/ROUTES.md): the published accuracy is on these.
Cost: milliseconds per question, the median over the held-out questions with the embedder
loaded, and the embedder's one-time load in seconds. Compare with an answer's time (the
eval summaries' `seconds_per_item`).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["HELDOUT", "LABELLED", "bench_router", "load"]

DATA = Path(__file__).parent / "data"
LABELLED = DATA / "routes.jsonl"
HELDOUT = DATA / "routes_heldout.jsonl"


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def bench_router(fit: bool = False) -> dict[str, Any]:
    from tooltoken._router import WEIGHTS, EmbeddingRouter, RuleRouter, fit_weights
    from tooltoken.retrieval import default_embedder

    labelled, heldout = load(LABELLED), load(HELDOUT)
    started = time.perf_counter()
    embedder = default_embedder()  # the router's own
    load_s = time.perf_counter() - started
    if fit:
        texts = [r["question"] for r in labelled]
        vectors = embedder.embed([" ".join(t.split())[:2000] for t in texts])  # as EmbeddingRouter sees them
        weights = fit_weights(vectors, [r["route"] for r in labelled], texts=texts, model=embedder.name)
        WEIGHTS.write_text(json.dumps(weights) + "\n", encoding="utf-8")
    routers = {"embedding": EmbeddingRouter(embedder), "rules": RuleRouter()}
    out: dict[str, Any] = {"n_labelled": len(labelled), "n_heldout": len(heldout), "embedder_load_s": round(load_s, 2)}
    for name, router in routers.items():
        for split, rows in (("labelled", labelled), ("heldout", heldout)):
            times, confusion, wrong = [], Counter(), []
            for row in rows:
                t0 = time.perf_counter()
                got = router(row["question"])
                times.append(time.perf_counter() - t0)
                confusion[f"{row['route']}->{got}"] += 1
                if got != row["route"]:
                    wrong.append({"question": row["question"][:160], "route": row["route"], "got": got})
            right = sum(v for k, v in confusion.items() if k.split("->")[0] == k.split("->")[1])
            out[f"{name}_{split}"] = {
                "accuracy": round(right / len(rows), 4), "right": right, "n": len(rows),
                "ms_per_question_median": round(statistics.median(times) * 1000, 3),
                "confusion": dict(sorted(confusion.items())),
                **({"wrong": wrong} if split == "heldout" else {}),
            }
    return out
