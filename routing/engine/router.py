"""The router: embed → classify → fall back to ``general`` when unsure. Pure Python (no Django).

``train()`` chooses the classifier by stratified cross-validation on the training prompts, calibrates the fallback
thresholds on the out-of-fold predictions and fits the winner on everything. Same data → same router.
"""
import hashlib
import io
import json
import time
from dataclasses import asdict, dataclass

import numpy as np

from .classifiers import CLASSIFIERS
from .embedder import get_embedder
from .evaluation import classification_metrics
from .uncertainty import calibrate, entropy, margin, ood_threshold

FALLBACK = "general"

# Candidate configurations compared by cross-validation when the classifier is "auto" (or per family).
# Kept small: each hybrid fit costs ~5 s on 2 cores (see docs/ROUTER.md for the wider sweep behind these).
CANDIDATES = {
    "knn": [{"k": 10, "temperature": 0.05}, {"k": 20, "temperature": 0.05}],
    "logistic": [{"C": 10.0}],
    "hybrid": [{"C": 10.0, "lexical_weight": 1.0}],
}


@dataclass
class RouteResult:
    category: str
    predicted: str
    confidence: float
    probabilities: list  # [[category, p], ...] top-k, best first
    entropy: float
    margin: float
    nearest_similarity: float
    fallback: bool
    fallback_reason: str  # "", "empty", "out_of_distribution", "high_entropy", "low_margin"
    latency_ms: float

    def as_dict(self):
        return asdict(self)


def data_hash(prompts, labels):
    """Order-independent hash of the labelled training set."""
    h = hashlib.sha256()
    for label, prompt in sorted(zip(labels, prompts)):
        h.update(label.encode() + b"\x1f" + prompt.encode() + b"\x1e")
    return h.hexdigest()


class Router:
    def __init__(self, categories, classifier, thresholds, reference_X, embedder_path=None, meta=None):
        self.categories = list(categories)
        self.classifier = classifier
        self.thresholds = dict(thresholds)
        self.reference_X = reference_X
        self.embedder_path = embedder_path
        self.meta = dict(meta or {})
        self.fallback = FALLBACK if FALLBACK in self.categories else self.categories[0]

    @property
    def embedder(self):
        # Serve with the runtime the router was trained with (artifacts from before runtimes existed used torch).
        return get_embedder(self.embedder_path, self.meta.get("embedder_runtime", "torch"))

    def route_embeddings(self, X, texts):
        probs = self.classifier.predict_proba(X, texts)
        ent, mar = entropy(probs), margin(probs)
        nearest = (X @ self.reference_X.T).max(axis=1) if len(self.reference_X) else np.ones(len(texts))
        return probs, ent, mar, nearest

    def route(self, prompts, top_k=3, embeddings=None):
        """Route a list of prompts in one batched call; returns one RouteResult per prompt, in order.
        ``embeddings``: the prompts' vectors from this router's embedder, when the caller has them (cached)."""
        embedder = self.embedder  # loaded once per process, outside the timed part
        start = time.perf_counter()
        texts = [p if isinstance(p, str) else "" for p in prompts]
        X = embedder.encode(texts) if embeddings is None else np.asarray(embeddings, dtype=np.float32)
        probs, ent, mar, nearest = self.route_embeddings(X, texts)
        per_prompt_ms = (time.perf_counter() - start) * 1000 / max(len(texts), 1)
        t = self.thresholds
        results = []
        for i, text in enumerate(texts):
            order = np.argsort(-probs[i])
            predicted = self.categories[order[0]]
            reason = ("empty" if not text.strip() else
                      "out_of_distribution" if nearest[i] < t["ood_similarity"] else
                      "high_entropy" if ent[i] > t["entropy"] else
                      "low_margin" if mar[i] < t["margin"] else "")
            results.append(RouteResult(
                category=self.fallback if reason else predicted, predicted=predicted,
                confidence=float(probs[i, order[0]]),
                probabilities=[[self.categories[j], round(float(probs[i, j]), 5)] for j in order[:top_k]],
                entropy=float(ent[i]), margin=float(mar[i]), nearest_similarity=float(nearest[i]),
                fallback=bool(reason), fallback_reason=reason, latency_ms=per_prompt_ms))
        return results

    # --- persistence: inert arrays + JSON, no pickle ----------------------------------------------------------
    def to_bytes(self):
        header = {"categories": self.categories, "classifier": self.classifier.name,
                  "params": self.classifier.params(), "thresholds": self.thresholds, "meta": self.meta}
        arrays = {f"clf__{k}": v for k, v in self.classifier.arrays().items()}
        buf = io.BytesIO()
        np.savez_compressed(buf, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
                            reference_X=self.reference_X, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data, embedder_path=None):
        with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as z:
            header = json.loads(z["header"].tobytes().decode())
            arrays = {k[5:]: z[k] for k in z.files if k.startswith("clf__")}
            reference_X = z["reference_X"]
        classifier = CLASSIFIERS[header["classifier"]].load(header["params"], arrays)
        return cls(header["categories"], classifier, header["thresholds"], reference_X, embedder_path,
                   header["meta"])


