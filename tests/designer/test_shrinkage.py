import numpy as np
import pytest

from designer.engine.evaluation import evaluate, kfold
from designer.engine.shrinkage import STRENGTHS, category_quality
from designer.engine.subclusters import ClusterCategoriser

from .test_evaluation import BIG, MID, SMALL, specialists

MODELS = [SMALL, MID, BIG]


def noisy(seed=0):
    """Three categories of 30 prompts where the big expert is far better, and 90 prompts in 30 tiny categories
    where the small one is nearly as good; judgments as noisy as arena's (sd 3), so tiny categories' plain means
    often look like big gains."""
    rng = np.random.default_rng(seed)
    cats = np.r_[np.repeat([0, 1, 2], 30), rng.integers(3, 33, 90)]
    base = np.where(cats[:, None] < 3, [3.0, 4.0, 7.0], [6.0, 6.0, 6.5])
    return np.clip(base + rng.normal(0, 3, (len(cats), 3)), 1, 10), [f"c{c}" for c in cats]


def test_strength_zero_is_the_plain_mean_and_large_strength_the_overall_mean():
    rng = np.random.default_rng(0)
    scores, cat_of = rng.normal(5, 2, (40, 3)), rng.integers(0, 4, 40)
    plain = category_quality(scores, cat_of, np.arange(4))
    assert np.array_equal(plain, np.array([scores[cat_of == c].mean(axis=0) for c in range(4)]))
    far = category_quality(scores, cat_of, np.arange(4), 1e9)
    assert np.allclose(far, scores.mean(axis=0), atol=1e-6)
    n = np.bincount(cat_of)[2]
    assert category_quality(scores, cat_of, np.array([2]), 5.0)[0] == pytest.approx(
        (n * plain[2] + 5 * scores.mean(axis=0)) / (n + 5))


def test_defaults_reproduce_the_unshrunk_deterministic_evaluation():
    scores, cats = specialists()
    plain = evaluate(scores, cats, MODELS, cost="total", seed=3)
    again = evaluate(scores, cats, MODELS, cost="total", seed=3, shrinkage=(0.0,))
    assert [r.coe for r in plain.rows] == [r.coe for r in again.rows] and not plain.splits
    assert plain.shrinkage == [{"strength": 0.0}] * 5 and again.shrinkage[0]["inner_apgr"] == {0.0: again.shrinkage[
        0]["inner_apgr"][0.0]}


def test_tuned_shrinkage_records_its_choice_and_helps_on_noisy_small_categories():
    scores, cats = noisy()
    plain = evaluate(scores, cats, MODELS, cost="total", seed=0)
    tuned = evaluate(scores, cats, MODELS, cost="total", seed=0, shrinkage=STRENGTHS)
    assert all(f["strength"] in STRENGTHS and set(f["inner_apgr"]) == set(STRENGTHS) for f in tuned.shrinkage)
    assert tuned.apgr > plain.apgr


def test_splits_are_scored_held_out_at_their_realised_cost():
    scores, cats = specialists()
    ev = evaluate(scores, cats, MODELS, cost="total", seed=1, splits=True, shrinkage=STRENGTHS)
    assert ev.splits and ev.apgr > 0.7
    for r in ev.rows:
        assert r.coe >= ev.experts[0].score - 1e-9 and r.oracle >= r.coe - 1e-9
    # CoE(b) only credits maps whose realised held-out cost is within b
    spent = {(r.score, r.avg_cost) for r in ev.rows}
    assert all(any(s == r.coe and c <= r.budget * (1 + 1e-9) for s, c in spent) for r in ev.rows)
    # keys decide which prompts of the split category move: other keys, other (but valid) held-out results
    other = evaluate(scores, cats, MODELS, cost="total", seed=1, splits=True, shrinkage=STRENGTHS,
                     keys=np.linspace(0, 1, len(cats), endpoint=False))
    assert [r.budget for r in other.rows] == [r.budget for r in ev.rows]
    assert [r.score for r in other.rows] != [r.score for r in ev.rows] and other.apgr > 0.7


def poison_fold(scores, fold: int, seed: int):
    held = kfold(len(scores), 5, seed)[fold]
    tampered = scores.copy()
    tampered[held] = 11 - tampered[held]  # flip that fold's held-out judgments
    return tampered


@pytest.mark.parametrize("splits", [False, True])
def test_inner_cv_never_reads_held_out_scores(splits):
    scores, cats = noisy(seed=2)
    first = evaluate(scores, cats, MODELS, cost="total", seed=4, shrinkage=STRENGTHS, splits=splits)
    for fold in (0, 3):
        second = evaluate(poison_fold(scores, fold, 4), cats, MODELS, cost="total", seed=4, shrinkage=STRENGTHS,
                          splits=splits)
        assert second.shrinkage[fold] == first.shrinkage[fold]  # chosen from that fold's training prompts alone
        assert second.shrinkage != first.shrinkage and second.apgr != first.apgr  # the poison is seen elsewhere


def test_clusters_with_shrinkage_never_read_held_out_scores():
    rng = np.random.default_rng(3)
    scores, cats = noisy(seed=3)
    emb = rng.normal(size=(len(scores), 4))
    held = kfold(len(scores), 5, 0)[0]
    train = np.setdiff1d(np.arange(len(scores)), held)
    picks = []
    for s in (scores, poison_fold(scores, 0, 0)):
        cat = ClusterCategoriser(emb, s, MODELS, cost="total", base=cats, ks=(2, 4), inner_folds=3,
                                 shrinkage=(0.0, 10.0), splits=True)
        labels = cat(train, held)
        picks.append((cat.chosen, [np.asarray(x).tolist() for x in labels]))
    assert picks[0] == picks[1]
