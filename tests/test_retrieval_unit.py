"""Unit tests of filters, fusion, the local dense index, the retriever tool and the CLI hook."""

from __future__ import annotations

import numpy as np
import pytest

import tooltoken.retrieval as retrieval
from tooltoken.retrieval import Chunk, FilterError, Retriever, SearchResult, build_filter, rrf
from tooltoken.retrieval import _local_index
from tooltoken.retrieval._local_index import LocalIndex

pytestmark = pytest.mark.unit

INJECTION = 'x" or id > 0 or "'


def test_public_names_import():
    for name in retrieval.__all__:
        assert getattr(retrieval, name) is not None
    from tooltoken.tools.retriever import RetrieverBackend, retriever_tool  # noqa: F401


# --- filters -----------------------------------------------------------------------------


def test_filter_building():
    assert build_filter(None) == "" and build_filter({}) == ""
    assert build_filter({"kind": "md"}) == 'kind == "md"'
    assert build_filter({"source": ["/a", "/b"], "line_start": 3}) == 'source in ["/a", "/b"] and line_start == 3'
    assert build_filter({"title": 'a\\b"c\nd'}) == r'title == "a\\b\"c\nd"'


def test_filter_injection_stays_one_string_literal():
    expr = build_filter({"title": INJECTION})
    assert expr == r'title == "x\" or id > 0 or \""'
    tokens = pytest.importorskip("milvus_lite.search.filter.tokens")
    toks = [t for t in tokens.tokenize(expr) if t.kind.name != "EOF"]
    assert [t.kind.name for t in toks] == ["IDENT", "EQ", "STRING"]
    assert toks[2].value == INJECTION


@pytest.mark.parametrize(
    "filters,match",
    [
        ({"id": "x"}, "filterable fields: kind, line_end, line_start, source, title"),
        ({"title or 1": "x"}, "cannot filter"),
        ({"kind": 3}, "takes text"),
        ({"line_start": "3"}, "whole numbers"),
        ({"line_start": True}, "whole numbers"),
        ({"kind": []}, "empty list"),
        ({"title": "a\x00b"}, "control characters"),
    ],
)
def test_filter_errors(filters, match):
    with pytest.raises(FilterError, match=match):
        build_filter(filters)


# --- reciprocal rank fusion --------------------------------------------------------------


def test_rrf_order_and_ties():
    fused = rrf([["a", "b", "c"], ["c", "a", "d"]], k=60)
    assert [i for i, _ in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert [i for i, _ in rrf([["b"], ["a"]])] == ["a", "b"]  # equal scores: by id
    assert rrf([["a", "a"]]) == [("a", 1 / 61)]  # a repeated id counts once per ranking


# --- the local dense index ---------------------------------------------------------------


def unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(4, n // 50), dim))
    x = centers[rng.integers(0, len(centers), n)] + rng.standard_normal((n, dim)) * 0.6
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_local_index_exact_search_matches_brute_force():
    x = unit_rows(500, 32)
    idx = LocalIndex(32)
    idx.add([f"i{n}" for n in range(500)], x)
    q = unit_rows(20, 32, seed=1)
    for v in q:
        want = [f"i{n}" for n in np.argsort(-(x @ v), kind="stable")[:10]]
        assert [i for i, _ in idx.search(v, 10)] == want


def test_local_index_remove_replace_and_compact():
    x = unit_rows(5000, 16)
    idx = LocalIndex(16)
    ids = [f"i{n}" for n in range(5000)]
    idx.add(ids, x)
    idx.add(["i7"], -x[7:8])  # replace
    assert len(idx) == 5000
    assert idx.search(-x[7], 1)[0][0] == "i7"
    idx.remove(ids[:3000])  # more than half: compacts
    assert len(idx) == 2000 and len(idx._ids) == 2000
    assert all(int(i[1:]) >= 3000 for i, _ in idx.search(x[10], 50))
    assert idx.search(x[4000], 1)[0][0] == "i4000"


def test_local_index_quantised_search_recall_vs_brute_force(monkeypatch):
    pytest.importorskip("faiss")
    monkeypatch.setattr(_local_index, "EXACT_MAX", 1000)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6000, 32)).astype(np.float32)  # uniformly random: the hard case
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    idx = LocalIndex(32)
    idx.add([f"i{n}" for n in range(6000)], x)
    recall = []
    for v in unit_rows(50, 32, seed=2):
        want = {f"i{n}" for n in np.argsort(-(x @ v))[:10]}
        recall.append(len(want & {i for i, _ in idx.search(v, 10)}) / 10)
    assert idx._pq is not None
    assert np.mean(recall) >= 0.98
    idx.remove(["i0"])
    assert "i0" not in [i for i, _ in idx.search(x[0], 5)]
    idx.add(["new"], x[:1])  # added after training: found through the codes too
    assert idx.search(x[0], 1)[0][0] == "new"


