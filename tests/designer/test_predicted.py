"""Categories from predicted expert scores: learned from training prompts alone, and they find quality differences
that only the prompt's words reveal."""
import numpy as np
import pytest

from designer.engine.evaluation import evaluate, kfold
from designer.engine.predicted import ScorePredictor, lexical_counts
from designer.engine.subclusters import ClusterCategoriser, cluster_predictions
from designer.engine.tables import ModelInfo

MODELS = [ModelInfo("small", 7, 7), ModelInfo("big", 70, 70)]


def worded(n=240, seed=0, binary=False):
    """The small model fails prompts that mention an integral and matches the big one elsewhere; the embeddings
    are noise, so only the words carry the signal."""
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.4
    topics = rng.choice(["apples", "rivers", "poems", "trains"], n)
    texts = [f"Question {i} about {t}" + (" with an integral to evaluate" if h else " to describe briefly")
             for i, (t, h) in enumerate(zip(topics, hard))]
    emb = rng.normal(size=(n, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    p_small = np.where(hard, 0.2, 0.85)
    if binary:
        scores = np.stack([rng.random(n) < p_small, rng.random(n) < 0.9], axis=1).astype(float)
    else:
        scores = np.stack([np.where(hard, 3.0, 8.0), np.full(n, 8.5)], axis=1) + rng.normal(0, 1.0, (n, 2))
    return texts, emb, scores, hard


@pytest.mark.parametrize("binary", [False, True])
def test_predictions_separate_what_only_the_words_reveal(binary):
    texts, emb, scores, hard = worded(binary=binary)
    predictor = ScorePredictor(emb, lexical_counts(texts), scores, seed=0)
    held = kfold(len(texts), 5, 0)[0]
    train = np.setdiff1d(np.arange(len(texts)), held)
    train_pred, held_pred = predictor.predict(train, held)
    assert train_pred.shape == (len(train), 2) and held_pred.shape == (len(held), 2)
    assert ((train_pred >= 0) & (train_pred <= 1)).all()
    gap = lambda pred, idx: pred[:, 1] - pred[:, 0]  # noqa: E731
    for pred, idx in ((train_pred, train), (held_pred, held)):
        assert gap(pred, idx)[hard[idx]].min() > gap(pred, idx)[~hard[idx]].max()
    train_labels, held_labels = cluster_predictions(train_pred, held_pred, 2)
    for labels, idx in ((train_labels, train), (held_labels, held)):
        assert len(set(labels)) == 2 and all((labels[hard[idx]] == labels[hard[idx]][0]))


def test_predictions_never_read_held_out_scores_and_training_ones_are_out_of_fold():
    texts, emb, scores, _ = worded(seed=1)
    held = kfold(len(texts), 5, 1)[2]
    train = np.setdiff1d(np.arange(len(texts)), held)
    tampered = scores.copy()
    tampered[held] = 11 - tampered[held]
    a = ScorePredictor(emb, lexical_counts(texts), scores).predict(train, held)
    b = ScorePredictor(emb, lexical_counts(texts), tampered).predict(train, held)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    # a training prompt's own judgment never enters its out-of-fold prediction (one strength, same scale)
    nudged = scores.copy()
    nudged[train[0]] = [scores[train].max(), scores[train].min()]
    one = [ScorePredictor(emb, lexical_counts(texts), s, cs=(0.5,)).predict(train, held) for s in (scores, nudged)]
    assert np.array_equal(one[0][0][0], one[1][0][0]) and not np.array_equal(one[0][1], one[1][1])


def test_categoriser_prefers_predicted_clusters_when_only_words_carry_the_signal():
    texts, emb, scores, hard = worded(seed=2)
    router = np.random.default_rng(2).choice(["a", "b", "c"], len(texts))
    cat = ClusterCategoriser(emb, scores, MODELS, cost="total", base=router, ks=(2, 4),
                             predictor=ScorePredictor(emb, lexical_counts(texts), scores), predicted_ks=(2, 3),
                             inner_folds=3, shrinkage=(0.0, 10.0), splits=True)
    ev = evaluate(scores, cat, MODELS, cost="total", folds=4, seed=0, shrinkage=(0.0, 10.0), splits=True)
    assert all(c["chosen"].startswith("predicted:") for c in cat.chosen)
    assert all(set(c["inner_apgr"]) == {"router", "2", "4", "predicted:2", "predicted:3"} for c in cat.chosen)
    without = ClusterCategoriser(emb, scores, MODELS, cost="total", base=router, ks=(2, 4), inner_folds=3)
    assert ev.apgr > evaluate(scores, without, MODELS, cost="total", folds=4, seed=0).apgr + 0.2
