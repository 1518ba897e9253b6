"""The router: which path a question takes, decided before the answer (the fast tier).

    >>> route = default_router()
    >>> route("A train leaves at 9:03 and the trip takes 2h 35m. When does it arrive?")
    'math'
    >>> route("Who painted the ceiling of the Sistine Chapel?")
    'lookup'
    >>> route("Write a haiku about rain.")
    'direct'

Three routes (evals/data/ROUTES.md has the labelling rules):
- "math": the answer is computed from numbers the question gives;
- "lookup": a fact about the world to look up (who, what, when, where, which ...);
- "direct": a task the model does by itself (write, translate, code, explain, chat).

Two routers, chosen by measurement (docs/results.md, "The router"; `tooltoken bench router`):
- `EmbeddingRouter`, the default when the embedding extra is installed: the question's
  all-MiniLM-L6-v2 embedding and its character n-grams (`GRAMS`: what an English embedder
  misses in "wie viel" or "15 %"), scored by a linear classifier (multinomial logistic
  regression) fitted on evals/data/routes.jsonl; its weights ship in agent/router_weights.json and
  `tooltoken bench router --fit` writes them again. The embedder runs in numpy
  (retrieval/_minilm.py: no torch, 0.1 s to load); it loads once per process, in a background
  thread from the Agent's construction (`warm`), and only when some tool makes a math or
  lookup path (else no question is routed).
- `RuleRouter`: the question's words alone (numbers that are quantities, arithmetic, quantity
  words, question words, the imperative verbs of tasks); no dependency, microseconds. It was
  written on the labelled set and generalises worse to new questions.
Any callable `(question) -> Route` can replace them (`Agent(router=...)`).

Not handled here: what each path does (agent/_policy.py).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol


__all__ = ["ROUTES", "WEIGHTS", "EmbeddingRouter", "Route", "Router", "RuleRouter", "default_router", "fit_weights"]

Route = Literal["math", "lookup", "direct"]
ROUTES: tuple[Route, ...] = ("math", "lookup", "direct")


class Router(Protocol):
    def __call__(self, question: str) -> Route: ...


def __getattr__(name: str) -> Any:
    if name == "RuleRouter":  # compiled on first use (agent/_router_rules.py)
        from ._router_rules import RuleRouter

        return RuleRouter
    raise AttributeError(name)


WEIGHTS = Path(__file__).with_name("router_weights.json")


class EmbeddingRouter:
    """A linear classifier over the question's sentence embedding (see the module docstring).
    `embedder`: anything with `embed(texts) -> array` of unit vectors (default: all-MiniLM-L6-v2
    through tooltoken.retrieval); `weights`: the JSON that `fit_weights` writes."""

    def __init__(self, embedder: Any = None, weights: Path | dict[str, Any] = WEIGHTS) -> None:
        data = weights if isinstance(weights, dict) else json.loads(Path(weights).read_text(encoding="utf-8"))
        self.routes: list[Route] = list(data["routes"])
        self.w: list[list[float]] = data["w"]  # one row of len(dim) per route
        self.b: list[float] = data["b"]
        self.model = data.get("model", "")
        self.grams: dict[str, Any] | None = data.get("grams")
        self._embedder = embedder
        self._lock = threading.Lock()

    def warm(self) -> None:
        """Load the embedder now (the Agent calls this in a background thread)."""
        self.embedder()

    def embedder(self) -> Any:
        with self._lock:
            if self._embedder is None:
                from tooltoken.retrieval import default_embedder

                self._embedder = default_embedder()
            return self._embedder

    def scores(self, question: str) -> dict[Route, float]:
        import numpy as np

        text = " ".join(str(question).split())[:2000] or "(empty)"
        x = np.asarray(self.embedder().embed([text]), dtype=np.float64)[0]
        if self.grams:
            x = np.concatenate([x, _gram_features([text], self.grams)[0]])
        logits = np.asarray(self.w) @ x + np.asarray(self.b)
        return dict(zip(self.routes, map(float, logits)))

    def __call__(self, question: str) -> Route:
        if not str(question).strip():
            return "direct"
        scores = self.scores(question)
        return max(scores, key=scores.__getitem__)


_SHARED: list[EmbeddingRouter] = []
_SHARED_LOCK = threading.Lock()


def default_router() -> Router:
    """`EmbeddingRouter` when the embedding extra is installed (one per process: every Agent
    shares its embedder), else `RuleRouter`."""
    with _SHARED_LOCK:
        if _SHARED:
            return _SHARED[0]
    try:
        import importlib.util

        if not all(importlib.util.find_spec(m) for m in ("tokenizers", "safetensors")):
            raise ImportError("the embed extra is not installed")
        from tooltoken.retrieval import default_model_path

        default_model_path()
    except Exception:  # noqa: BLE001 -- any missing piece of the extra: the rules decide
        return _rules()
    with _SHARED_LOCK:
        if not _SHARED:
            try:
                _SHARED.append(EmbeddingRouter())
            except (OSError, ValueError, KeyError):  # weights missing or unreadable: the rules decide
                return _rules()
        return _SHARED[0]


def _rules() -> Router:
    from ._router_rules import RuleRouter

    return RuleRouter()


def fit_weights(vectors: Any, labels: Sequence[str], *, texts: Sequence[str] | None = None, c: float = 10.0,
                steps: int = 3000, model: str = "", balanced: bool = True) -> dict[str, Any]:
    """Multinomial logistic regression with an L2 penalty (scikit-learn's objective at C=`c`),
    fitted by gradient descent on unit `vectors` (with `texts`: and on their character n-grams,
    `GRAMS`); the JSON-able weights EmbeddingRouter reads."""
    import numpy as np

    x = np.asarray(vectors, dtype=np.float64)
    grams = None
    if texts is not None:
        counts = _gram_counts([" ".join(str(t).split()) for t in texts], GRAMS["dim"], GRAMS["n"])
        idf = np.log((1 + len(counts)) / (1 + (counts > 0).sum(axis=0))) + 1  # scikit-learn's smooth idf
        grams = {**GRAMS, "idf": [round(float(v), 6) for v in idf]}
        x = np.hstack([x, _gram_features(list(texts), grams)])
    y = np.stack([np.asarray(labels) == r for r in ROUTES], axis=1).astype(np.float64)
    # each route weighs the same whatever its share of the questions (scikit-learn's "balanced")
    share = y.sum(axis=0)
    weight = (y @ np.where(share > 0, len(y) / (len(ROUTES) * np.maximum(share, 1)), 0.0))[:, None] if balanced else 1.0
    w, b = np.zeros((len(ROUTES), x.shape[1])), np.zeros(len(ROUTES))
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    for _ in range(steps):  # Nesterov momentum on a smooth convex loss
        lw, lb = w + 0.9 * vw, b + 0.9 * vb
        z = x @ lw.T + lb
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        gw = (weight * (p - y)).T @ x + lw / c
        gb = (weight * (p - y)).sum(axis=0)
        vw, vb = 0.9 * vw - 0.02 * gw, 0.9 * vb - 0.02 * gb
        w, b = w + vw, b + vb
    return {"routes": list(ROUTES), "model": model, "c": c, "balanced": balanced, **({"grams": grams} if grams else {}),
            "w": [[round(float(v), 6) for v in row] for row in w], "b": [round(float(v), 6) for v in b]}


#: The character n-grams beside the embedding: 2- to 4-grams of each word (padded with a space
#: each side, lower-cased, every digit read as 0: a number's shape, not its value), hashed
#: (crc32) into `dim` counts, weighed by sublinear tf-idf, unit length, times `alpha`. They see
#: what all-MiniLM-L6-v2 (English) misses: "wie viel", "combien", "15 %", "14:20". Chosen by
#: cross-validation on routes.jsonl (docs/results.md, "The router").
GRAMS: dict[str, Any] = {"n": [2, 4], "dim": 1024, "alpha": 1.0}
_DIGIT = re.compile(r"\d")


def _gram_counts(texts: Sequence[str], dim: int, n: Sequence[int]) -> Any:
    import zlib

    import numpy as np

    out = np.zeros((len(texts), dim))
    for row, text in enumerate(texts):
        for word in _DIGIT.sub("0", text.lower()).split():
            padded = f" {word} "
            for size in range(n[0], n[1] + 1):
                for at in range(max(1, len(padded) - size + 1)):
                    out[row, zlib.crc32(padded[at:at + size].encode("utf-8")) % dim] += 1
    return out


def _gram_features(texts: Sequence[str], grams: dict[str, Any]) -> Any:
    import numpy as np

    counts = _gram_counts([" ".join(str(t).split())[:2000] for t in texts], grams["dim"], grams["n"])
    tfidf = np.where(counts > 0, 1 + np.log(np.maximum(counts, 1)), 0.0) * np.asarray(grams["idf"])
    norm = np.linalg.norm(tfidf, axis=1, keepdims=True)
    return grams["alpha"] * tfidf / np.where(norm > 0, norm, 1.0)