# --- retriever, tool and browser backend over a fake store ----------------------------------


class ListStore:
    def __init__(self, dense, sparse):
        self.dense, self.sparse, self.calls = dense, sparse, []

    def search(self, vector, k, filters=None):
        self.calls.append(("dense", k, filters))
        return self.dense[:k]

    def text_search(self, query, k, filters=None):
        self.calls.append(("bm25", k, filters))
        return self.sparse[:k]

    def get(self, ids):
        every = {r.chunk.id: r.chunk for r in self.dense + self.sparse}
        return [every[i] for i in ids if i in every]


class OneEmbedder:
    name, dim = "one", 2

    def embed(self, texts):
        return np.ones((len(texts), 2), np.float32)


def chunk(i: str, text: str = "") -> Chunk:
    return Chunk(i, text or f"text of {i}", f"/d/{i}.md", f"Title {i}", 1, 3, "md")


def test_retriever_fuses_dense_and_bm25_with_filters():
    store = ListStore([SearchResult(chunk("a"), 0.9), SearchResult(chunk("b"), 0.8)], [SearchResult(chunk("b"), 5.0), SearchResult(chunk("c"), 4.0)])
    r = Retriever(store, OneEmbedder(), candidates=7, filters={"kind": "md"})
    got = r.search("  which  one? ", k=2, filters={"source": "/d/b.md"})
    assert [x.chunk.id for x in got] == ["b", "a"]
    assert store.calls == [("dense", 7, {"kind": "md", "source": "/d/b.md"}), ("bm25", 7, {"kind": "md", "source": "/d/b.md"})]
    assert [x.chunk.id for x in Retriever(store, None, mode="bm25").search("q", 5)] == ["b", "c"]
    with pytest.raises(retrieval.RetrievalConfigError, match="empty"):
        r.search("   ")
    with pytest.raises(retrieval.RetrievalConfigError, match="valid modes"):
        Retriever(store, OneEmbedder(), mode="magic")
    with pytest.raises(retrieval.RetrievalError):
        r.get("zzz")


def test_retrieve_tool_output_and_sources():
    from tooltoken.tools import ToolArgumentError
    from tooltoken.tools.retriever import retriever_tool

    store = ListStore([SearchResult(chunk("a", "Milvus stores vectors.\nSecond line."), 0.9)], [])
    t = retriever_tool(Retriever(store, OneEmbedder()))
    assert t.name == "retrieve" and t.parameters["required"] == ["query"]
    out = t.invoke({"query": "vectors", "k": 50})
    assert store.calls[0][1] == 30  # k clamped to 10, candidates 30
    assert "- Title a (id: a, /d/a.md:1-3)" in out.content  # unnumbered: [n] names a tool result
    assert "    Second line." in out.content
    (src,) = out.sources
    assert (src.id, src.title, src.location, src.text) == ("a", "Title a", "/d/a.md:1-3", "Milvus stores vectors.\nSecond line.")
    assert "No passages" in retriever_tool(Retriever(ListStore([], []), OneEmbedder())).invoke({"query": "x"}).content
    with pytest.raises(ToolArgumentError, match="empty"):
        t.invoke({"query": "  "})


def test_backend_plugs_into_the_browser():
    from tooltoken.tools.browser import Browser
    from tooltoken.tools.retriever import RetrieverBackend
    from tooltoken.tools.search import SearchBackend, SearchError

    store = ListStore([SearchResult(chunk("a", "Milvus Lite keeps data in a local directory."), 0.9)], [])
    backend = RetrieverBackend(Retriever(store, OneEmbedder()))
    assert isinstance(backend, SearchBackend)
    (hit,) = backend.search("where is data kept", 3)
    assert (hit.id, hit.location) == ("a", "/d/a.md:1-3")
    browser = Browser(backend)
    browser.search("where is data kept")
    assert "L1: Milvus Lite keeps data" in browser.open("1").content
    quoted = browser.quote("keeps data in a local directory")
    assert quoted.sources[0].id == "a"
    with pytest.raises(SearchError):
        backend.get("missing")


def test_cli_registers_index_and_bench_commands():
    """`index` comes from the interfaces; `bench retrieval` from evals, through its entry point."""
    pytest.importorskip("typer")
    from typer.testing import CliRunner

    from tooltoken.app.cli import app

    runner = CliRunner()
    assert "--chunk-size" in runner.invoke(app, ["index", "--help"]).output
    assert "retrieval" in runner.invoke(app, ["bench", "--help"]).output
    result = runner.invoke(app, ["index", "/nonexistent/path", "--db", "/tmp/tooltoken-unit-never"], catch_exceptions=False)
    assert result.exit_code != 0
