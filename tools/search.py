"""Search backends behind one small seam, and the local BM25 one.

    >>> docs = [Document("a", "Tolstoy", "Leo Tolstoy wrote War and Peace."),
    ...         Document("b", "Defoe", "Daniel Defoe wrote Robinson Crusoe.")]
    >>> index = BM25Search.build(docs, tmp_dir / "idx")            # doctest: +SKIP
    >>> [hit.id for hit in index.search("who wrote war and peace", k=1)]   # doctest: +SKIP
    ['a']

A backend has two methods: `search(query, k) -> list[Hit]` and `get(id) -> Document`. Ids are
stable across runs, so a citation made today resolves tomorrow. The browser (browser.py) and the
controller only ever see this Protocol; `HttpSearch` (http_search.py) and the vector retriever of
tooltoken.retrieval plug in behind it.

`BM25Search` uses bm25s (sparse-matrix BM25, numpy only) with an English stemmer. The index lives
in one directory, written without pickle: bm25s' arrays with `np.save(allow_pickle=False)`, its
vocabulary and parameters as JSON, our documents as JSON lines, and a manifest written last. It
is built in a temporary sibling directory and renamed into place, so a crash mid-build never
leaves a half index that looks whole. Not handled: incremental updates (rebuild instead).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ._errors import ConfigError, ToolError

__all__ = ["SENTENCE_BREAK", "BM25Search", "Document", "Hit", "ProgressFn", "SearchBackend", "SearchError", "passage",
           "query_terms", "split_sentences"]

#: Called as progress(stage, done, total) while something long runs; stages are short words
#: such as "download", "tokenize", "index", "save". A hook, never printed by the library.
ProgressFn = Callable[[str, int, int], None]

_FORMAT = "tooltoken-bm25/1"
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
#: where sentences end, in a document and in an answer (one rule for the search's passages, the
#: browser's quotes and the citations' claims)
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")
#: English words that carry no topic (question words, auxiliaries, pronouns, prepositions)
STOPWORDS = frozenset("""a about after all also an and any are as at be been before being but by can could
did do does during each for from had has have he her his how i if in into is it its itself me more most my
no not of on once only or other our out over own same she should so some such than that the their them
then there these they this those through to too under until up very was we were what when where which
while who whom why will with would you your many much one first name named called known""".split())
# beside the first sentence: the one sharing most query terms. With two, the cut at PASSAGE_CHARS
# often fell inside the second, and the answer went with it: the gold answer stood in the 3
# passages of 258 of 274 factual dev questions with one, 248 with two (docs/results.md)
PASSAGE_SENTENCES = 1
PASSAGE_CHARS = 450
TITLE_POOL, TITLE_BOOST = 50, 0.2
_WORD = re.compile(r"(?u)\w+")


class SearchError(ToolError):
    """A search backend could not answer: unknown id, refused address, bad server reply."""


@dataclass
class Hit:
    """One ranked search result. `id` is what `get` and citations take."""

    id: str
    title: str
    snippet: str
    score: float
    location: str = ""
    attribution: str = ""


@dataclass
class Document:
    """A whole document as a backend returns it for `get`. `location` is a URL or path."""

    id: str
    title: str
    text: str
    location: str = ""
    attribution: str = ""


@runtime_checkable
class SearchBackend(Protocol):
    """What the browser needs from a search engine: ranked hits, and documents by id."""

    def search(self, query: str, k: int = 5) -> list[Hit]: ...

    def get(self, id: str) -> Document: ...


class BM25Search:
    """A BM25 index over local documents, persisted in `index_dir` (see the module docstring).

    Open an existing index with `BM25Search(index_dir)`, make one with `build`, or do whichever
    is needed with `open_or_build`.
    """

    def __init__(self, index_dir: str | os.PathLike[str]) -> None:
        bm25s = _import_bm25s()
        self.index_dir = Path(index_dir)
        manifest = _read_manifest(self.index_dir)
        if manifest is None:
            raise ConfigError(f"{self.index_dir} holds no complete BM25 index; build one with BM25Search.build")
        self.manifest = manifest
        self._bm25 = bm25s.BM25.load(str(self.index_dir / "bm25"), load_corpus=False, mmap=False, allow_pickle=False)
        with open(self.index_dir / "docs.jsonl", encoding="utf-8") as f:
            self._docs = [Document(**json.loads(line)) for line in f]
        if len(self._docs) != manifest["count"]:
            raise ConfigError(f"{self.index_dir}: index is damaged (document count differs); delete it to rebuild")
        self._by_id = {d.id: i for i, d in enumerate(self._docs)}
        self._stem = _stemmer()

    @classmethod
    def build(
        cls,
        documents: Iterable[Document],
        index_dir: str | os.PathLike[str],
        *,
        progress: ProgressFn | None = None,
        fingerprint: str = "",
    ) -> BM25Search:
        """Index `documents` into `index_dir` (replacing what is there) and open the result.

        The indexed text is the title followed by the text. Ids must be unique and non-empty.
        `fingerprint` is stored in the manifest so `open_or_build` can tell a stale index.
        """
        bm25s = _import_bm25s()
        index_dir = Path(index_dir)
        docs = list(documents)
        if not docs:
            raise ConfigError("BM25Search.build: no documents to index")
        seen: set[str] = set()
        for d in docs:
            if not d.id or d.id in seen:
                raise ConfigError(f"BM25Search.build: document ids must be unique and non-empty (got {d.id!r})")
            seen.add(d.id)
        stem = _stemmer()
        tokens = []
        step = max(1, len(docs) // 100)
        for i, d in enumerate(docs):
            tokens.append(_tokenize(f"{d.title}\n{d.text}", stem))
            if progress and (i % step == 0 or i == len(docs) - 1):
                progress("tokenize", i + 1, len(docs))
        if progress:
            progress("index", 0, 1)
        bm25 = bm25s.BM25()
        bm25.index(tokens, show_progress=False)
        if progress:
            progress("index", 1, 1)
            progress("save", 0, 1)
        index_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.", dir=index_dir.parent))
        try:
            bm25.save(str(tmp / "bm25"), allow_pickle=False, show_progress=False)
            with open(tmp / "docs.jsonl", "w", encoding="utf-8") as f:
                for d in docs:
                    f.write(json.dumps(asdict(d), ensure_ascii=False) + "\n")
            manifest = {"format": _FORMAT, "count": len(docs), "stemmer": "english", "fingerprint": fingerprint}
            (tmp / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
            _replace_dir(tmp, index_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if progress:
            progress("save", 1, 1)
        return cls(index_dir)

    @classmethod
    def open_or_build(
        cls,
        index_dir: str | os.PathLike[str],
        documents: Callable[[], Iterable[Document]],
        *,
        progress: ProgressFn | None = None,
        fingerprint: str = "",
    ) -> BM25Search:
        """Open the index in `index_dir` if it is complete and has this `fingerprint`, else build
        it from `documents()` (called only then)."""
        manifest = _read_manifest(Path(index_dir))
        if manifest is not None and manifest.get("fingerprint", "") == fingerprint:
            return cls(index_dir)
        return cls.build(documents(), index_dir, progress=progress, fingerprint=fingerprint)

    def __len__(self) -> int:
        return len(self._docs)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The best `k` documents for `query`, best first; only documents sharing a term.

        BM25 ranks; then, among its best `TITLE_POOL`, a document whose title of two or more
        words stands in the query as a phrase ("who wrote War and Peace") gains `TITLE_BOOST`
        of the best score: a named subject's own article outranks articles that only repeat its
        words. Measured on the dev sets (docs/results.md, "Retrievers")."""
        if k <= 0:
            return []
        vocab = self._bm25.vocab_dict
        terms = [t for t in _tokenize(query, self._stem) if t in vocab]
        if not terms:
            return []
        pool = min(max(k, TITLE_POOL), len(self._docs))
        ids, scores = self._bm25.retrieve([terms], k=pool, show_progress=False, n_threads=0)
        ranked = [(float(s), pos) for pos, s in zip(ids[0].tolist(), scores[0].tolist()) if s > 0]
        if ranked:
            top, phrase = ranked[0][0], f" {' '.join(_WORD.findall(query.lower()))} "
            ranked = [(s + TITLE_BOOST * top * _titled(self._docs[pos].title, phrase), pos) for s, pos in ranked]
            ranked.sort(key=lambda r: -r[0])
        wanted = set(terms)
        return [
            Hit(d.id, d.title, passage(d.text, wanted, self._stem), score, d.location, d.attribution)
            for score, d in ((s, self._docs[pos]) for s, pos in ranked[:k])
        ]

    def get(self, id: str) -> Document:
        try:
            return self._docs[self._by_id[id]]
        except KeyError:
            raise SearchError(f"no document with id {id!r}") from None


