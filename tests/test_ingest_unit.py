"""Unit tests of extraction, chunking, the manifest and the ingester (fake store and embedder)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from tooltoken.retrieval import (
    Chunk,
    FileEntry,
    IngestProgress,
    Manifest,
    RetrievalConfigError,
    SearchResult,
    StoreError,
    Unreadable,
    extract,
    ingest,
    split,
)

pytestmark = pytest.mark.unit


# --- helpers shared with the integration tests -----------------------------------------------


def make_pdf(pages: list[str], title: str = "") -> bytes:
    """A small valid PDF with one line of Helvetica text per entry of `pages`."""
    objs: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    info = len(objs) + 1
    objs.append(f"<< /Title ({title}) >>".encode())
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, info, xref)
    return bytes(out)


class FakeEmbedder:
    """Deterministic 16-d vectors from a hash of the text; counts what it embedded."""

    name = "fake"
    dim = 16

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed(self, texts):
        self.seen += list(texts)
        out = np.stack([np.random.default_rng(int(hashlib.md5(t.encode()).hexdigest()[:8], 16)).standard_normal(16) for t in texts])
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


class FakeStore:
    """An in-memory VectorStore. `fail_after` upserts, it raises (a crash between writes)."""

    def __init__(self, tmp: Path) -> None:
        self.rows: dict[str, tuple[Chunk, np.ndarray]] = {}
        self.manifest_path = tmp / "manifest.json"
        self.fail_after: int | None = None
        self.flushes = 0

    def upsert(self, chunks, vectors):
        if self.fail_after is not None:
            if self.fail_after == 0:
                raise RuntimeError("simulated crash")
            self.fail_after -= 1
        for c, v in zip(chunks, vectors):
            self.rows[c.id] = (c, v)

    def delete(self, ids):
        for i in ids:
            self.rows.pop(i, None)

    def get(self, ids):
        return [self.rows[i][0] for i in ids if i in self.rows]

    def get_vectors(self, ids):
        return {i: self.rows[i][1] for i in ids if i in self.rows}

    def search(self, vector, k, filters=None):
        scored = sorted(self.rows.values(), key=lambda r: -float(r[1] @ vector))[:k]
        return [SearchResult(c, float(v @ vector)) for c, v in scored]

    def text_search(self, query, k, filters=None):
        return []

    def flush(self):
        self.flushes += 1

    def close(self):
        pass


def agree(store: FakeStore, manifest_path: Path) -> None:
    """The store holds exactly the chunks the manifest lists, each with its owner's metadata."""
    m = Manifest.load(manifest_path)
    assert m.pending is None
    held = {c[0] for e in m.files.values() for c in e.chunks}
    assert set(store.rows) == held == set(m.owners)
    for i, (chunk, _) in store.rows.items():
        owner = m.owners[i]
        assert chunk.source == owner
        ref = m.files[owner].ref(i)
        assert (chunk.line_start, chunk.line_end, chunk.title) == (ref[1], ref[2], ref[3])


# --- extraction and chunking -------------------------------------------------------------


def test_markdown_headings_skip_code_fences_and_titles_follow_sections():
    text = "# Guide\n\nIntro.\n\n```sh\n# not a heading\n```\n\n## Install\n\npip install x\n\n### Linux\n\napt\n"
    doc = extract(Path("g.md"), text.encode())
    assert doc.title == "Guide"
    assert [h for _, h in doc.headings] == ["Guide", "Guide > Install", "Guide > Install > Linux"]
    assert doc.heading_at(text.index("apt")) == "Guide > Install > Linux"
    assert doc.line_of(text.index("apt")) == 15


def test_rst_titles_with_overline_and_levels():
    text = "=====\nTitle\n=====\n\nIntro\n\nSection\n-------\n\nBody text\n\nOther\n-----\n\nMore\n"
    doc = extract(Path("a.rst"), text.encode())
    assert doc.title == "Title"
    assert [h for _, h in doc.headings] == ["Title", "Title > Section", "Title > Other"]


def test_html_text_drops_scripts_and_keeps_source_lines():
    html = (
        "<html><head><title>The Page</title><script>var x = 'hidden';</script></head>\n"
        "<body>\n<h1>Paris</h1>\n<p>Paris is the\ncapital of France.</p>\n<pre>a\nb</pre>\n<p>end &amp; done</p>\n</body></html>\n"
    )
    doc = extract(Path("p.html"), html.encode())
    assert doc.title == "The Page"
    assert "hidden" not in doc.text and "Paris is the capital of France." in doc.text
    assert "end & done" in doc.text
    assert doc.line_of(doc.text.index("Paris is")) == 4
    assert doc.line_of(doc.text.index("b\n")) == 7
    assert doc.line_of(doc.text.index("end")) == 8
    assert doc.heading_at(doc.text.index("capital")) == "Paris"


