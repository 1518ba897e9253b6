"""Integration: SIGKILL in the middle of indexing, then a re-run (real Milvus Lite, real MiniLM)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")
pytest.importorskip("sentence_transformers")

from tooltoken.retrieval import Manifest, MilvusStore, Retriever, SentenceTransformerEmbedder, ingest  # noqa: E402

pytestmark = pytest.mark.integration

TOPICS = "volcanoes glaciers deserts rainforests coral reefs tundra savannas wetlands canyons islands caves rivers".split()


def corpus(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        (root / f"note{i:02d}.md").write_text(
            f"# Note {i} on {topic}\n\nThis note, number {i}, is about {topic}.\n\n"
            f"## Details\n\nFact {i}: {topic} cover part of the Earth and change slowly over time.\n"
        )
    return root


def agreement(index: Path) -> Manifest:
    with MilvusStore(index) as store:
        m = Manifest.load(store.manifest_path)
        assert m.pending is None
        assert store.ids() == {c[0] for e in m.files.values() for c in e.chunks} == set(m.owners)
    return m


def run(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, *args], env=env, **kw)


def test_sigkill_between_store_write_and_manifest_commit(tmp_path):
    docs, index = corpus(tmp_path / "docs", 10), tmp_path / "index"
    script = textwrap.dedent(
        """
        import sys, time
        from tooltoken.retrieval import MilvusStore, SentenceTransformerEmbedder, ingest

        class Stalling(MilvusStore):
            calls = 0

            def upsert(self, chunks, vectors):
                super().upsert(chunks, vectors)  # acknowledged by Milvus Lite ...
                Stalling.calls += 1
                if Stalling.calls == 3:  # ... but the manifest is not committed yet
                    print("WROTE", flush=True)
                    time.sleep(600)

        ingest([sys.argv[1]], Stalling(sys.argv[2]), SentenceTransformerEmbedder(), batch_chunks=2)
        """
    )
    proc = run(["-c", script, str(docs), str(index)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == "WROTE", "the indexing subprocess died before its third batch"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    pending = Manifest.load(index / "milvus.db.chunks.manifest.json")
    assert pending.pending is not None and len(pending.files) == 4  # two batches of two files committed
    with MilvusStore(index) as store:  # the kernel dropped the dead process' lock
        assert len(store.ids()) > sum(len(e.chunks) for e in pending.files.values())  # rows of the pending batch
        embedder = SentenceTransformerEmbedder()
        report = ingest([docs], store, embedder, batch_chunks=2)
        assert report.recovered and report.files_unchanged == 4 and report.files_new == 6
        top = Retriever(store, embedder).search("note number 7 about tundra", 1)[0].chunk
        assert Path(top.source).name == "note07.md"
    assert len(agreement(index).files) == 10


def test_sigkill_of_the_index_command_then_rerun(tmp_path):
    docs, index = corpus(tmp_path / "docs", 24), tmp_path / "index"
    cli = ["-c", "from tooltoken.app.cli import main; main()", "index", str(docs), "--db", str(index), "--chunk-size", "120", "--chunk-overlap", "10"]
    proc = run(cli, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not (index / "milvus.db").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # the model is loaded and the store open: embedding is under way
        assert proc.poll() is None, "the index command finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    again = run(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert "24 new" in out or "unchanged" in out, out
    m = agreement(index)
    assert len(m.files) == 24