def _titled(title: str, phrase: str) -> float:
    """1.0 when `title` has two or more words and stands whole in `phrase` (space-padded words)."""
    words = _WORD.findall(title.lower())
    return 1.0 if len(words) >= 2 and f" {' '.join(words)} " in phrase else 0.0


def _import_bm25s() -> Any:
    try:
        import bm25s
    except ImportError:
        raise ConfigError("local search needs bm25s and PyStemmer: pip install 'tooltoken[search]'") from None
    return bm25s


def _stemmer() -> Callable[[list[str]], list[str]]:
    try:
        import Stemmer
    except ImportError:
        raise ConfigError("local search needs bm25s and PyStemmer: pip install 'tooltoken[search]'") from None
    from bm25s.stopwords import STOPWORDS_EN

    stemmer = Stemmer.Stemmer("english")
    stop = frozenset(STOPWORDS_EN)
    cache: dict[str, str] = {}

    def stem(words: list[str]) -> list[str]:
        # PyStemmer is fast, but a dict is faster for the few thousand words a corpus repeats
        out = []
        for w in words:
            if w in stop:
                continue
            s = cache.get(w)
            if s is None:
                s = cache[w] = stemmer.stemWord(w)
            out.append(s)
        return out

    return stem


def _tokenize(text: str, stem: Callable[[list[str]], list[str]]) -> list[str]:
    return stem(_TOKEN.findall(text.lower()))


