"""The router on labelled questions (evals/data/routes*.jsonl), with accuracy floors and no timing.

The published figures (`tooltoken bench router`) are on the 173 held-out questions; the floors
here hold them against regressions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tooltoken._router import ROUTES, EmbeddingRouter, RuleRouter, fit_weights

DATA = Path(__file__).resolve().parent.parent / "evals" / "data"
HELDOUT = [json.loads(line) for line in (DATA / "routes_heldout.jsonl").read_text().splitlines() if line.strip()]
LABELLED = [json.loads(line) for line in (DATA / "routes.jsonl").read_text().splitlines() if line.strip()]


def accuracy(router, rows) -> float:
    return sum(router(r["question"]) == r["route"] for r in rows) / len(rows)


@pytest.mark.unit
def test_the_sets_are_labelled_and_balanced():
    for rows in (LABELLED, HELDOUT):
        assert {r["route"] for r in rows} == set(ROUTES)
        assert min(sum(r["route"] == route for r in rows) for route in ROUTES) >= 57
    assert not {r["question"].lower() for r in LABELLED} & {r["question"].lower() for r in HELDOUT}


@pytest.mark.unit
def test_rule_router_floor():
    assert accuracy(RuleRouter(), HELDOUT) >= 0.84  # 152/180 measured


@pytest.mark.unit
def test_fit_weights_separates_what_it_is_given():
    import numpy as np

    rng = np.random.default_rng(0)
    centres = np.eye(3, 8)
    x = np.concatenate([c + 0.1 * rng.standard_normal((20, 8)) for c in centres])
    labels = [r for r in ROUTES for _ in range(20)]
    router = EmbeddingRouter(embedder=_Fixed(dict(zip(map(str, range(60)), x))), weights=fit_weights(x, labels))
    assert sum(router(str(i)) == labels[i] for i in range(60)) == 60


@pytest.mark.unit
def test_character_ngrams_separate_what_the_embedding_cannot():
    """The same embedding for every question: only the n-grams can tell the routes apart."""
    import numpy as np

    from tooltoken._router import _gram_features

    texts = [f"wie viel sind {i} mal {i + 3}?" for i in range(20)] + [f"wer schrieb das Buch Nummer {i}?" for i in
             range(20)] + [f"schreib ein Gedicht Nummer {i}" for i in range(20)]
    labels = [r for r in ROUTES for _ in range(20)]
    same = np.tile(np.eye(1, 8), (60, 1))
    weights = fit_weights(same, labels, texts=texts)
    table = {" ".join(t.split()): same[0] for t in [*texts, "wie viel sind 7 mal 9?"]}
    router = EmbeddingRouter(embedder=_Fixed(table), weights=weights)
    assert accuracy(router, [{"question": t, "route": r} for t, r in zip(texts, labels)]) == 1.0
    assert router("wie viel sind 7 mal 9?") == "math"
    # digits are read as 0 (a number's shape), whitespace and case do not count, rows are unit length
    grams = weights["grams"]
    a, b, c = _gram_features(["Wie  viel: 12 %", "wie viel: 57 %", "wie viel: 5 %"], grams)
    assert np.allclose(a, b) and not np.allclose(a, c)
    assert np.isclose(np.linalg.norm(a), grams["alpha"])
    # weights fitted without n-grams still load and route on the embedding alone
    plain = EmbeddingRouter(embedder=_Fixed({"x": np.eye(1, 8)[0]}), weights=fit_weights(same, labels))
    assert plain.grams is None and plain("x") in ROUTES


class _Fixed:
    def __init__(self, table):
        self.table = table

    def embed(self, texts):
        import numpy as np

        return np.stack([self.table[t] for t in texts])


@pytest.mark.integration
def test_embedding_router_floor_on_the_real_embedder():
    router = EmbeddingRouter()
    assert accuracy(router, HELDOUT) >= 0.95  # 165/173 measured
    assert router("") == "direct" and router("x" * 100_000) in ROUTES