def test_pdf_pages_and_title_and_corrupt_pdf():
    doc = extract(Path("r.pdf"), make_pdf(["First page words", "Second page words"], title="Report"))
    assert doc.title == "Report"
    assert "First page words" in doc.text and "Second page words" in doc.text
    assert doc.heading_at(doc.text.index("Second")) == "Report (page 2)"
    with pytest.raises(Unreadable, match="PDF"):
        extract(Path("bad.pdf"), b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >>\ngarbage")


@pytest.mark.parametrize("data,reason", [(b"caf\xe9\n", "UTF-8"), (b"a\x00b", "binary")])
def test_undecodable_text_is_unreadable(data, reason):
    with pytest.raises(Unreadable, match=reason):
        extract(Path("x.txt"), data)


def test_chunks_cover_the_text_with_exact_line_ranges():
    lines = [f"Line {i}: " + "word " * (i % 7 + 3) for i in range(120)]
    text = "# Top\n\n" + "\n".join(lines[:60]) + "\n\n## Second\n\n" + "\n".join(lines[60:]) + "\n"
    doc = extract(Path("x.md"), text.encode())
    chunks = split(doc, "/d/x.md", "md", 300, 50)
    file_lines = text.split("\n")
    assert len(chunks) > 5
    for c in chunks:
        assert len(c.text) <= 300 + 300 // 4
        got = "\n".join(file_lines[c.line_start - 1 : c.line_end])
        assert c.text in got, (c.line_start, c.line_end)
        assert c.text.split("\n")[0] in file_lines[c.line_start - 1]
    assert chunks[0].title == "Top" and chunks[0].text.startswith("# Top\n")  # the heading is not alone
    assert chunks[-1].title == "Top > Second"
    assert "Line 119" in chunks[-1].text
    # overlap: neighbouring chunks share text
    assert any(a.text[-20:] in b.text for a, b in zip(chunks, chunks[1:]))


def test_chunk_sizes_are_checked():
    doc = extract(Path("x.txt"), b"hello")
    with pytest.raises(RetrievalConfigError):
        split(doc, "/x.txt", "txt", 10, 0)
    with pytest.raises(RetrievalConfigError):
        split(doc, "/x.txt", "txt", 200, 150)
    assert [c.text for c in split(doc, "/x.txt", "txt", 200, 20)] == ["hello"]


# --- manifest logic ----------------------------------------------------------------------


def entry(sha: str, *chunks: tuple[str, int, int, str]) -> FileEntry:
    return FileEntry(sha, "md", "800/100", list(chunks))


def test_plan_new_changed_deleted_and_unchanged_chunks(tmp_path):
    m = Manifest(tmp_path / "m.json")
    up = m.plan({"/a": entry("1", ("x", 1, 2, "A"), ("y", 3, 4, "A"))})
    assert up.write == {"x": "/a", "y": "/a"} and not up.delete and not up.repoint
    m.commit(up)
    # y unchanged (same lines and title): not rewritten; x moved lines: rewritten; z new; none gone
    up = m.plan({"/a": entry("2", ("z", 1, 1, "A"), ("x", 2, 3, "A"), ("y", 3, 4, "A"))})
    assert up.write == {"z": "/a", "x": "/a"} and not up.delete
    m.commit(up)
    up = m.plan({"/a": None})
    assert up.delete == {"x", "y", "z"} and not up.write
    m.commit(up)
    assert m.files == {} and m.owners == {}


def test_identical_chunks_are_stored_once_and_repointed_when_the_owner_goes(tmp_path):
    m = Manifest(tmp_path / "m.json")
    m.commit(m.plan({"/a": entry("1", ("s", 1, 2, "A")), "/b": entry("2", ("s", 5, 6, "B"), ("t", 7, 8, "B"))}))
    assert m.owners == {"s": "/a", "t": "/b"}
    up = m.plan({"/a": None})
    assert up.repoint == {"s": "/b"} and not up.delete and not up.write
    m.commit(up)
    assert m.owners == {"s": "/b", "t": "/b"}
    # the new owner is in the same batch: written from the batch, not re-pointed
    m.commit(m.plan({"/c": entry("3", ("t", 1, 1, "C"))}))
    up = m.plan({"/b": None, "/c": entry("4", ("t", 2, 2, "C"))})
    assert up.write == {"t": "/c"} and up.delete == {"s"}


def test_manifest_round_trip_and_damage(tmp_path):
    m = Manifest(tmp_path / "m.json", {"embedder": "fake", "dim": 16})
    m.commit(m.plan({"/a": entry("1", ("x", 1, 2, "A ü"))}))
    again = Manifest.load(tmp_path / "m.json")
    assert again.files == m.files and again.owners == m.owners and again.settings == m.settings
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed away
    (tmp_path / "m.json").write_text('{"format": "tooltoken-manifest/1", "files": ')
    with pytest.raises(StoreError, match="damaged"):
        Manifest.load(tmp_path / "m.json")
    assert Manifest.load(tmp_path / "missing.json").files == {}


def test_recovery_undoes_a_pending_batch(tmp_path):
    m = Manifest(tmp_path / "m.json")
    m.commit(m.plan({"/a": entry("1", ("s", 1, 2, "A"), ("old", 3, 3, "A")), "/b": entry("2", ("s", 5, 6, "B"))}))
    up = m.plan({"/a": entry("9", ("new", 1, 1, "A"))})
    assert up.write == {"new": "/a"} and up.repoint == {"s": "/b"} and up.delete == {"old"}
    m.begin(up)  # ... and the process dies before commit
    again = Manifest.load(tmp_path / "m.json")
    undo = again.recovery()
    assert undo is not None
    assert undo.files == {"/a": None}
    assert undo.repoint == {"s": "/b"} and undo.delete == {"old", "new"}
    again.commit(undo)
    assert set(again.files) == {"/b"} and again.owners == {"s": "/b"} and again.pending is None


# --- the ingester, on the fake store -----------------------------------------------------


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())


