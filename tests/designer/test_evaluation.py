import json

import numpy as np
import pytest

from designer.engine.evaluation import evaluate, kfold
from designer.engine.tables import ModelInfo

SMALL, MID, BIG = ModelInfo("small", 7, 7), ModelInfo("moe", 47, 13), ModelInfo("big", 70, 70)


def specialists(n_per_cat=20, seed=0):
    """Twelve categories: the small expert matches the big one on four, the MoE on four others, so categories
    carry real signal."""
    rng = np.random.default_rng(seed)
    cats = np.repeat(np.arange(12), n_per_cat)
    base = np.array([[9 if c < 4 else 3, 9 if 4 <= c < 8 else 4, 9] for c in range(12)], dtype=float)
    return base[cats] + rng.normal(0, 0.5, (len(cats), 3)), [f"c{c}" for c in cats]


def test_kfold_holds_every_prompt_out_once():
    parts = kfold(23, 5, seed=3)
    assert len(parts) == 5 and sorted(np.concatenate(parts).tolist()) == list(range(23))
    assert [p.tolist() for p in kfold(23, 5, seed=3)] == [p.tolist() for p in parts]
    with pytest.raises(ValueError):
        kfold(3, 5, seed=0)


def test_informative_categories_beat_the_random_mix_and_category_free_does_not():
    scores, cats = specialists()
    models = [SMALL, MID, BIG]
    ev = evaluate(scores, cats, models, cost="total", folds=5, seed=1)
    assert (ev.cheapest, ev.best, ev.n_categories) == ("small", "big", 12)
    assert ev.hull_apgr == pytest.approx(0.5, abs=0.02)
    assert ev.apgr > 0.7 and ev.apgr_direct > 0.7
    # above the hull everywhere but just past the cheapest expert, where no map costs so little more
    assert ev.below_hull == 1 and ev.rows[1].coe < ev.rows[1].hull and ev.rows[1].avg_cost == 7
    assert all(r.oracle >= r.coe - 1e-9 for r in ev.rows)
    assert ev.oracle.score >= max(p.score for p in ev.experts)
    flat = evaluate(scores, ["all"] * len(cats), models, cost="total", folds=5, seed=1)
    assert flat.n_categories == 1 and flat.apgr < 0.1  # only single experts: a staircase under the hull
    assert flat.routellm is None


def test_rows_report_total_and_active_params_and_cost_kind():
    scores, cats = specialists()
    ev = evaluate(scores[:, :2], cats, [SMALL, MID], cost="active", folds=4, seed=0, n_budgets=10)
    assert len(ev.rows) == 10 and ev.rows[0].budget == 7 and ev.rows[-1].budget == 13
    for r in ev.rows:
        assert r.avg_cost == pytest.approx(r.avg_active_params) and r.avg_cost <= r.avg_total_params
    json.dumps(ev.to_dict())


def test_held_out_categories_never_seen_in_training_get_no_oracle_help():
    """Each prompt is its own category: training never sees a held-out category, so every held-out prompt goes
    to the map's main expert; an in-sample evaluation would have scored the per-prompt oracle instead."""
    rng = np.random.default_rng(5)
    scores = rng.integers(1, 11, (60, 2)).astype(float)
    ev = evaluate(scores, [str(i) for i in range(60)], [SMALL, BIG], cost="total", folds=5, seed=0)
    assert all(r.score <= scores.mean(axis=0).max() + 0.5 for r in ev.rows)
    assert ev.oracle.score > max(r.coe for r in ev.rows) + 1


def test_two_expert_pool_reports_routellm_metrics():
    scores, cats = specialists()
    ev = evaluate(scores[:, [0, 2]], cats, [SMALL, BIG], cost="total", folds=5, seed=2)
    rl = ev.routellm
    assert rl.strong_pct[0] == 0 and rl.strong_pct[-1] == 100 and rl.pgr[0] == 0 and rl.pgr[-1] == pytest.approx(1)
    assert 0.5 < rl.apgr <= 1.2 and 0 <= rl.cpt50 < 50


def test_bad_inputs():
    scores, cats = specialists()
    with pytest.raises(ValueError, match="complete"):
        evaluate(np.where(scores > 8.5, np.nan, scores), cats, [SMALL, MID, BIG], cost="total")
    with pytest.raises(ValueError, match="one category per prompt"):
        evaluate(scores, cats[:-1], [SMALL, MID, BIG], cost="total")
