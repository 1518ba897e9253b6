"""Integration: real Milvus Lite (embedded and as a gRPC server) with the real MiniLM model."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")
pytest.importorskip("sentence_transformers")

from tooltoken.retrieval import MilvusStore, Retriever, SentenceTransformerEmbedder, StoreLockedError, ingest  # noqa: E402

pytestmark = pytest.mark.integration

INJECTION = 'x" or id > 0 or "'

DOCS = {
    "install.md": "# Install\n\nRun `pip install tooltoken` to install the package.\n\n"
    "## Milvus\n\nMilvus Lite keeps the vector index in a local directory; no server is needed.\n",
    "cats.txt": "Cats sleep for most of the day.\nA cat purrs when it is content.\n",
    "france.html": "<html><head><title>France</title></head><body>\n<h1>Paris</h1>\n"
    "<p>Paris is the capital and largest city of France.</p>\n</body></html>\n",
    "guide.rst": "Guide\n=====\n\nUsage\n-----\n\nCall the retrieve tool with a query to search your documents.\n",
}


@pytest.fixture(scope="module")
def embedder():
    return SentenceTransformerEmbedder()


def make_docs(root: Path) -> Path:
    from test_ingest_unit import make_pdf

    root.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (root / name).write_text(text)
    (root / "solar.pdf").write_bytes(make_pdf(["The Sun is a star at the centre of the Solar System."], title="Solar"))
    (root / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog\ntruncated")
    return root


def check_agreement(store: MilvusStore) -> None:
    from tooltoken.retrieval import Manifest

    m = Manifest.load(store.manifest_path)
    assert m.pending is None
    assert store.ids() == {c[0] for e in m.files.values() for c in e.chunks} == set(m.owners)


def exercise(store: MilvusStore, embedder, docs: Path) -> None:
    report = ingest([docs], store, embedder)
    assert report.files_new == 5
    assert [Path(s.path).name for s in report.skipped] == ["broken.pdf"]
    check_agreement(store)
    retriever = Retriever(store, embedder)
    cases = {
        "where does Milvus Lite keep the index?": "install.md",
        "what is the capital of France": "france.html",
        "when do cats purr": "cats.txt",
        "which star is at the centre of the solar system": "solar.pdf",
        "how do I search my documents": "guide.rst",
    }
    for query, name in cases.items():
        top = retriever.search(query, k=2)[0].chunk
        assert Path(top.source).name == name, (query, top)
    top = retriever.search("capital of France", k=1)[0].chunk
    assert (top.title, top.line_start, top.line_end, top.kind) == ("Paris", 2, 3, "html")
    assert top.location == f"{docs / 'france.html'}:2-3"
    # filters: allowlisted fields, escaped values, the same on dense and BM25
    assert {Path(r.chunk.source).name for r in retriever.search("documents", 5, {"kind": "txt"})} == {"cats.txt"}
    assert Retriever(store, embedder).search("cats", 5, {"title": INJECTION}) == []
    # dense search: in-process index (Lite) or Milvus (filtered / server) agree
    v = embedder.embed(["Cats sleep"])[0]
    assert store.search(v, 1)[0].chunk.id == store.search(v, 1, {"kind": "txt"})[0].chunk.id

    # change one file, delete one, add one: only those are embedded
    (docs / "cats.txt").write_text("Cats sleep for most of the day.\nDogs bark at the mail carrier.\n")
    (docs / "guide.rst").unlink()
    (docs / "new.md").write_text("# New\n\nA page about tide pools and sea anemones.\n")
    report = ingest([docs], store, embedder)
    assert (report.files_new, report.files_changed, report.files_deleted, report.files_unchanged) == (1, 1, 1, 3)
    assert report.chunks_embedded == 2
    check_agreement(store)
    assert Path(retriever.search("dogs barking", 1)[0].chunk.source).name == "cats.txt"
    assert all(Path(r.chunk.source).name != "guide.rst" for r in retriever.search("retrieve tool query", 10))


def test_embedded_milvus_lite(tmp_path, embedder, caplog):
    caplog.set_level(logging.WARNING)
    docs = make_docs(tmp_path / "docs")
    with MilvusStore(tmp_path / "index") as store:
        exercise(store, embedder, docs)
        # a title holding the injection string matches only literally
        from tooltoken.retrieval import Chunk, chunk_id

        evil = Chunk(chunk_id("evil"), "evil text about cats", str(docs / "evil.txt"), INJECTION, 1, 1, "txt")
        store.upsert([evil], embedder.embed([evil.text]))
        assert [r.chunk.id for r in store.text_search("cats", 10, {"title": INJECTION})] == [evil.id]
        assert [r.chunk.id for r in store.search(embedder.embed(["cats"])[0], 10, {"title": INJECTION})] == [evil.id]
        store.delete([evil.id])
        # a second process gets a clear error, not a traceback
        code = "from tooltoken.retrieval import MilvusStore; MilvusStore(__import__('sys').argv[1])"
        probe = subprocess.run(
            [sys.executable, "-c", f"import sys\ntry:\n    {code}\nexcept Exception as e:\n    print(type(e).__name__, e); sys.exit(3)",
             str(tmp_path / "index")],
            capture_output=True, text=True, timeout=120,
        )
        assert probe.returncode == 3, probe.stderr
        assert probe.stdout.startswith("StoreLockedError") and "single-process" in probe.stdout
        assert "Traceback" not in probe.stderr
        with pytest.raises(StoreLockedError):
            MilvusStore(tmp_path / "index")  # in the same process too
    # reopened: the data is there and the in-process index is rebuilt from it
    with MilvusStore(tmp_path / "index") as store:
        check_agreement(store)
        assert Path(Retriever(store, embedder).search("tide pools", 1)[0].chunk.source).name == "new.md"
    # nothing went wrong quietly: the in-process Milvus Lite logged no errors (pypdf may warn)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lite_server(tmp_path):
    port = free_port()
    exe = Path(sys.executable).with_name("milvus-lite")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "milvus_lite"]
    proc = subprocess.Popen(
        [*cmd, "server", "--data-dir", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"milvus-lite server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("milvus-lite server did not listen within 60 s")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_milvus_server_by_uri(tmp_path, embedder, lite_server, monkeypatch):
    monkeypatch.setenv("TOOLTOKEN_DATA_DIR", str(tmp_path / "data"))
    docs = make_docs(tmp_path / "docs")
    with MilvusStore(uri=lite_server, token="root:Milvus") as store:
        assert not store.lite and store.manifest_path.is_relative_to(tmp_path / "data")
        exercise(store, embedder, docs)
    # a second client of a server is fine (servers are multi-client); the data persists
    with MilvusStore(uri=lite_server) as again:
        check_agreement(again)
        assert Path(Retriever(again, embedder).search("tide pools", 1)[0].chunk.source).name == "new.md"


def test_unreachable_server_is_a_store_error(monkeypatch, tmp_path):
    from tooltoken.retrieval import StoreError

    monkeypatch.setenv("TOOLTOKEN_DATA_DIR", str(tmp_path))
    with pytest.raises(StoreError, match="cannot open Milvus"):
        MilvusStore(uri=f"http://127.0.0.1:{free_port()}", timeout=2)
