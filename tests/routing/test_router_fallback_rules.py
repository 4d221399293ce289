"""The router's serving rules, one by one, on scripted probabilities and embeddings: when a prompt falls back to
``general`` and with which reason (each threshold exactly at its edge, and the reasons' order), what a decision
holds, how a router picks its embedder, and what its stored bytes keep and refuse. Written to kill mutants of
routing/engine/router.py (scripts/mutation.sh router); training and calibration are in
test_router_calibration_rules.py, and the real-model behaviour in test_engine.py.

The embedder and classifier here are stand-ins that return given vectors and probabilities, so each rule is tested on
exact numbers instead of whatever a model happens to output."""
import io
import json
import math
import types

import numpy as np
import pytest

from routing.engine import router as engine
from routing.engine.classifiers import KNNClassifier
from routing.engine.uncertainty import entropy, margin


def unit(angle):
    """A 2-d unit vector at `angle` radians from the reference prompt [1, 0]: cosine = cos(angle)."""
    return [math.cos(angle), math.sin(angle)]


class TableEmbedder:
    model_id, runtime = "table", "table"

    def __init__(self, vectors):
        self.vectors = vectors

    def encode(self, texts):
        return np.array([self.vectors[t] for t in texts], dtype=np.float32).reshape(len(texts), 2)


class Scripted:
    """Returns the probability row given for each text."""
    name = "scripted"

    def __init__(self, rows):
        self.rows = rows

    def predict_proba(self, X, texts):
        assert len(X) == len(texts)
        return np.array([self.rows[t] for t in texts], dtype=float).reshape(len(texts), -1 if texts else 3)


CATEGORIES = ["coding", "general", "math"]
CONFIDENT = [0.9, 0.05, 0.05]  # entropy 0.359, margin 0.85
TWO_WAY = [0.55, 0.0, 0.45]    # entropy 0.626, margin 0.1
SPREAD = [0.4, 0.3, 0.3]       # entropy 0.991, margin 0.1
THRESHOLDS = {"ood_similarity": 0.5, "entropy": 0.7, "margin": 0.2}


def make_router(prompts, monkeypatch, thresholds=THRESHOLDS, categories=CATEGORIES, reference=((1.0, 0.0),)):
    """A Router over scripted prompts: {text: (probability row, cosine to the one reference prompt)}."""
    rows = {t: row for t, (row, _) in prompts.items()}
    vectors = {t: [cos, math.sqrt(max(0.0, 1 - cos * cos))] for t, (_, cos) in prompts.items()}
    embedder = TableEmbedder(vectors)
    monkeypatch.setattr(engine, "get_embedder", lambda path=None, runtime=None: embedder)
    return engine.Router(categories, Scripted(rows), thresholds, np.array(reference, dtype=np.float32).reshape(-1, 2))


def decide(router, *texts):
    return {r_text: (r.category, r.predicted, r.fallback, r.fallback_reason)
            for r_text, r in zip(texts, router.route(list(texts)))}


def test_each_reason_sends_the_prompt_to_general_with_the_prediction_kept(monkeypatch):
    router = make_router({"sure": (CONFIDENT, 0.9), "odd": (CONFIDENT, 0.49), "unsure": (SPREAD, 0.9),
                          "torn": (TWO_WAY, 0.9)}, monkeypatch)
    assert decide(router, "sure", "odd", "unsure", "torn") == {
        "sure": ("coding", "coding", False, ""),
        "odd": ("general", "coding", True, "out_of_distribution"),
        "unsure": ("general", "coding", True, "high_entropy"),
        "torn": ("general", "coding", True, "low_margin"),
    }


def test_blank_and_non_text_prompts_are_empty(monkeypatch):
    router = make_router({"": (CONFIDENT, 0.9), " \n\t": (CONFIDENT, 0.9)}, monkeypatch)
    results = router.route(["", " \n\t", None, 42])
    assert [(r.category, r.fallback, r.fallback_reason) for r in results] == [("general", True, "empty")] * 4