def _folds(y, k, seed):
    from sklearn.model_selection import StratifiedKFold

    k = max(2, min(k, int(np.bincount(y).min())))
    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def _out_of_fold(name, params, X, y, texts, folds):
    probs = np.zeros((len(y), int(y.max()) + 1))
    nearest = np.zeros(len(y))
    for train, test in folds:
        clf = CLASSIFIERS[name](**params).fit(X[train], y[train], [texts[i] for i in train])
        probs[test] = clf.predict_proba(X[test], [texts[i] for i in test])
        nearest[test] = (X[test] @ X[train].T).max(axis=1)
    return probs, nearest


def train(prompts, labels, classifier="auto", embedder_path=None, folds=5, seed=0, fallback_value=0.5,
          ood_quantile=0.01, progress=None, runtime=None):
    """Train a Router on labelled prompts. ``classifier``: "auto" or a name in CLASSIFIERS; ``runtime``: the
    embedder runtime (default: embedder.DEFAULT_RUNTIME), kept with the router for serving.

    Returns the Router; ``router.meta`` holds the validation table (every candidate's cross-validated accuracy and
    macro-F1), the chosen configuration, thresholds and the training-data hash.
    """
    if classifier != "auto" and classifier not in CLASSIFIERS:
        raise ValueError(f"unknown classifier {classifier!r}; choose auto or one of {sorted(CLASSIFIERS)}")
    if len(prompts) != len(labels) or not prompts:
        raise ValueError("need the same, non-zero number of prompts and labels")
    categories = sorted(set(labels))
    if len(categories) < 2:
        raise ValueError("need at least two categories to train a router")
    index = {c: i for i, c in enumerate(categories)}
    y = np.array([index[c] for c in labels])
    embedder = get_embedder(embedder_path, runtime)
    X = embedder.encode(list(prompts))
    texts = list(prompts)
    splits = _folds(y, folds, seed)
    families = CANDIDATES if classifier == "auto" else {classifier: CANDIDATES[classifier]}
    table, best = [], None
    for name, configs in families.items():
        for params in configs:
            probs, nearest = _out_of_fold(name, params, X, y, texts, splits)
            m = classification_metrics(y, probs.argmax(axis=1), len(categories))
            row = {"classifier": name, "params": params, "cv_accuracy": m["accuracy"], "cv_macro_f1": m["macro_f1"]}
            table.append(row)
            if progress:
                progress(row)
            if best is None or (row["cv_macro_f1"], row["cv_accuracy"]) > (best[0]["cv_macro_f1"],
                                                                            best[0]["cv_accuracy"]):
                best = (row, probs, nearest)
    row, probs, nearest = best
    fallback_index = index.get(FALLBACK, -1)
    thresholds = calibrate(probs, y, fallback_index, fallback_value)
    thresholds["ood_similarity"] = ood_threshold(nearest, ood_quantile)
    final = CLASSIFIERS[row["classifier"]](**row["params"]).fit(X, y, texts)
    router = Router(categories, final, thresholds, X, embedder_path)
    oof_pred = np.where(_fallback_mask(probs, nearest, thresholds), fallback_index, probs.argmax(axis=1))
    routed = classification_metrics(y, oof_pred, len(categories))
    router.meta = {
        "embedder_id": embedder.model_id, "embedder_runtime": embedder.runtime, "classifier": row["classifier"],
        "params": row["params"],
        "training_size": len(prompts), "training_data_hash": data_hash(prompts, labels), "folds": len(splits),
        "seed": seed, "candidates": table,
        "validation": {"accuracy": row["cv_accuracy"], "macro_f1": row["cv_macro_f1"],
                       "routed_accuracy": routed["accuracy"], "routed_macro_f1": routed["macro_f1"],
                       "fallback_rate": float(_fallback_mask(probs, nearest, thresholds).mean())},
    }
    return router


def _fallback_mask(probs, nearest, t):
    return (nearest < t["ood_similarity"]) | (entropy(probs) > t["entropy"]) | (margin(probs) < t["margin"])
