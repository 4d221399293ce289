"""Finer categories learned on training prompts only: k-means clusters of prompt embeddings (the paper's k-means
variant) or of predicted expert scores (predicted.py), with the kind and number of clusters - or the router's own
categories - chosen by an inner cross-validation.

Why: a router's topic categories need not be where experts' quality differs. Clusters of the prompts' embeddings
may be, or clusters of what a model of the training judgments predicts; but which grouping, and how many groups,
is worth its noise depends on the data (a few hundred judged prompts or 14,000), so it is chosen per outer fold by
the APGR of an inner K-fold held-out evaluation on that fold's training prompts. The outer held-out prompts are
never seen by any choice: their categories are only predicted (nearest centroid) after the choice is made.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from .evaluation import evaluate
from .predicted import ScorePredictor
from .tables import ModelInfo

ROUTER = "router"
PREDICTED = "predicted:"
KS = (2, 3, 5, 8, 12)
FINE_KS = (2, 3, 5, 8, 12, 20, 30)  # with shrinkage, more clusters may pay: fixed before any result was seen
SUB_KS = (2, 3)  # each router category cut into this many k-means sub-clusters (fixed likewise)
PREDICTED_KS = (3, 5, 10, 20)  # k-means k on predicted scores (predicted.py), fixed before any result was seen


def kmeans(k: int, points: np.ndarray, seed: int) -> KMeans:
    """k-means (k capped at the number of points) on one thread: these fits run by the thousand on small inputs,
    where OpenMP threads cost more than they save (4x slower on two shared cores); same labels either way."""
    with threadpool_limits(limits=1, user_api="openmp"):
        return KMeans(min(k, len(points)), n_init=10, random_state=seed).fit(points)


def cluster_predictions(train_pred: np.ndarray, held_pred: np.ndarray, k: int, seed: int = 0):
    """Category labels (train, held): k-means on predicted scores relative to each prompt's mean prediction (who
    is better, and by how much; not how hard the prompt is for everyone)."""
    relative = lambda p: p - p.mean(axis=1, keepdims=True)  # noqa: E731
    km = kmeans(k, relative(train_pred), seed)
    return km.labels_.astype(str), km.predict(relative(held_pred)).astype(str)


class ClusterCategoriser:
    """A Categoriser (see evaluation.evaluate): candidates are the router's categories (`base`, if given) and
    k-means with each k in `ks` on `embeddings`, each router category cut into k sub-clusters for each k in
    `sub_ks` ("router*k"), and k-means with each k in `predicted_ks` on `predictor`'s predicted scores
    ("predicted:k"); `chosen` records each call's winner and inner APGRs. `shrinkage`, `splits` and `keys` go to
    the inner evaluations, so each candidate is judged with the method it will be used with.

    The predictor is fitted once per call on its training prompts: the inner evaluations group inner-training and
    inner-held-out prompts alike by their out-of-fold predictions (all are training prompts of this call), the
    final grouping puts the held-out prompts where a fit on all training prompts predicts them."""

    def __init__(self, embeddings, scores, models: Sequence[ModelInfo], *, cost: str, base: Sequence[str] | None = None,
                 ks: Sequence[int] = KS, sub_ks: Sequence[int] = (), predictor: ScorePredictor | None = None,
                 predicted_ks: Sequence[int] = (), inner_folds: int = 5, inner_repeats: int = 1, seed: int = 0,
                 shrinkage=0.0, splits: bool = False, keys=None):
        self.embeddings = np.asarray(embeddings, dtype=float)
        self.scores = np.asarray(scores, dtype=float)
        self.models, self.cost, self.inner_folds, self.seed = list(models), cost, inner_folds, seed
        self.inner_repeats = inner_repeats  # inner cross-validations (differently cut) averaged per candidate
        self.shrinkage, self.splits = shrinkage, splits
        self.keys = None if keys is None else np.asarray(keys, dtype=float)
        self.base = None if base is None else np.asarray(base, dtype=str)
        self.candidates = ([ROUTER] if base is not None else []) + [int(k) for k in ks]
        self.candidates += [f"{ROUTER}*{k}" for k in sub_ks] if base is not None else []
        self.predictor = predictor
        self.candidates += [f"{PREDICTED}{k}" for k in predicted_ks] if predictor is not None else []
        self.predicted = None  # this call's predictions per prompt: out-of-fold for training prompts
        self.chosen: list[dict] = []

    def _fit(self, candidate, train: np.ndarray, held: np.ndarray):
        if candidate == ROUTER:
            return self.base[train], self.base[held]
        if isinstance(candidate, str) and candidate.startswith(PREDICTED):
            k = int(candidate.removeprefix(PREDICTED))
            return cluster_predictions(self.predicted[train], self.predicted[held], k, self.seed)
        if isinstance(candidate, str):
            return self._within(int(candidate.split("*")[1]), train, held)
        km = kmeans(candidate, self.embeddings[train], self.seed)
        return km.labels_.astype(str), km.predict(self.embeddings[held]).astype(str)

    def _within(self, k: int, train: np.ndarray, held: np.ndarray):
        """Router categories cut into k sub-clusters each (a category with under 2k training prompts stays whole;
        held-out prompts of a category unseen in training keep its name)."""
        train_labels, held_labels = self.base[train].astype(object), self.base[held].astype(object)
        for cat in np.unique(self.base[train]):
            tr, he = self.base[train] == cat, self.base[held] == cat
            if tr.sum() < 2 * k:
                continue
            km = kmeans(k, self.embeddings[train[tr]], self.seed)
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
        if any(str(c).startswith(PREDICTED) for c in self.candidates):
            self.predicted = np.empty_like(self.scores)
            self.predicted[train], self.predicted[held] = self.predictor.predict(train, held)
        inner = {str(c): self._inner_apgr(c, train) for c in self.candidates}
        best = max(self.candidates, key=lambda c: inner[str(c)])  # first wins ties: the router, then fewer clusters
        self.chosen.append({"chosen": str(best), "inner_apgr": inner})
        return self._fit(best, train, held)
