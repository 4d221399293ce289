"""The pure router engine: training, prediction, fallback, determinism, persistence, batching."""
import numpy as np
import pytest

from routing.engine import router as engine
from routing.engine.classifiers import CLASSIFIERS
from routing.engine.embedder import get_embedder
from routing.engine.uncertainty import calibrate, entropy, margin

OBVIOUS = {
    "Write a Python function that merges two sorted linked lists.": "coding",
    "Solve for x: 4x - 7 = 21.": "math",
    "Compose a sonnet about a lighthouse keeper's last night on duty.": "writing",
}


def test_engine_imports_no_django():
    import subprocess
    import sys

    code = ("import sys, routing.engine, routing.engine.inputs, routing.engine.evaluation; "
            "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_routes_obvious_prompts_to_their_category(trained_router):
    results = trained_router.route(list(OBVIOUS))
    assert [r.category for r in results] == list(OBVIOUS.values())
    for r in results:
        assert not r.fallback and 0 <= r.entropy <= 1 and r.probabilities[0][0] == r.category
        assert sum(p for _, p in r.probabilities) <= 1.0 + 1e-6


def test_empty_prompt_falls_back_to_general(trained_router):
    (empty,) = trained_router.route(["   "])
    assert (empty.category, empty.fallback, empty.fallback_reason) == ("general", True, "empty")


def test_prompt_unlike_training_data_is_out_of_distribution(trained_router):
    (r,) = trained_router.route(["Write a Python function that merges two sorted linked lists."])
    strict = engine.Router(trained_router.categories, trained_router.classifier,
                           {**trained_router.thresholds, "ood_similarity": r.nearest_similarity + 1e-3},
                           trained_router.reference_X)
    (again,) = strict.route(["Write a Python function that merges two sorted linked lists."])
    assert (again.category, again.fallback_reason, again.predicted) == ("general", "out_of_distribution", "coding")


def test_uncertain_prompt_falls_back_with_reason(trained_router):
    t = dict(trained_router.thresholds)
    strict = engine.Router(trained_router.categories, trained_router.classifier,
                           {**t, "entropy": 0.0}, trained_router.reference_X)
    (r,) = strict.route(["Tell me about the causes of the French Revolution."])
    assert r.fallback and r.fallback_reason == "high_entropy" and r.category == "general"
    assert r.predicted == "humanities"


def test_batch_equals_single_and_keeps_order(trained_router):
    prompts = ["short", "A much longer prompt about sorting algorithms in Rust " * 8, "Solve 2x = 10"] * 3
    batch = trained_router.route(prompts)
    single = [trained_router.route([p])[0] for p in prompts]
    for b, s in zip(batch, single):
        assert b.category == s.category
        assert b.confidence == pytest.approx(s.confidence, abs=1e-4)


def test_length_sorted_batches_respect_token_budget():
    emb = get_embedder()
    lengths = np.array([5, 300, 7, 120, 6, 250])
    batches = list(emb._batches(lengths))
    assert sorted(i for b in batches for i in b) == list(range(6))
    for b in batches:
        assert len(b) * lengths[b].max() <= emb.token_budget or len(b) == 1
        assert list(lengths[b]) == sorted(lengths[b])


@pytest.fixture(scope="module")
def reference_embeddings():
    from sentence_transformers import SentenceTransformer

    from routing.engine.embedder import default_model_path

    model = SentenceTransformer(default_model_path(), device="cpu")
    texts = ["hello world", "a somewhat longer sentence about routers and experts, padded in a batch", "x",
             "Write a haiku about the sea."]
    return texts, model.encode(texts, normalize_embeddings=True)


@pytest.mark.parametrize("runtime, tolerance", [("torch", 1e-4), ("onnx", 1e-4)])
def test_float_runtimes_match_sentence_transformers(reference_embeddings, runtime, tolerance):
    texts, ref = reference_embeddings
    ours = get_embedder(None, runtime).encode(texts)
    assert np.abs(ours - ref).max() < tolerance


def test_int8_runtime_stays_close_to_the_float_model(reference_embeddings):
    texts, ref = reference_embeddings
    ours = get_embedder(None, "onnx-int8").encode(texts)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert ((ours * ref).sum(axis=1) > 0.95).all()
    # A prompt's vector does not depend on what it is embedded with (activations are quantised per tensor).
    alone = np.stack([get_embedder(None, "onnx-int8").encode([t])[0] for t in texts])
    assert np.array_equal(alone, ours)


def test_onnx_graph_is_exported_once_and_cached(tmp_path, monkeypatch):
    from routing.engine import onnx_model
    from routing.engine.embedder import Embedder, default_model_path

    monkeypatch.setenv("COE_MODEL_CACHE", str(tmp_path))
    first = onnx_model.model_file(default_model_path(), "onnx")
    stamp = first.stat().st_mtime_ns
    again = onnx_model.model_file(default_model_path(), "onnx")
    assert again == first and again.stat().st_mtime_ns == stamp
    assert [p.name for p in first.parent.iterdir()] == ["model.onnx"]  # no temporary files left behind
    with pytest.raises(ValueError, match="unknown embedder runtime"):
        Embedder(runtime="tensorrt")


def test_round_trip_bytes_gives_identical_predictions(trained_router):
    again = engine.Router.from_bytes(trained_router.to_bytes())
    prompts = list(OBVIOUS) + ["What's a good gift for my dad?"]
    a, b = trained_router.route(prompts), again.route(prompts)
    assert [x.probabilities for x in a] == [x.probabilities for x in b]
    assert again.thresholds == trained_router.thresholds and again.meta == trained_router.meta
    assert again.embedder.runtime == trained_router.meta["embedder_runtime"] == trained_router.embedder.runtime


def _subset(seed_examples, per_category):
    counts, prompts, labels = {}, [], []
    for p, c in seed_examples:
        if counts.get(c, 0) < per_category:
            counts[c] = counts.get(c, 0) + 1
            prompts.append(p)
            labels.append(c)
    return prompts, labels


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_training_is_deterministic(seed_examples, name):
    prompts, labels = _subset(seed_examples, 15)
    a = engine.train(prompts, labels, classifier=name)
    b = engine.train(prompts, labels, classifier=name)
    assert a.to_bytes() == b.to_bytes()
    assert a.meta["training_data_hash"] == engine.data_hash(list(reversed(prompts)), list(reversed(labels)))
    assert a.meta["classifier"] == name and a.meta["validation"]["accuracy"] > 0.6


def test_auto_picks_the_best_cross_validated_candidate(seed_examples):
    prompts, labels = _subset(seed_examples, 12)
    router = engine.train(prompts, labels, classifier="auto")
    table = router.meta["candidates"]
    assert {row["classifier"] for row in table} == set(CLASSIFIERS)
    best = max(table, key=lambda r: (r["cv_macro_f1"], r["cv_accuracy"]))
    assert (router.meta["classifier"], router.meta["params"]) == (best["classifier"], best["params"])


def test_training_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown classifier"):
        engine.train(["a", "b"], ["x", "y"], classifier="forest")
    with pytest.raises(ValueError, match="two categories"):
        engine.train(["a", "b"], ["x", "x"])


def test_entropy_and_margin():
    probs = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.6, 0.3, 0.1]])
    assert entropy(probs) == pytest.approx([0.0, 1.0, 0.8173454], abs=1e-6)
    assert margin(probs) == pytest.approx([1.0, 0.0, 0.3])


def test_calibration_keeps_confident_and_drops_coin_flips():
    # Confident predictions are right; near-uniform ones are right only a third of the time.
    confident = np.tile([0.9, 0.05, 0.05], (60, 1))
    unsure = np.tile([0.36, 0.33, 0.31], (30, 1))
    probs = np.vstack([confident, unsure])
    y = np.array([0] * 60 + [0, 1, 2] * 10)
    t = calibrate(probs, y, fallback_index=2)
    ent, mar = entropy(probs), margin(probs)
    keep = (ent <= t["entropy"]) & (mar >= t["margin"])
    assert keep[:60].all() and not keep[60:].any()
