"""Finer categories learned on training prompts only: k-means clusters of prompt embeddings (the paper's k-means
variant), with the number of clusters - or the router's own categories - chosen by an inner cross-validation.

Why: a router's topic categories need not be where experts' quality differs. Clusters of the prompts' embeddings
may be; but how many clusters is worth their noise depends on the data, so it is chosen per outer fold by the
APGR of an inner K-fold held-out evaluation on that fold's training prompts. The outer held-out prompts are
never seen by any choice: their categories are only predicted (nearest centroid) after the choice is made.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans

from .evaluation import evaluate
from .tables import ModelInfo

ROUTER = "router"


class ClusterCategoriser:
    """A Categoriser (see evaluation.evaluate): candidates are the router's categories (`base`, if given) and
    k-means with each k in `ks` on `embeddings`; `chosen` records each call's winner and inner APGRs."""

    def __init__(self, embeddings, scores, models: Sequence[ModelInfo], *, cost: str, base: Sequence[str] | None = None,
                 ks: Sequence[int] = (2, 3, 5, 8, 12), inner_folds: int = 5, seed: int = 0):
        self.embeddings = np.asarray(embeddings, dtype=float)
        self.scores = np.asarray(scores, dtype=float)
        self.models, self.cost, self.inner_folds, self.seed = list(models), cost, inner_folds, seed
        self.base = None if base is None else np.asarray(base, dtype=str)
        self.candidates = ([ROUTER] if base is not None else []) + [int(k) for k in ks]
        self.chosen: list[dict] = []

    def _fit(self, candidate, train: np.ndarray, held: np.ndarray):
        if candidate == ROUTER:
            return self.base[train], self.base[held]
        km = KMeans(min(candidate, len(train)), n_init=10, random_state=self.seed).fit(self.embeddings[train])
        return km.labels_.astype(str), km.predict(self.embeddings[held]).astype(str)

    def _inner_apgr(self, candidate, train: np.ndarray) -> float:
        ev = evaluate(self.scores[train], lambda tr, he: self._fit(candidate, train[tr], train[he]), self.models,
                      cost=self.cost, folds=self.inner_folds, seed=self.seed)
        return ev.apgr

    def __call__(self, train: np.ndarray, held: np.ndarray):
        inner = {str(c): self._inner_apgr(c, train) for c in self.candidates}
        best = max(self.candidates, key=lambda c: inner[str(c)])  # first wins ties: the router, then fewer clusters
        self.chosen.append({"chosen": str(best), "inner_apgr": inner})
        return self._fit(best, train, held)
