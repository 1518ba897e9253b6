"""The retrieval suite: recall@k and MRR of a search backend on `{query, relevant_ids}` JSONL.

    $ tooltoken eval retrieval                              # BM25 over the Wikipedia corpus
    $ tooltoken eval retrieval --backend mypkg:open_index --data my_queries.jsonl --k 5

No model is involved. For each query the backend's first `k` results are compared with the
relevant ids: recall@k = relevant found / relevant; the reciprocal rank is 1 / the rank of the
first relevant result within k (0 if none); MRR is its mean. An item counts as correct (the
summary's `accuracy`) when a relevant id is within the first k (hit@k); `hit@1` is reported too.

The default data are the qa suite's question sets (known, factual, factual_dev: its categories),
each with the id of the Wikipedia article its gold answer was checked against. Any backend with
`search(query, k)` plugs in (see _backends.py), so BM25 and the Milvus retriever are measured
by the same code on the same queries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tooltoken.tools import ConfigError

from ._backends import hit_id, load_backend
from .metrics import recall_at_k, reciprocal_rank
from .runner import EvalConfig, data_rows, spread

__all__ = ["RetrievalSuite", "load_queries"]


def load_queries(path: str | Path | None = None, category: str | None = None) -> list[dict[str, Any]]:
    """Items from JSONL: `query` and `relevant_ids` (a list, or one id as a string); `id` optional.
    Without a path: the qa suite's Wikipedia sets (`category` as there; known, factual and
    factual_dev when None), each question's relevant id the article its gold answer was checked
    against."""
    if path is None:
        from .qa import SETS, USERDOCS, load_questions

        every = [name for name in SETS if name not in USERDOCS]  # their relevant ids are file names
        rows = [q for name in ([category] if category in SETS else every) for q in load_questions(category=name)]
        return [{"id": q["id"], "category": q["category"], "query": q["question"], "relevant_ids": [q["doc_id"]]}
                for q in rows if q.get("doc_id")]
    items = []
    for n, row in data_rows(Path(path), ("query", "relevant_ids"), "retrieval"):
        query, relevant = row["query"], row["relevant_ids"]
        relevant = [relevant] if isinstance(relevant, str) else [str(r) for r in relevant]
        items.append({"id": str(row.get("id", n)), "category": str(row.get("category", "")), "query": str(query),
                      "relevant_ids": relevant})
    return items


class RetrievalSuite:
    name = "retrieval"

    def __init__(self, config: EvalConfig) -> None:
        if config.k < 1:
            raise ConfigError("--k must be at least 1")
        self.config = config
        self._backend: Any = None

    def items(self, config: EvalConfig) -> list[dict[str, Any]]:
        items = load_queries(config.data, config.category)
        if config.category:
            items = [it for it in items if it["category"] == config.category]
        return spread(items, config.limit)

    def backend(self) -> Any:
        if self._backend is None:
            self._backend = load_backend(self.config.backend)
        return self._backend

    def run_item(self, item: dict[str, Any]) -> dict[str, Any]:
        k = self.config.k
        ranked = [hit_id(h) for h in self.backend().search(item["query"], k)][:k]
        rr = reciprocal_rank(ranked, item["relevant_ids"], k)
        return {
            "query": item["query"],
            "relevant_ids": item["relevant_ids"],
            "ranked": ranked,
            "recall": recall_at_k(ranked, item["relevant_ids"], k),
            "rr": rr,
            "correct": rr > 0,
        }

    def metrics(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(records) or 1
        return {
            f"recall@{self.config.k}": round(sum(r["recall"] for r in records) / n, 4),
            "mrr": round(sum(r["rr"] for r in records) / n, 4),
            "hit@1": round(sum(r["rr"] == 1.0 for r in records) / n, 4),
        }

    def describe(self) -> dict[str, Any]:
        return {"model": self.config.backend, "versions": {}}
