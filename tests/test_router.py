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


class _Fixed:
    def __init__(self, table):
        self.table = table

    def embed(self, texts):
        import numpy as np

        return np.stack([self.table[t] for t in texts])


@pytest.mark.integration
def test_embedding_router_floor_on_the_real_embedder():
    router = EmbeddingRouter()
    assert accuracy(router, HELDOUT) >= 0.95  # 172/180 measured
    assert router("") == "direct" and router("x" * 100_000) in ROUTES