def query_terms(query: str) -> set[str]:
    """A query's words as `passage` compares them: lower-cased, without stop words (unstemmed:
    for backends without the BM25 stemmer)."""
    return {w for w in _TOKEN.findall(query.lower()) if w not in STOPWORDS}


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, each with its whitespace tidied; none empty."""
    return [tidy for part in SENTENCE_BREAK.split(text) if (tidy := " ".join(part.split()))]


def passage(text: str, terms: set[str], stem: Callable[[list[str]], list[str]] | None = None, *,
            sentences: int = 0, chars: int = 0, lines: bool = False) -> str:
    """The sentences of `text` that matter to a query whose (stemmed) words are `terms`: the
    first sentence (a lead's definition, with its dates and places; with the short description
    line or heading before it) and the `sentences` others sharing most terms, in the document's
    order, at most `chars` characters; a text that fits in `chars` whole. Small readers answer from
    a short context on target far better than from whole documents (docs/results.md)."""
    sentences, chars = sentences or PASSAGE_SENTENCES, chars or PASSAGE_CHARS
    stem = stem or _plain
    parts = split_sentences(text)
    if len(" ".join(parts)) <= chars:  # short enough to show whole (`lines`: line by line)
        return ("\n" if lines else " ").join(" ".join(line.split()) for line in text.splitlines() if line.strip())
    # the first sentence, and a short description line or heading before it
    lead = {0, 1} if len(parts) > 1 and not parts[0].endswith((".", "!", "?")) else {0}
    scores = [len(terms.intersection(_tokenize(p, stem))) for p in parts]
    best = sorted((n for n in range(len(parts)) if scores[n] and n not in lead),
                  key=lambda n: (-scores[n], n))[:sentences]
    keep = sorted(lead | set(best))
    out = " ".join(parts[n] for n in keep)
    if len(out) > chars:
        out = out[:chars].rsplit(" ", 1)[0] + " …"
    return out


def _plain(words: list[str]) -> list[str]:
    return words


def _read_manifest(index_dir: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        return None
    return manifest


def _replace_dir(src: Path, dst: Path) -> None:
    """Move the finished `src` to `dst`. An old index is moved aside first and removed after,
    so `dst` is never a mix of two builds; if another process got there first, keep theirs."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old.{os.getpid()}")
        os.replace(dst, old)
    try:
        os.replace(src, dst)
    except OSError:
        if _read_manifest(dst) is None:
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
