"""The qa suite: questions answered with search (WebGPT-style browsing tools) or closed book.

    $ tooltoken eval qa --limit 20                  # search, open, find, quote over Wikipedia
    $ tooltoken eval qa --limit 20 --tools off      # closed book
    $ tooltoken eval qa --data my_questions.jsonl --backend mypkg:open_index

Data: JSONL with `question` and `answers` (a list of acceptable strings; `id` optional). The
default is evals/data/qa_dev.jsonl: 62 questions whose gold answers were each checked to occur
in the lead section of the Wikipedia article named by `doc_id`, in the default corpus.

Each question gets one answer from an agent built as chat, ask, run and serve build it: the
default tools (the calculator, and search, open, find and quote over the backend: with
`--backend bm25` exactly the default tools), the default answer policy (agent/_policy.py, which
sends a factual question down the lookup path: search first) and the default options. There is
no prompt of the eval's own. With `--tools off` no tool is declared (closed book). Scores:
- `accuracy`: Toolformer's lenient match (metrics.contains_match): a gold answer occurs in the
  first 20 words of the answer's last part, the text after the last tool result;
- `contains_anywhere`: a gold answer occurs anywhere in the whole answer;
- `citation_precision`: of the verified citations over all items, the share pointing at a
  tool result with a source whose text contains a gold answer; `cited`: share of answers
  with at least one verified citation;
- `narrated`: answers that narrate their tool use (metrics.narrates); `routes`: the paths taken.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any


from ._backends import load_backend
from .metrics import citation_precision, contains_match, narrates
from .runner import EvalConfig, data_rows, model_for, model_name, policy_of, spread

__all__ = ["QASuite", "load_questions"]



def _default_data() -> Path:
    return Path(str(resources.files("tooltoken.evals") / "data" / "qa_dev.jsonl"))


def load_questions(path: str | Path | None = None) -> list[dict[str, Any]]:
    path = Path(path) if path is not None else _default_data()
    items = []
    for n, row in data_rows(path, ("question", "answers"), "qa"):
        question, answers = row["question"], row["answers"]
        answers = [answers] if isinstance(answers, str) else [str(a) for a in answers]
        items.append({"id": str(row.get("id", n)), "category": str(row.get("category", "")),
                      "question": str(question), "answers": answers, "doc_id": row.get("doc_id")})
    return items


class QASuite:
    name = "qa"

    def __init__(self, config: EvalConfig) -> None:
        self.config = config
        self._backend: Any = None

    def items(self, config: EvalConfig) -> list[dict[str, Any]]:
        items = load_questions(config.data)
        if config.category:
            items = [it for it in items if it["category"] == config.category]
        return spread(items, config.limit)

    def _tools(self) -> list:
        if not self.config.tools:
            return []
        from tooltoken.tools import Browser
        from tooltoken.tools.calculator import calculator

        if self._backend is None:
            self._backend = load_backend(self.config.backend)
        return [calculator, *Browser(self._backend).tools()]  # as tools.default_tools builds them

    def run_item(self, item: dict[str, Any]) -> dict[str, Any]:
        from tooltoken import Agent, Final, TextDelta, ToolResult

        cfg = self.config
        options: dict[str, Any] = {"max_tokens": cfg.max_tokens} if cfg.max_tokens else {}
        agent = Agent(model=model_for(cfg), tools=self._tools(), n_ctx=cfg.n_ctx, seed=cfg.seed,
                      grammar=cfg.grammar, **options)
        last: list[str] = []
        final = None
        for event in agent.stream(item["question"]):
            if isinstance(event, ToolResult):
                last = []
            elif isinstance(event, TextDelta):
                last.append(event.text)
            elif isinstance(event, Final):
                final = event
        assert final is not None
        tail = "".join(last).strip() or final.answer
        citations = [
            {"marker": c.marker, "verified": c.verified, "tool": c.tool,
             "sources": [{"id": s.get("id", ""), "title": s.get("title", ""), "text": s.get("text", "")}
                         for s in c.sources]}
            for c in final.citations
        ]
        good, verified = citation_precision(citations, item["answers"])
        for c in citations:  # keep the records small: ids, not whole documents
            c["sources"] = [s["id"] for s in c["sources"]]
        return {
            "question": item["question"],
            "answers": item["answers"],
            "correct": contains_match(tail, item["answers"]),
            "contains_anywhere": contains_match(final.answer, item["answers"], first_words=None),
            "answer": final.answer[-800:],
            "final_part": tail[:400],
            "citations": citations,
            "citations_supporting": good,
            "citations_verified": verified,
            "tool_calls": [{c.name: c.arguments} for c in final.tool_calls],
            "stop_reason": final.stop_reason,
            "completion_tokens": final.usage.completion_tokens,
            "route": final.route,
            "seconds": round(final.timings.get("total_s", 0.0), 2),
        }

    def metrics(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(records) or 1
        verified = sum(r.get("citations_verified", 0) for r in records)
        good = sum(r.get("citations_supporting", 0) for r in records)
        return {
            "contains_anywhere": round(sum(bool(r.get("contains_anywhere")) for r in records) / n, 4),
            "citation_precision": round(good / verified, 4) if verified else None,
            "cited": round(sum(r.get("citations_verified", 0) > 0 for r in records) / n, 4),
            "verified_citations": verified,
            "narrated": sum(narrates(r.get("answer", "")) for r in records),
            "seconds_per_item": round(sum(r.get("seconds", 0.0) for r in records) / n, 2),
            "routes": {route: sum(r.get("route") == route for r in records) for route in ("math", "lookup", "direct", None)},
        }

    def describe(self) -> dict[str, Any]:
        backend = self.config.backend if self.config.tools else "none"
        return {"model": model_name(self.config.model), "versions": {"search": backend},
                "policy": policy_of(self.config)}