def test_reasons_are_checked_in_order_empty_ood_entropy_margin(monkeypatch):
    router = make_router({"  ": (SPREAD, 0.1), "odd and unsure": (SPREAD, 0.1), "unsure and torn": (SPREAD, 0.9)},
                         monkeypatch)
    assert [r.fallback_reason for r in router.route(["  ", "odd and unsure", "unsure and torn"])] == [
        "empty", "out_of_distribution", "high_entropy"]


def test_each_threshold_is_inclusive_of_its_edge(monkeypatch):
    """A prompt exactly at a threshold is routed: fallback needs similarity below, entropy above, margin below."""
    edge_row = [0.6, 0.0, 0.4]
    at = {"ood_similarity": 0.5, "entropy": float(entropy(np.array([edge_row]))[0]),
          "margin": float(margin(np.array([edge_row]))[0])}
    router = make_router({"edge": (edge_row, 0.5)}, monkeypatch, thresholds=at)
    (r,) = router.route(["edge"])
    assert (r.nearest_similarity, r.entropy, r.margin) == (0.5, at["entropy"], at["margin"])
    assert (r.category, r.fallback, r.fallback_reason) == ("coding", False, "")
    nudged = {"ood_similarity": np.nextafter(0.5, 1), "entropy": np.nextafter(at["entropy"], 0),
              "margin": np.nextafter(at["margin"], 1)}
    reasons = {"ood_similarity": "out_of_distribution", "entropy": "high_entropy", "margin": "low_margin"}
    for name, value in nudged.items():
        router = make_router({"edge": (edge_row, 0.5)}, monkeypatch, thresholds={**at, name: value})
        assert router.route(["edge"])[0].fallback_reason == reasons[name], name


def test_a_decision_holds_the_exact_scores(monkeypatch):
    categories = ["coding", "general", "math", "stem"]
    row = [0.1234567, 0.0, 0.3, 0.5765433]
    router = make_router({"p": (row, 0.75)}, monkeypatch, categories=categories)
    (r,) = router.route(["p"])
    assert r.predicted == r.category == "stem" and not r.fallback
    assert r.confidence == 0.5765433
    assert r.probabilities == [["stem", 0.57654], ["math", 0.3], ["coding", 0.12346]]  # top 3, best first, 5 places
    assert r.entropy == pytest.approx(float(entropy(np.array([row]))[0]), abs=0)
    assert r.margin == pytest.approx(0.5765433 - 0.3, abs=1e-12)
    assert r.nearest_similarity == pytest.approx(0.75, abs=1e-6)
    assert all(isinstance(v, float) for v in (r.confidence, r.entropy, r.margin, r.nearest_similarity))
    assert isinstance(r.fallback, bool)
    assert router.route(["p"], top_k=1)[0].probabilities == [["stem", 0.57654]]
    assert r.as_dict() == {"category": "stem", "predicted": "stem", "confidence": 0.5765433,
                           "probabilities": r.probabilities, "entropy": r.entropy, "margin": r.margin,
                           "nearest_similarity": r.nearest_similarity, "fallback": False, "fallback_reason": "",
                           "latency_ms": r.latency_ms}


