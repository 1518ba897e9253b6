"""BM25Search on a small in-test corpus: ranking (checked against a brute-force BM25), ids,
snippets, persistence without pickle, build-once, and crash safety."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from tooltoken.tools import ConfigError, ToolError
from tooltoken.tools.search import BM25Search, Document, Hit, SearchBackend, SearchError, _stemmer, _tokenize, passage

pytestmark = pytest.mark.unit

CORPUS = [
    Document("doc:tolstoy", "Leo Tolstoy", "Leo Tolstoy was a Russian writer. He wrote War and Peace and Anna Karenina.",
             "https://example.org/tolstoy", "Example Encyclopedia, CC BY-SA"),
    Document("doc:defoe", "Daniel Defoe", "Daniel Defoe was an English writer. He wrote Robinson Crusoe in 1719.",
             "https://example.org/defoe", "Example Encyclopedia, CC BY-SA"),
    Document("doc:everest", "Mount Everest", "Mount Everest is Earth's highest mountain above sea level.\n"
             "It lies in the Mahalangur Himal range of the Himalayas."),
    Document("doc:light", "Speed of light", "The speed of light in vacuum is exactly 299,792,458 metres per second."),
    Document("doc:penicillin", "Penicillin", "Penicillin was discovered in 1928 by Alexander Fleming. "
             "It was the first antibiotic used widely."),
    Document("doc:canberra", "Canberra", "Canberra is the capital city of Australia."),
    Document("doc:sydney", "Sydney", "Sydney is the largest city in Australia. Sydney is not the capital."),
    Document("doc:peace", "Peace of Westphalia", "The Peace of Westphalia ended the Thirty Years' War in 1648."),
]  # fmt: skip


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> BM25Search:
    return BM25Search.build(CORPUS, tmp_path_factory.mktemp("bm25") / "index")


def test_ranks_the_right_document_first(index: BM25Search) -> None:
    assert index.search("who wrote Robinson Crusoe")[0].id == "doc:defoe"
    assert index.search("capital of Australia")[0].id == "doc:canberra"
    assert index.search("highest mountain")[0].id == "doc:everest"
    assert index.search("discovered penicillin")[0].id == "doc:penicillin"
    assert index.search("WRITERS")[0].id in {"doc:tolstoy", "doc:defoe"}  # stemmed, case-folded


def test_hits_carry_ids_titles_snippets_and_attribution(index: BM25Search) -> None:
    hits = index.search("Tolstoy wrote Karenina", k=3)
    assert all(isinstance(h, Hit) for h in hits)
    top = hits[0]
    assert (top.id, top.title, top.location) == ("doc:tolstoy", "Leo Tolstoy", "https://example.org/tolstoy")
    assert top.attribution == "Example Encyclopedia, CC BY-SA"
    # the first sentence, and the one that matched most
    assert top.snippet == "Leo Tolstoy was a Russian writer. He wrote War and Peace and Anna Karenina."
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.score > 0 for h in hits)


def test_snippet_is_the_first_sentence_and_the_matching_ones(index: BM25Search) -> None:
    assert index.search("Himalayas range")[0].snippet == (
        "Mount Everest is Earth's highest mountain above sea level. It lies in the Mahalangur Himal range of the Himalayas.")


def test_passage_keeps_a_description_line_cuts_and_skips_unmatched_sentences() -> None:
    text = "Ship canal in Russia\nThe canal is a man-made ship canal. It opened in 1933. It is 227 km long. Tolls apply."
    assert passage(text, {"opened"}, chars=100) == "Ship canal in Russia The canal is a man-made ship canal. It opened in 1933."
    assert passage(text, {"xyzzy"}, chars=100) == "Ship canal in Russia The canal is a man-made ship canal."
    assert passage(text, {"opened", "long", "tolls"}, sentences=2, chars=100) == (
        "Ship canal in Russia The canal is a man-made ship canal. It opened in 1933. It is 227 km long.")
    assert passage("word " * 500, {"word"}, chars=30).endswith(" …") and len(passage("word " * 500, {"word"}, chars=30)) <= 32
    assert passage("", {"x"}) == ""
    assert passage(text, {"xyzzy"}) == " ".join(text.split())  # short enough: whole


def test_a_title_named_in_the_query_gains_a_fifth_of_the_best_score(index: BM25Search) -> None:
    plain = {h.id: h.score for h in index.search("Westphalia peace war", k=8)}  # same terms, no title in order
    boosted = {h.id: h.score for h in index.search("peace of Westphalia war", k=8)}
    assert boosted["doc:peace"] == pytest.approx(plain["doc:peace"] + 0.2 * max(plain.values()), rel=1e-6)
    assert {i: boosted[i] for i in boosted if i != "doc:peace"} == {i: plain[i] for i in plain if i != "doc:peace"}
    # "War and Peace" is not a title here; "Leo Tolstoy" is: named, it comes first
    hits = index.search("did Leo Tolstoy write about the peace after the war", k=3)
    assert hits[0].id == "doc:tolstoy"
    # one-word titles are common words too often to count ("Sydney" gains nothing)
    one = index.search("Sydney capital", k=8)
    two = index.search("capital Sydney", k=8)
    assert [(h.id, h.score) for h in one] == [(h.id, h.score) for h in two]


def test_scores_match_brute_force_bm25(index: BM25Search) -> None:
    """The reference oracle: Lucene's BM25 (k1=1.5, b=0.75) computed by hand."""
    stem = _stemmer()
    docs = [_tokenize(f"{d.title}\n{d.text}", stem) for d in CORPUS]
    avgdl = sum(map(len, docs)) / len(docs)
    for query in ["capital city of Australia", "writer wrote war", "light speed metres", "peace 1648"]:
        terms = set(_tokenize(query, stem))
        expected = {}
        for doc, tokens in zip(CORPUS, docs):
            tf = Counter(tokens)
            score = 0.0
            for t in terms:
                df = sum(t in d for d in docs)
                if df and tf[t]:
                    idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
                    score += idf * tf[t] / (tf[t] + 1.5 * (1 - 0.75 + 0.75 * len(tokens) / avgdl))
            if score > 0:
                expected[doc.id] = score
        hits = index.search(query, k=len(CORPUS))
        assert {h.id for h in hits} == set(expected), query
        for h in hits:
            assert h.score == pytest.approx(expected[h.id], rel=1e-4), (query, h.id)