def test_ingest_is_incremental_and_skips_bad_files(tmp_path):
    docs = tmp_path / "docs"
    write(docs, {"a.md": "# A\n\nalpha text\n", "b.txt": "beta text\n", "sub/c.rst": "C\n=\n\ngamma\n",
                 "bad.pdf": b"%PDF-1.4 nope", "latin.txt": b"caf\xe9", ".hidden.md": "# no\n", "x.bin": b"\x00"})
    store, emb = FakeStore(tmp_path), FakeEmbedder()
    seen: list[IngestProgress] = []
    r = ingest([docs], store, emb, progress=seen.append)
    assert (r.files_new, r.files_changed, r.files_unchanged, r.files_deleted) == (3, 0, 0, 0)
    assert sorted(Path(s.path).name for s in r.skipped) == ["bad.pdf", "latin.txt"]
    assert seen[-1].stage == "done" and seen[-1].chunks_done == seen[-1].chunks_total == 3
    assert {p.stage for p in seen} >= {"scan", "read", "embed", "done"}
    agree(store, store.manifest_path)
    emb.seen.clear()
    r = ingest([docs], store, emb)
    assert (r.files_new, r.files_unchanged, r.chunks_embedded) == (0, 3, 0) and emb.seen == []
    (docs / "b.txt").write_text("beta text, changed\n")
    (docs / "sub" / "c.rst").unlink()
    r = ingest([docs], store, emb)
    assert (r.files_changed, r.files_deleted, r.chunks_embedded, r.chunks_deleted) == (1, 1, 1, 2)
    assert emb.seen == ["beta text, changed"]
    agree(store, store.manifest_path)
    assert sorted(Path(c.source).name for c, _ in store.rows.values()) == ["a.md", "b.txt"]


def test_ingest_of_one_folder_leaves_other_folders_alone(tmp_path):
    write(tmp_path / "one", {"a.txt": "one\n"})
    write(tmp_path / "two", {"b.txt": "two\n"})
    store = FakeStore(tmp_path)
    ingest([tmp_path / "one", tmp_path / "two"], store, FakeEmbedder())
    (tmp_path / "two" / "b.txt").unlink()
    r = ingest([tmp_path / "one"], store, FakeEmbedder())
    assert r.files_deleted == 0 and len(store.rows) == 2  # two/ was not asked about
    r = ingest([tmp_path / "two"], store, FakeEmbedder())
    assert r.files_deleted == 1 and len(store.rows) == 1


def test_identical_files_are_embedded_and_stored_once(tmp_path):
    write(tmp_path / "d", {"a.txt": "same words\n", "b.txt": "same words\n"})
    store, emb = FakeStore(tmp_path), FakeEmbedder()
    ingest([tmp_path / "d"], store, emb)
    assert emb.seen == ["same words"] and len(store.rows) == 1
    (tmp_path / "d" / "a.txt").unlink()
    ingest([tmp_path / "d"], store, emb)
    (chunk, _), = store.rows.values()
    assert chunk.source.endswith("b.txt")
    agree(store, store.manifest_path)