def test_latency_is_the_batch_time_shared_per_prompt(monkeypatch):
    router = make_router({"a": (CONFIDENT, 0.9), "b": (CONFIDENT, 0.9)}, monkeypatch)
    ticks = iter([10.0, 10.5])
    monkeypatch.setattr(engine, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    assert [r.latency_ms for r in router.route(["a", "b"])] == [250.0, 250.0]
    ticks = iter([3.0, 3.25])
    assert [r.latency_ms for r in router.route(["a"])] == [250.0]
    ticks = iter([5.0, 5.0])
    assert router.route([]) == []  # no prompts: no division by zero


def test_embeddings_the_caller_has_are_used_as_the_embedder_would_give_them(monkeypatch):
    """A caller with cached vectors (the designer's evaluation) passes them in: nothing is encoded, and the decision
    is exactly the one the embedder's own float32 vectors give."""
    router = make_router({"odd": (CONFIDENT, 0.3), "sure": (TWO_WAY, 0.7)}, monkeypatch)
    fresh = [r.as_dict() for r in router.route(["odd", "sure"])]
    cached = [[0.3, math.sqrt(1 - 0.09)], [0.7, math.sqrt(1 - 0.49)]]  # float64, as stored

    def refuse(texts):
        raise AssertionError("encoded although the embeddings were given")

    monkeypatch.setattr(router.embedder, "encode", refuse)
    given = [r.as_dict() for r in router.route(["odd", "sure"], embeddings=cached)]
    for a, b in zip(fresh, given):
        a.pop("latency_ms"), b.pop("latency_ms")
    assert given == fresh


def test_without_a_general_category_the_first_category_is_the_fallback(monkeypatch):
    router = make_router({"odd": (CONFIDENT, 0.1)}, monkeypatch, categories=["alpha", "beta", "gamma"])
    assert router.fallback == "alpha"
    (r,) = router.route(["odd"])
    assert (r.category, r.predicted, r.fallback_reason) == ("alpha", "alpha", "out_of_distribution")
    assert make_router({}, monkeypatch, categories=["alpha", "general"]).fallback == "general"


def test_nearest_similarity_is_the_best_cosine_to_any_training_prompt(monkeypatch):
    router = make_router({"p": (CONFIDENT, 0.3)}, monkeypatch, reference=((1.0, 0.0), unit(0.2), (0.0, -1.0)))
    X = router.embedder.encode(["p"])
    _, _, _, nearest = router.route_embeddings(X, ["p"])
    assert nearest[0] == pytest.approx(max(float(X[0] @ np.array(v)) for v in ((1, 0), unit(0.2), (0, -1))))


def test_a_router_without_reference_prompts_never_calls_a_prompt_out_of_distribution(monkeypatch):
    router = make_router({"a": (CONFIDENT, 0.0), "b": (CONFIDENT, -1.0)}, monkeypatch,
                         thresholds={**THRESHOLDS, "ood_similarity": 0.999}, reference=np.zeros((0, 2)))
    results = router.route(["a", "b"])
    assert [(r.nearest_similarity, r.fallback) for r in results] == [(1.0, False), (1.0, False)]


def test_route_embeddings_returns_probabilities_entropy_margin_in_prompt_order(monkeypatch):
    router = make_router({"a": (CONFIDENT, 0.9), "b": (SPREAD, 0.9)}, monkeypatch)
    X = router.embedder.encode(["a", "b"])
    probs, ent, mar, _ = router.route_embeddings(X, ["a", "b"])
    assert probs.tolist() == [CONFIDENT, SPREAD]
    assert ent.tolist() == entropy(np.array([CONFIDENT, SPREAD])).tolist()
    assert mar.tolist() == margin(np.array([CONFIDENT, SPREAD])).tolist()


def test_router_keeps_its_own_copies_of_categories_thresholds_and_meta(monkeypatch):
    categories, thresholds, meta = list(CATEGORIES), dict(THRESHOLDS), {"embedder_runtime": "onnx"}
    router = engine.Router(categories, Scripted({}), thresholds, np.zeros((0, 2)), meta=meta)
    categories.append("extra")
    thresholds["entropy"] = 0.0
    meta["embedder_runtime"] = "torch"
    assert (router.categories, router.thresholds, router.meta) == (CATEGORIES, THRESHOLDS, {"embedder_runtime": "onnx"})
    assert engine.Router(CATEGORIES, Scripted({}), THRESHOLDS, np.zeros((0, 2))).meta == {}


def test_a_router_serves_with_its_embedder_path_and_training_runtime(monkeypatch):
    asked = []
    monkeypatch.setattr(engine, "get_embedder", lambda path=None, runtime=None: asked.append((path, runtime)) or path)
    router = engine.Router(CATEGORIES, Scripted({}), THRESHOLDS, np.zeros((0, 2)), "/models/mini",
                           {"embedder_runtime": "onnx-int8"})
    assert router.embedder == "/models/mini"
    old = engine.Router(CATEGORIES, Scripted({}), THRESHOLDS, np.zeros((0, 2)))  # stored before runtimes existed
    old.embedder
    assert asked == [("/models/mini", "onnx-int8"), (None, "torch")]


def test_data_hash_is_stable_order_free_and_separates_fields():
    prompts, labels = ["Solve x+1=2", "Write a poem"], ["math", "writing"]
    digest = engine.data_hash(prompts, labels)
    # pinned: stored routers carry this hash, and retraining on the same data must reproduce it
    assert digest == "cdd0ab955b775fd54bafad52d100b51a7d7c392cbee9c7ff73a6e19337115eec"
    assert engine.data_hash(prompts[::-1], labels[::-1]) == digest
    assert engine.data_hash(["ab"], ["c"]) != engine.data_hash(["b"], ["ca"])
    assert engine.data_hash(["a", "b"], ["x", "x"]) != engine.data_hash(["ab"], ["x"])


def knn_router(meta=None, embedder_path=None):
    X = np.array([unit(0.0), unit(0.1), unit(1.5), unit(1.6)], dtype=np.float32)
    clf = KNNClassifier(k=2, temperature=0.1).fit(X, np.array([0, 0, 1, 1]))
    return engine.Router(["coding", "general"], clf, {"ood_similarity": 0.3, "entropy": 0.9, "margin": 0.05}, X,
                         embedder_path, meta if meta is not None else {"embedder_runtime": "onnx", "seed": 3})


def test_bytes_round_trip_keeps_everything_a_router_serves_with():
    router = knn_router()
    again = engine.Router.from_bytes(router.to_bytes(), embedder_path="/elsewhere")
    assert (again.categories, again.thresholds, again.meta, again.embedder_path) == (
        router.categories, router.thresholds, router.meta, "/elsewhere")
    assert (again.classifier.name, again.classifier.params()) == ("knn", {"k": 2, "temperature": 0.1})
    assert np.array_equal(again.reference_X, router.reference_X)
    X = np.array([unit(0.05), unit(1.55), unit(0.8)], dtype=np.float32)
    assert np.array_equal(again.route_embeddings(X, ["a", "b", "c"])[0], router.route_embeddings(X, ["a", "b", "c"])[0])
    assert engine.Router.from_bytes(memoryview(router.to_bytes())).meta == router.meta  # as PostgreSQL returns it
    assert engine.Router.from_bytes(router.to_bytes()).embedder_path is None


def test_stored_bytes_are_plain_arrays_and_json():
    with np.load(io.BytesIO(knn_router().to_bytes()), allow_pickle=False) as z:
        assert sorted(z.files) == ["clf__train_X", "clf__train_y", "header", "reference_X"]
        header = json.loads(z["header"].tobytes().decode())
    assert header == {"categories": ["coding", "general"], "classifier": "knn", "params": {"k": 2, "temperature": 0.1},
                      "thresholds": {"ood_similarity": 0.3, "entropy": 0.9, "margin": 0.05},
                      "meta": {"embedder_runtime": "onnx", "seed": 3}}


def test_a_stored_router_with_pickled_arrays_is_refused():
    router = knn_router()
    header = {"categories": router.categories, "classifier": "knn", "params": router.classifier.params(),
              "thresholds": router.thresholds, "meta": {}}
    buf = io.BytesIO()
    np.savez(buf, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), reference_X=router.reference_X,
             clf__train_X=router.classifier.train_X.astype(object), clf__train_y=router.classifier.train_y)
    with pytest.raises(ValueError, match="allow_pickle"):
        engine.Router.from_bytes(buf.getvalue())
