"""Categories from predicted quality: prompts grouped by what a model of the training judgments expects each
expert to score on them.

Why: topics and embedding clusters group prompts by what they are about, but a map gains only where experts'
quality differs, and on large data sets (MMLU's 14,042 questions) that varies within topics too (hard vs easy
questions). So each expert's score is predicted from the prompt, and subclusters.cluster_predictions groups
prompts by their predicted scores relative to their own mean (who is better, by how much). A map over those
clusters is an ordinary category map.

The model: per expert, a logistic regression on the router's kind of features (the MiniLM embedding plus hashed
word 1-2-gram TF-IDF, which catches formulae, numbers and subject vocabulary the small embedding blurs), fitted to
the score rescaled to [0, 1] (a binomial model with fractional outcomes, so 0/1 correctness and 1-10 judgments
are one method). Its strength C is chosen from CS by out-of-fold log-loss.

Honesty: everything is learned from the training prompts only. Training prompts are grouped by *out-of-fold*
predictions (each from a model that never saw that prompt's judgments), so a cluster's measured quality is what
the map will meet on new prompts; held-out prompts are predicted by a model fitted on all training prompts and
assigned to the nearest cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

CS = (0.1, 0.5, 2.5)  # inverse regularisation strengths, fixed before any result was seen
N_FEATURES = 2 ** 18  # hashed n-gram columns
MIN_DF = 2  # n-grams in fewer training prompts say nothing about others (and dropping them keeps fits fast)


def lexical_counts(texts: Sequence[str], n_features: int = N_FEATURES) -> sparse.csr_matrix:
    """log(1 + count) of hashed word 1- and 2-grams: no vocabulary to fit, so it is computed once for all
    prompts; the IDF weights are learned per training set."""
    counts = HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=n_features, alternate_sign=False,
                               norm=None, lowercase=True).transform(texts).tocsr()
    counts.data = np.log1p(counts.data)
    return counts


class ScorePredictor:
    """Predicted score of every expert for prompts, from `embeddings` (P x d, unit rows) and `counts`
    (lexical_counts of the same prompts), trained on `scores` (P x M) of training prompts only."""

    def __init__(self, embeddings, counts, scores, *, cs: Sequence[float] = CS, folds: int = 5, seed: int = 0):
        self.embeddings = np.asarray(embeddings, dtype=float)
        self.counts = sparse.csr_matrix(counts)
        self.scores = np.asarray(scores, dtype=float)
        self.cs, self.folds, self.seed = tuple(cs), folds, seed

    def _features(self, rows: np.ndarray, columns: np.ndarray, idf: np.ndarray) -> sparse.csr_matrix:
        lexical = normalize(self.counts[rows][:, columns].multiply(idf).tocsr())
        return sparse.hstack([sparse.csr_matrix(self.embeddings[rows]), lexical]).tocsr()

    @staticmethod
    def _fit_predict(c: float, X, y: np.ndarray, X_new) -> np.ndarray:
        """Each column of y in [0, 1] as a binomial outcome: every prompt appears once as a success with weight
        y and once as a failure with weight 1 - y (rows of weight 0 left out: 0/1 scores stay one row each). A
        column that never varies is predicted as its constant."""
        out = np.empty((X_new.shape[0], y.shape[1]))
        both = sparse.vstack([X, X]).tocsr()
        for m, col in enumerate(y.T):
            if np.ptp(col) == 0:
                out[:, m] = col[0]
                continue
            target, weight = np.r_[np.ones(len(col)), np.zeros(len(col))], np.r_[col, 1 - col]
            keep = weight > 0
            model = LogisticRegression(C=c, max_iter=2000).fit(both[keep], target[keep], sample_weight=weight[keep])
            out[:, m] = model.predict_proba(X_new)[:, 1]
        return out

    def predict(self, train: np.ndarray, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(out-of-fold predictions for `train`, predictions for `held` from a fit on all of `train`), on the
        [0, 1] scale."""
        train, held = np.asarray(train), np.asarray(held)
        df = np.bincount(self.counts[train].indices, minlength=self.counts.shape[1])
        columns = np.flatnonzero(df >= MIN_DF)  # from the training prompts' texts
        idf = np.log((1 + len(train)) / (1 + df[columns])) + 1
        low, high = self.scores[train].min(), self.scores[train].max()
        y = (self.scores[train] - low) / (high - low if high > low else 1.0)  # the training scores' scale -> [0, 1]
        X = self._features(train, columns, idf)
        cut = np.array_split(np.random.default_rng(self.seed).permutation(len(train)), min(self.folds, len(train)))
        oof = {c: np.empty_like(y) for c in self.cs}
        for part in cut:
            rest = np.setdiff1d(np.arange(len(train)), part)
            for c in self.cs:
                oof[c][part] = self._fit_predict(c, X[rest], y[rest], X[part])
        c = min(self.cs, key=lambda c: _log_loss(oof[c], y))  # the first wins ties
        return oof[c], self._fit_predict(c, X, y, self._features(held, columns, idf))


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())