def test_a_repeated_chunk_in_one_file_points_at_its_first_place(tmp_path):
    same, other = "This paragraph repeats in the file exactly.", "A different paragraph stands between them!"
    write(tmp_path / "d", {"a.txt": f"{same}\n\n{other}\n\n{same}\n"})
    store = FakeStore(tmp_path)
    ingest([tmp_path / "d"], store, FakeEmbedder(), chunk_size=50, chunk_overlap=0)
    agree(store, store.manifest_path)
    assert len(store.rows) == 2
    (first,) = [c for c, _ in store.rows.values() if c.text == same]
    assert first.line_start == 1


def test_crash_between_store_write_and_commit_is_rolled_back(tmp_path):
    files = {f"f{i:02d}.txt": f"file number {i} says {'hello ' * i}\n" for i in range(12)}
    write(tmp_path / "d", files)
    store = FakeStore(tmp_path)
    store.fail_after = 2  # the third batch dies after begin(), before commit()
    with pytest.raises(RuntimeError, match="simulated crash"):
        ingest([tmp_path / "d"], store, FakeEmbedder(), batch_chunks=2)
    assert Manifest.load(store.manifest_path).pending is not None
    store.fail_after = None
    (tmp_path / "d" / "f00.txt").unlink()  # and a file goes away meanwhile
    r = ingest([tmp_path / "d"], store, FakeEmbedder(), batch_chunks=2)
    assert r.recovered and (r.files_deleted, r.files_unchanged, r.files_new) == (1, 3, 8)
    agree(store, store.manifest_path)
    assert len(Manifest.load(store.manifest_path).files) == 11


def test_changing_the_embedder_is_refused_and_chunking_change_reindexes(tmp_path):
    write(tmp_path / "d", {"a.txt": "words " * 100})
    store = FakeStore(tmp_path)
    ingest([tmp_path / "d"], store, FakeEmbedder())
    other = FakeEmbedder()
    other.name = "other"
    with pytest.raises(RetrievalConfigError, match="embedder"):
        ingest([tmp_path / "d"], store, other)
    r = ingest([tmp_path / "d"], store, FakeEmbedder(), chunk_size=200, chunk_overlap=20)
    assert r.files_changed == 1 and len(store.rows) > 1
    agree(store, store.manifest_path)


def test_a_file_over_the_size_limit_is_skipped_unread_and_keeps_its_chunks(tmp_path):
    from tooltoken.retrieval._ingest import MAX_FILE_BYTES

    docs = tmp_path / "docs"
    write(docs, {"small.md": "# S\n\nsmall text\n", "big.txt": "big text\n"})
    store, emb = FakeStore(tmp_path), FakeEmbedder()
    ingest([docs], store, emb)
    with open(docs / "big.txt", "ab") as f:  # now 50 MB (sparse: no disk used)
        f.truncate(50 * 1024 * 1024)
    r = ingest([docs], store, emb)
    [skipped] = r.skipped
    assert Path(skipped.path).name == "big.txt" and "larger than 25.0 MiB (50.0 MiB)" in skipped.reason
    assert (r.files_unchanged, r.files_deleted, r.chunks_deleted) == (1, 0, 0)  # its old chunks stay
    assert sorted(Path(c.source).name for c, _ in store.rows.values()) == ["big.txt", "small.md"]
    assert MAX_FILE_BYTES == 25 * 1024 * 1024
    r = ingest([docs], store, emb, max_file_bytes=10)  # any limit: small.md (unchanged) is over it too
    assert sorted(Path(s.path).name for s in r.skipped) == ["big.txt", "small.md"]


def test_missing_path_is_an_error_not_a_mass_delete(tmp_path):
    with pytest.raises(RetrievalConfigError, match="does not exist"):
        ingest([tmp_path / "nope"], FakeStore(tmp_path), FakeEmbedder())


def test_manifest_file_is_plain_json(tmp_path):
    write(tmp_path / "d", {"a.txt": "x\n"})
    store = FakeStore(tmp_path)
    ingest([tmp_path / "d"], store, FakeEmbedder())
    data = json.loads(store.manifest_path.read_text())
    assert data["format"] == "tooltoken-manifest/1" and data["settings"] == {"embedder": "fake", "dim": 16}
