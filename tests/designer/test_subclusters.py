import numpy as np

from designer.engine.evaluation import evaluate
from designer.engine.subclusters import ClusterCategoriser
from designer.engine.tables import ModelInfo

MODELS = [ModelInfo("small", 7, 7), ModelInfo("big", 70, 70)]


def blobs(seed=0, n=40):
    """Four embedding blobs; the small model is as good as the big one on two of them. The 'router' labels are
    noise, so only clusters of the embeddings carry the signal."""
    rng = np.random.default_rng(seed)
    centres = np.eye(4) * 5
    blob = np.repeat(np.arange(4), n)
    emb = centres[blob] + rng.normal(0, 0.3, (len(blob), 4))
    scores = np.stack([np.where(blob < 2, 8.0, 3.0), np.full(len(blob), 8.0)], axis=1)
    scores += rng.normal(0, 0.5, scores.shape)
    router = rng.choice(["a", "b", "c"], len(blob))
    return emb, scores, router


def test_clusters_are_chosen_when_they_carry_the_signal_and_beat_the_router_labels():
    emb, scores, router = blobs()
    cat = ClusterCategoriser(emb, scores, MODELS, cost="total", base=router, ks=(2, 4), seed=0)
    ev = evaluate(scores, cat, MODELS, cost="total", folds=4, seed=0)
    assert len(cat.chosen) == 4 and all(c["chosen"] in ("2", "4") for c in cat.chosen)
    assert all(set(c["inner_apgr"]) == {"router", "2", "4"} for c in cat.chosen)
    plain = evaluate(scores, router, MODELS, cost="total", folds=4, seed=0)
    assert ev.apgr > ev.hull_apgr + 0.1 and ev.apgr > plain.apgr + 0.2


def test_choices_never_look_at_held_out_scores():
    emb, scores, router = blobs(seed=1)
    held, train = np.arange(0, 160, 5), np.setdiff1d(np.arange(160), np.arange(0, 160, 5))
    first = ClusterCategoriser(emb, scores, MODELS, cost="total", base=router, ks=(2, 4))
    tampered = scores.copy()
    tampered[held] = 10 - tampered[held]  # flip the held-out judgments
    second = ClusterCategoriser(emb, tampered, MODELS, cost="total", base=router, ks=(2, 4))
    a, b = first(train, held), second(train, held)
    assert first.chosen == second.chosen
    assert all((np.asarray(x) == np.asarray(y)).all() for x, y in zip(a, b))
