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
KS = (2, 3, 5, 8, 12)
FINE_KS = (2, 3, 5, 8, 12, 20, 30)  # with shrinkage, more clusters may pay: fixed before any result was seen
SUB_KS = (2, 3)  # each router category cut into this many k-means sub-clusters (fixed likewise)


class ClusterCategoriser:
    """A Categoriser (see evaluation.evaluate): candidates are the router's categories (`base`, if given) and
    k-means with each k in `ks` on `embeddings`, and each router category cut into k sub-clusters for each k in
    `sub_ks` ("router*k"); `chosen` records each call's winner and inner APGRs. `shrinkage`, `splits` and `keys`
    go to the inner evaluations, so each candidate is judged with the method it will be used with."""

    def __init__(self, embeddings, scores, models: Sequence[ModelInfo], *, cost: str, base: Sequence[str] | None = None,
                 ks: Sequence[int] = KS, sub_ks: Sequence[int] = (), inner_folds: int = 5, inner_repeats: int = 1,
                 seed: int = 0, shrinkage=0.0, splits: bool = False, keys=None):
        self.embeddings = np.asarray(embeddings, dtype=float)
        self.scores = np.asarray(scores, dtype=float)
        self.models, self.cost, self.inner_folds, self.seed = list(models), cost, inner_folds, seed
        self.inner_repeats = inner_repeats  # inner cross-validations (differently cut) averaged per candidate
        self.shrinkage, self.splits = shrinkage, splits
        self.keys = None if keys is None else np.asarray(keys, dtype=float)
        self.base = None if base is None else np.asarray(base, dtype=str)
        self.candidates = ([ROUTER] if base is not None else []) + [int(k) for k in ks]
        self.candidates += [f"{ROUTER}*{k}" for k in sub_ks] if base is not None else []
        self.chosen: list[dict] = []

    def _fit(self, candidate, train: np.ndarray, held: np.ndarray):
        if candidate == ROUTER:
            return self.base[train], self.base[held]
        if isinstance(candidate, str):
            return self._within(int(candidate.split("*")[1]), train, held)
        km = KMeans(min(candidate, len(train)), n_init=10, random_state=self.seed).fit(self.embeddings[train])
        return km.labels_.astype(str), km.predict(self.embeddings[held]).astype(str)

    def _within(self, k: int, train: np.ndarray, held: np.ndarray):
        """Router categories cut into k sub-clusters each (a category with under 2k training prompts stays whole;
        held-out prompts of a category unseen in training keep its name)."""
        train_labels, held_labels = self.base[train].astype(object), self.base[held].astype(object)
        for cat in np.unique(self.base[train]):
            tr, he = self.base[train] == cat, self.base[held] == cat
            if tr.sum() < 2 * k:
                continue
            km = KMeans(k, n_init=10, random_state=self.seed).fit(self.embeddings[train[tr]])
            train_labels[tr] = [f"{cat}/{j}" for j in km.labels_]
            if he.any():
                held_labels[he] = [f"{cat}/{j}" for j in km.predict(self.embeddings[held[he]])]
        return train_labels.astype(str), held_labels.astype(str)

    def _inner_apgr(self, candidate, train: np.ndarray) -> float:
        return float(np.mean([
            evaluate(self.scores[train], lambda tr, he: self._fit(candidate, train[tr], train[he]), self.models,
                     cost=self.cost, folds=self.inner_folds, seed=self.seed + r, shrinkage=self.shrinkage,
                     splits=self.splits, keys=None if self.keys is None else self.keys[train]).apgr
            for r in range(self.inner_repeats)]))

    def __call__(self, train: np.ndarray, held: np.ndarray):
        inner = {str(c): self._inner_apgr(c, train) for c in self.candidates}
        best = max(self.candidates, key=lambda c: inner[str(c)])  # first wins ties: the router, then fewer clusters
        self.chosen.append({"chosen": str(best), "inner_apgr": inner})
        return self._fit(best, train, held)
