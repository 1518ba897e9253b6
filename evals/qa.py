"""The qa suite: questions answered with search (WebGPT-style browsing tools) or closed book.

    $ tooltoken eval qa --limit 20                  # search, open, find, quote over Wikipedia
    $ tooltoken eval qa --limit 20 --tools off      # closed book
    $ tooltoken eval qa --data my_questions.jsonl --backend mypkg:open_index

Data: JSONL with `question` and `answers` (a list of acceptable strings; `id` optional). The
default runs two sets (categories), each question's gold answers checked to occur in the lead
section of the Wikipedia article named by its `doc_id`, in the default corpus:
- `known`: evals/data/qa_dev.jsonl, 62 well-known facts the default model knows closed book;
- `factual`: evals/data/factual_test.jsonl, held-out detail questions written from the corpus
  that the default model gets wrong closed book (its closed-book answers are recorded there);
- `factual_dev` (only with `--category factual_dev`): evals/data/factual_dev.jsonl, 274
  questions of the same kind, written from other articles, that the default model got wrong
  closed book (`closed_book`: its answer, from `--tools off --max-tokens 64`, the first 168 with
  `--threads 1`; of 315 written and run closed book, the 41 it got right are left out, 1 of them
  by hand: scored wrong only for writing "October 3, 1990"), on which every choice of the lookup
  path was made;
- `known_dev` (only with `--category known_dev`): evals/data/known_dev.jsonl, 38 well-known facts
  written apart from `known` (no doc_id), on which the lookup path's recall was chosen;
- `userdocs` (only with `--category userdocs`): evals/data/userdocs_qa.jsonl, 20 questions about
  the invented company documents in evals/data/userdocs/, which the suite indexes first as
  `tooltoken index` does (into a temporary Milvus Lite database), so `retrieve` is offered as
  it is to a user with an index;
- `userdocs_dev` (only with `--category userdocs_dev`): evals/data/userdocs_dev_qa.jsonl, 24
  questions about other invented documents (evals/data/userdocs_dev/, another company's), on
  which the choices for a user's own index are made.

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
- `right_cited`: of the right answers, the share with a verified citation;
- `declined`: answers that say the sources do not hold the answer (metrics.declines), and
  `right_declined` of them right all the same; `wrong_stated`: wrong answers stated with no
  warning (neither a decline nor the unsupported-answer notice), `wrong_flagged`: wrong answers
  that carry the notice, `right_flagged`: right ones that carry it (the support check's cost);
- `narrated`: answers that narrate their tool use (metrics.narrates); `routes`: the paths taken.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any


from ._backends import load_backend
from .metrics import citation_precision, contains_match, declines, narrates
from .runner import EvalConfig, data_rows, model_for, model_name, policy_of, spread

__all__ = ["QASuite", "load_questions"]



# the default data: category -> file; factual_dev is run only when asked for (--category)
SETS = {"known": "qa_dev.jsonl", "factual": "factual_test.jsonl", "factual_dev": "factual_dev.jsonl",
        "known_dev": "known_dev.jsonl", "userdocs": "userdocs_qa.jsonl", "userdocs_dev": "userdocs_dev_qa.jsonl"}
# the folders of invented documents the userdocs questions are about, indexed before they are asked
USERDOCS = {"userdocs": "userdocs", "userdocs_dev": "userdocs_dev"}
DEFAULT_SETS = ("known", "factual")


def _data(name: str) -> Path:
    return Path(str(resources.files("tooltoken.evals") / "data" / name))


def load_questions(path: str | Path | None = None, category: str | None = None) -> list[dict[str, Any]]:
    """Items of a JSONL file (`question`, `answers`; `id`, `category` optional), or of the
    default sets: `category` one of SETS, or None for DEFAULT_SETS."""
    if path is not None:
        files = [(Path(path), None)]
    else:
        names = [category] if category in SETS else list(DEFAULT_SETS)
        files = [(_data(SETS[name]), name) for name in names]
    items = []
    for file, name in files:
        for n, row in data_rows(file, ("question", "answers"), "qa"):
            question, answers = row["question"], row["answers"]
            answers = [answers] if isinstance(answers, str) else [str(a) for a in answers]
            items.append({"id": str(row.get("id", n)), "category": name or str(row.get("category", "")),
                          "question": str(question), "answers": answers, "doc_id": row.get("doc_id", row.get("doc"))})
    return items


class QASuite:
    name = "qa"

    def __init__(self, config: EvalConfig) -> None:
        self.config = config
        self._backend: Any = None
        self._docs: Any = None  # the userdocs index: (temporary folder, Retriever, category)

    def _close(self) -> None:
        if self._docs is not None:
            self._docs[1].close()
            self._docs[0].cleanup()
            self._docs = None

    def _retrieve(self, category: str) -> Any:
        """`retrieve` over the invented documents of `category`, indexed as `tooltoken index`
        indexes a folder (into a temporary Milvus Lite database, once per run)."""
        if self._docs is not None and self._docs[2] != category:
            self._close()
        if self._docs is None:
            import atexit
            import tempfile

            from tooltoken.retrieval import MilvusStore, Retriever, SentenceTransformerEmbedder, ingest

            folder = tempfile.TemporaryDirectory(prefix="tooltoken-userdocs-")
            db = Path(folder.name) / "milvus.db"
            with MilvusStore(db) as store:
                ingest([_data(USERDOCS[category])], store, SentenceTransformerEmbedder())
            self._docs = (folder, Retriever.open(db), category)
            atexit.register(self._close)
        from tooltoken.tools import retriever_tool

        return retriever_tool(self._docs[1])

    def items(self, config: EvalConfig) -> list[dict[str, Any]]:
        items = load_questions(config.data, config.category)
        if config.category:
            items = [it for it in items if it["category"] == config.category]
        return spread(items, config.limit)

    def _tools(self, category: str = "") -> list:
        if not self.config.tools:
            return []
        from tooltoken.tools import Browser
        from tooltoken.tools.calculator import calculator

        if self._backend is None:
            self._backend = load_backend(self.config.backend)
        tools = [calculator, *Browser(self._backend).tools()]  # as tools.default_tools builds them
        # with an index, default_tools adds `retrieve` over it: the userdocs questions have one
        return tools + [self._retrieve(category)] if category in USERDOCS else tools

    def run_item(self, item: dict[str, Any]) -> dict[str, Any]:
        from tooltoken import Agent, Final, Options, TextDelta, ToolResult

        cfg = self.config
        options: dict[str, Any] = {"max_tokens": cfg.max_tokens} if cfg.max_tokens else {}
        agent = Agent(model=model_for(cfg), tools=self._tools(item.get("category", "")), n_ctx=cfg.n_ctx, seed=cfg.seed,
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
            "declined": declines(tail),
            "notice": bool(Options.unsupported_notice) and final.answer.rstrip().endswith(Options.unsupported_notice),
            "contains_anywhere": contains_match(final.answer, item["answers"], first_words=None),
            "answer": final.answer[-800:],
            "final_part": tail[:400],
            "citations": citations,
            "citations_supporting": good,
            "citations_verified": verified,
            "tool_calls": [{c.name: c.arguments} for c in final.tool_calls],
            "tool_results": [r.content[:1500] for r in final.tool_results],  # what the model read
            "stop_reason": final.stop_reason,
            "completion_tokens": final.usage.completion_tokens,
            "route": final.route,
            "support": None if final.support is None else round(final.support, 3),  # the support check's score
            "seconds": round(final.timings.get("total_s", 0.0), 2),
        }

    def metrics(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(records) or 1
        right = [r for r in records if r.get("correct")]
        wrong = [r for r in records if not r.get("correct")]
        verified = sum(r.get("citations_verified", 0) for r in records)
        good = sum(r.get("citations_supporting", 0) for r in records)
        return {
            "contains_anywhere": round(sum(bool(r.get("contains_anywhere")) for r in records) / n, 4),
            "citation_precision": round(good / verified, 4) if verified else None,
            "cited": round(sum(r.get("citations_verified", 0) > 0 for r in records) / n, 4),
            # of the right answers, the share with a verified citation
            "right_cited": round(sum(r.get("citations_verified", 0) > 0 for r in right) / len(right), 4) if right else None,
            "declined": sum(bool(r.get("declined")) for r in records),
            "right_declined": sum(bool(r.get("declined")) for r in right),  # right, yet says it is not there
            "wrong_stated": sum(not r.get("declined") and not r.get("notice") for r in wrong),  # no warning
            "wrong_flagged": sum(bool(r.get("notice")) for r in wrong),  # with the unsupported-answer notice
            "right_flagged": sum(bool(r.get("notice")) for r in right),  # right, yet with the notice
            "verified_citations": verified,
            "narrated": sum(narrates(r.get("answer", "")) for r in records),
            "seconds_per_item": round(sum(r.get("seconds", 0.0) for r in records) / n, 2),
            "routes": {route: sum(r.get("route") == route for r in records) for route in ("math", "lookup", "direct", None)},
        }

    def describe(self) -> dict[str, Any]:
        backend = self.config.backend if self.config.tools else "none"
        return {"model": model_name(self.config.model), "versions": {"search": backend},
                "policy": policy_of(self.config)}
