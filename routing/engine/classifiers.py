"""Classifiers over unit-norm prompt embeddings. Each returns class probabilities and saves to plain arrays.

- ``knn``: the CoE paper's router — cosine k-nearest-neighbours, softmax-weighted votes.
- ``logistic``: a multinomial logistic-regression head on the embedding.
- ``hybrid``: logistic regression on the embedding plus hashed word/char n-gram TF-IDF, which catches lexical cues
  ("pretend you are", "extract", code symbols) that a small sentence embedding blurs.

State is kept as numpy arrays plus JSON-safe params (no pickle), so a stored router is inert data.
"""
import numpy as np


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class KNNClassifier:
    name = "knn"

    def __init__(self, k=10, temperature=0.05):
        self.k, self.temperature = int(k), float(temperature)

    def fit(self, X, y, texts=None):
        self.train_X, self.train_y = X.astype(np.float32), np.asarray(y, dtype=np.int64)
        self.n_classes = int(self.train_y.max()) + 1
        return self

    def predict_proba(self, X, texts=None):
        sims = X @ self.train_X.T
        k = min(self.k, sims.shape[1])
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(sims, top, axis=1)
        weights = np.exp((top_sims - top_sims.max(axis=1, keepdims=True)) / self.temperature)
        probs = np.zeros((X.shape[0], self.n_classes))
        np.add.at(probs, (np.repeat(np.arange(X.shape[0]), k), self.train_y[top].ravel()), weights.ravel())
        return probs / probs.sum(axis=1, keepdims=True)

    def params(self):
        return {"k": self.k, "temperature": self.temperature}

    def arrays(self):
        return {"train_X": self.train_X, "train_y": self.train_y}

    @classmethod
    def load(cls, params, arrays):
        clf = cls(**params)
        return clf.fit(arrays["train_X"], arrays["train_y"])


class LogisticClassifier:
    name = "logistic"

    def __init__(self, C=10.0):
        self.C = float(C)

    def _features(self, X, texts):
        return X

    def fit(self, X, y, texts=None):
        from sklearn.linear_model import LogisticRegression

        F = self._features(X, texts)
        model = LogisticRegression(C=self.C, max_iter=3000, class_weight="balanced")
        model.fit(F, y)
        self.n_classes = int(np.max(y)) + 1
        coef = np.zeros((self.n_classes, F.shape[1]), dtype=np.float32)
        intercept = np.zeros(self.n_classes, dtype=np.float32)
        coef[model.classes_], intercept[model.classes_] = model.coef_, model.intercept_
        self.coef, self.intercept = coef, intercept
        return self

    def predict_proba(self, X, texts=None):
        F = self._features(X, texts)
        if getattr(self, "_coef_t", (None,))[0] is not self.coef:  # sparse @ a transposed view copies it every call
            self._coef_t = (self.coef, np.ascontiguousarray(self.coef.T))
        return _softmax(np.asarray(F @ self._coef_t[1]) + self.intercept)

    def params(self):
        return {"C": self.C}

    def arrays(self):
        return {"coef": self.coef, "intercept": self.intercept}

    @classmethod
    def load(cls, params, arrays):
        clf = cls(**params)
        clf.coef, clf.intercept = arrays["coef"], arrays["intercept"]
        clf.n_classes = clf.coef.shape[0]
        return clf


class HybridClassifier(LogisticClassifier):
    name = "hybrid"

    def __init__(self, C=10.0, n_features=2**15, lexical_weight=1.0):
        super().__init__(C)
        self.n_features, self.lexical_weight = int(n_features), float(lexical_weight)
        self.idf = None

    def _vectorizers(self):
        """Stateless hashing vectorizers, built once per classifier (construction is not free per call)."""
        if getattr(self, "_hashers", None) is None:
            from sklearn.feature_extraction.text import HashingVectorizer

            common = dict(n_features=self.n_features, alternate_sign=False, norm=None, lowercase=True)
            self._hashers = (HashingVectorizer(analyzer="word", ngram_range=(1, 2), **common),
                             HashingVectorizer(analyzer="char_wb", ngram_range=(3, 4), **common))
        return self._hashers

    def _lexical(self, texts):
        from scipy import sparse

        counts = sparse.hstack([v.transform(texts) for v in self._vectorizers()]).tocsr()
        counts.data = np.log1p(counts.data)
        return counts

    def _features(self, X, texts):
        from scipy import sparse
        from sklearn.preprocessing import normalize

        counts = self._lexical(texts)
        if self.idf is None:  # fitting: document frequencies from the training texts
            df = np.bincount(counts.indices, minlength=counts.shape[1])
            self.idf = (np.log((1 + counts.shape[0]) / (1 + df)) + 1).astype(np.float32)
        lexical = normalize(counts.multiply(self.idf).tocsr()) * self.lexical_weight
        return sparse.hstack([sparse.csr_matrix(X), lexical]).tocsr()

    def params(self):
        return {"C": self.C, "n_features": self.n_features, "lexical_weight": self.lexical_weight}

    def arrays(self):
        return {**super().arrays(), "idf": self.idf}

    @classmethod
    def load(cls, params, arrays):
        clf = super().load(params, arrays)
        clf.idf = arrays["idf"]
        return clf


CLASSIFIERS = {c.name: c for c in (KNNClassifier, LogisticClassifier, HybridClassifier)}