def test_get_and_unknown_id(index: BM25Search) -> None:
    assert index.get("doc:canberra").text == "Canberra is the capital city of Australia."
    with pytest.raises(SearchError, match="no document with id 'doc:nope'"):
        index.get("doc:nope")
    assert issubclass(SearchError, ToolError)


def test_queries_with_no_known_terms(index: BM25Search) -> None:
    assert index.search("xyzzy plugh") == []
    assert index.search("the of and") == []  # stopwords only
    assert index.search("") == []
    assert index.search("Canberra", k=0) == []
    assert len(index.search("city", k=100)) == 2  # only documents sharing a term, k past the corpus size


def test_is_a_search_backend(index: BM25Search) -> None:
    assert isinstance(index, SearchBackend)
    assert len(index) == len(CORPUS)


def test_persisted_without_pickle(index: BM25Search) -> None:
    files = sorted(p.relative_to(index.index_dir).as_posix() for p in index.index_dir.rglob("*") if p.is_file())
    assert all(f.endswith((".npy", ".json", ".jsonl")) for f in files), files
    assert "manifest.json" in files and "docs.jsonl" in files
    for npy in index.index_dir.rglob("*.npy"):
        array = np.load(npy, allow_pickle=False)  # raises if the file needed pickle
        assert array.dtype != object
    manifest = json.loads((index.index_dir / "manifest.json").read_text())
    assert manifest["count"] == len(CORPUS)


def test_reopen_gives_the_same_results(index: BM25Search) -> None:
    again = BM25Search(index.index_dir)
    for query in ["capital of Australia", "writer", "war"]:
        assert again.search(query) == index.search(query)


def test_open_or_build_builds_once(tmp_path: Path) -> None:
    calls = []

    def documents() -> list[Document]:
        calls.append(1)
        return CORPUS

    first = BM25Search.open_or_build(tmp_path / "idx", documents, fingerprint="v1")
    second = BM25Search.open_or_build(tmp_path / "idx", documents, fingerprint="v1")
    assert len(calls) == 1
    assert second.search("Canberra")[0].id == first.search("Canberra")[0].id
    BM25Search.open_or_build(tmp_path / "idx", lambda: CORPUS[:3], fingerprint="v2")  # stale: rebuilt
    assert len(BM25Search(tmp_path / "idx")) == 3


def test_progress_hook_and_no_printing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events: list[tuple[str, int, int]] = []
    BM25Search.build(CORPUS, tmp_path / "idx", progress=lambda *e: events.append(e))
    stages = [stage for stage, _, _ in events]
    assert stages[0] == "tokenize" and stages[-1] == "save" and "index" in stages
    assert ("tokenize", len(CORPUS), len(CORPUS)) in events
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_failed_build_keeps_the_old_index(tmp_path: Path) -> None:
    BM25Search.build(CORPUS, tmp_path / "idx")

    def broken():  # type: ignore[no-untyped-def]
        yield CORPUS[0]
        raise OSError("disk on fire")

    with pytest.raises(OSError):
        BM25Search.build(broken(), tmp_path / "idx")
    assert len(BM25Search(tmp_path / "idx")) == len(CORPUS)
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]  # no temporary directories left behind


def test_incomplete_index_is_not_opened(tmp_path: Path) -> None:
    BM25Search.build(CORPUS, tmp_path / "idx")
    (tmp_path / "idx" / "manifest.json").unlink()  # as if a build died before its last write
    with pytest.raises(ConfigError, match="no complete BM25 index"):
        BM25Search(tmp_path / "idx")
    calls = []
    BM25Search.open_or_build(tmp_path / "idx", lambda: calls.append(1) or CORPUS)
    assert calls == [1]


def test_bad_documents(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no documents"):
        BM25Search.build([], tmp_path / "a")
    with pytest.raises(ConfigError, match="unique"):
        BM25Search.build([CORPUS[0], CORPUS[0]], tmp_path / "b")
    with pytest.raises(ConfigError, match="unique and non-empty"):
        BM25Search.build([Document("", "t", "x")], tmp_path / "c")
