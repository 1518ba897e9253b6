"""The dense and hybrid eval backends over a corpus (evals/wiki_index.py): built once, hits carry
document ids. Unit: a bag-of-words fake embedder and a fake store kept in a file; integration:
MiniLM in Milvus Lite."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from tooltoken.evals import wiki_index
from tooltoken.evals._backends import hit_id, load_backend
from tooltoken.retrieval import Chunk, SearchResult
from tooltoken.tools import ConfigError
from tooltoken.tools.search import Document, SearchError

LONG = "enwiki:International_Covenant_on_Economic,_Social_and_Cultural_Rights"  # over Milvus' 64-byte keys
DOCS = [
    Document("enwiki:War_and_Peace", "War and Peace", "Novel by Leo Tolstoy\nA novel set in Russia in 1812.", "u1"),
    Document("enwiki:Robinson_Crusoe", "Robinson Crusoe", "Novel by Daniel Defoe\nA castaway on an island.", "u2"),
    Document("enwiki:Mount_Everest", "Mount Everest", "Mountain in Asia\nThe highest mountain above sea level.", "u3"),
    Document(LONG, "International Covenant on Economic, Social and Cultural Rights", "A United Nations treaty.", "u4"),
]


class WordsEmbedder:
    """Bag of words hashed into 512 dimensions; records every text it embeds."""

    name, dim = "words", 512

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed(self, texts):
        self.seen += list(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in zip(out, texts):
            for word in text.lower().replace(",", " ").replace(".", " ").split():
                row[zlib.crc32(word.encode()) % self.dim] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


class FileStore:
    """A VectorStore kept in `<path>/rows.json`, so it moves with its directory as Milvus Lite does."""

    def __init__(self, path: Path) -> None:
        self.file = Path(path) / "rows.json"
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.rows = json.loads(self.file.read_text()) if self.file.exists() else {}

    def upsert(self, chunks, vectors):
        for c, v in zip(chunks, vectors):
            self.rows[c.id] = [[c.id, c.text, c.source, c.title, c.line_start, c.line_end, c.kind], v.tolist()]

    def get(self, ids):
        return [Chunk(*self.rows[i][0]) for i in ids if i in self.rows]

    def search(self, vector, k, filters=None):
        scored = sorted(((float(np.dot(v, vector)), Chunk(*c)) for c, v in self.rows.values()), key=lambda s: -s[0])
        return [SearchResult(c, s) for s, c in scored[:k]]

    def text_search(self, query, k, filters=None):
        words = set(query.lower().split())
        scored = sorted(((len(words & set(c[1].lower().split())), Chunk(*c)) for c, _ in self.rows.values()),
                        key=lambda s: -s[0])
        return [SearchResult(c, s) for s, c in scored[:k] if s]

    def flush(self):
        self.file.write_text(json.dumps(self.rows))

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.mark.unit
def test_built_once_hits_carry_document_ids_and_a_stale_index_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setattr(wiki_index, "MilvusStore", FileStore)
    embedder, steps = WordsEmbedder(), []
    search = wiki_index.wiki_search("dense", documents=DOCS, corpus="tiny", embedder=embedder, cache=tmp_path,
                                    progress=lambda *step: steps.append(step))
    assert embedder.seen == [f"{d.title}\n{d.text}" for d in DOCS]  # one document, one chunk: title and text
    assert steps == [("embed", 0, 4), ("embed", 4, 4)]
    assert [p.name for p in (tmp_path / "indexes").iterdir()] == ["tiny-words-milvus-1"]  # no temporary left

    hits = search.search("who wrote war and peace", k=2)
    assert [hit_id(h) for h in hits][0] == "enwiki:War_and_Peace"
    assert (hits[0].title, hits[0].location) == ("War and Peace", "u1")
    assert search.search("united nations treaty on cultural rights", k=1)[0].id == LONG
    assert search.get(LONG) == DOCS[3]
    with pytest.raises(SearchError):
        search.get("enwiki:Nowhere")

    embedder.seen.clear()  # opened again: nothing is embedded but the query
    hybrid = wiki_index.wiki_search("hybrid", documents=DOCS, corpus="tiny", embedder=embedder, cache=tmp_path)
    assert embedder.seen == []
    assert [h.id for h in hybrid.search("highest mountain", k=3)][0] == "enwiki:Mount_Everest"
    assert embedder.seen == ["highest mountain"]

    edited = [*DOCS[:2], Document("enwiki:Mount_Everest", "Mount Everest", "Earth's highest mountain.", "u3")]
    embedder.seen.clear()  # other documents under the same name: the old index is not used
    again = wiki_index.wiki_search("dense", documents=edited, corpus="tiny", embedder=embedder, cache=tmp_path)
    assert len(embedder.seen) == 3
    assert {h.id for h in again.search("cultural rights treaty", k=5)} == {d.id for d in edited}
    assert [p.name for p in (tmp_path / "indexes").iterdir()] == ["tiny-words-milvus-1"]


@pytest.mark.unit
def test_backend_names_are_listed_in_the_error():
    with pytest.raises(ConfigError, match="bm25, dense, hybrid or module:attribute"):
        load_backend("vectors")


class Counting:
    """An embedder that counts the texts it embeds."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.dim, self.texts = inner, inner.name, inner.dim, 0

    def embed(self, texts):
        self.texts += len(texts)
        return self.inner.embed(texts)


@pytest.mark.integration
def test_minilm_in_milvus_lite(tmp_path):
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    pytest.importorskip("sentence_transformers")
    from tooltoken.retrieval import SentenceTransformerEmbedder

    embedder = Counting(SentenceTransformerEmbedder())
    docs = [*DOCS, Document("enwiki:Photosynthesis", "Photosynthesis", "How plants turn light into chemical energy.")]
    search = wiki_index.wiki_search("dense", documents=docs, corpus="tiny", embedder=embedder, cache=tmp_path)
    assert search.search("who wrote the novel about Napoleon's invasion of Russia", k=1)[0].id == "enwiki:War_and_Peace"
    assert search.search("how do plants make energy from sunlight", k=1)[0].id == "enwiki:Photosynthesis"
    search.close()  # Milvus Lite is single-process: release it before opening it again
    assert embedder.texts == len(docs) + 2
    hybrid = wiki_index.wiki_search("hybrid", documents=docs, corpus="tiny", embedder=embedder, cache=tmp_path)
    assert [h.id for h in hybrid.search("the treaty on economic, social and cultural rights", k=1)] == [LONG]
    assert embedder.texts == len(docs) + 3  # reused, not rebuilt: only the query was embedded
    hybrid.close()
