import numpy as np
import pytest

from designer.engine.frontier import pareto_front
from designer.engine.metrics import hull_at, upper_hull
from designer.engine.splits import SplitMap, split_front, stable_keys


def instances(n=150, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        n_cat, n_exp = rng.integers(1, 6), rng.integers(2, 5)
        quality = rng.uniform(0, 10, (n_cat, n_exp))
        quality[rng.random(quality.shape) < 0.15] = np.nan
        quality[:, rng.integers(n_exp)] = rng.uniform(0, 10, n_cat)  # every category measured somewhere
        freq = rng.dirichlet(np.ones(n_cat))
        cost = rng.choice([7.0, 13.0, 47.0, 70.0], n_exp)  # repeated costs on purpose
        yield quality, freq, cost


def test_split_front_is_the_concave_envelope_of_the_map_front():
    for quality, freq, cost in instances():
        exact, split = pareto_front(quality, freq, cost), split_front(quality, freq, cost)
        slopes = np.diff(split.qualities) / np.diff(split.costs)
        assert np.all(np.diff(split.costs) > 0) and np.all(slopes > 0)
        assert np.all(np.diff(slopes) <= 1e-9)  # concave
        # its vertices are maps of the exact front; between them it is at or above every exact map
        assert split.costs[0] == pytest.approx(exact.costs[0]) and split.qualities[-1] == pytest.approx(
            exact.qualities[-1])
        assert np.all(np.interp(exact.costs, split.costs, split.qualities) >= exact.qualities - 1e-9)
        for budget in np.linspace(exact.costs[0], exact.costs[-1] * 1.1, 23):
            smap, det = split.at_budget(budget), exact.qualities[exact.at_budget(budget)]
            assert smap.cost <= budget * (1 + 1e-9) and smap.quality >= det - 1e-9
            # the stated cost and quality are the map's own (one category at most is split)
            share = np.zeros(len(quality))
            if smap.split is not None:
                share[smap.split] = smap.share
            q = (1 - share) * quality[np.arange(len(quality)), smap.choice] + share * np.nan_to_num(
                quality[np.arange(len(quality)), np.full(len(quality), smap.to)])
            c = (1 - share) * cost[smap.choice] + share * cost[smap.to]
            assert freq @ q == pytest.approx(smap.quality) and freq @ c == pytest.approx(smap.cost)
        assert split.at_budget(exact.costs[0] * 0.9) is None


def test_split_front_is_above_the_single_expert_hull_in_sample():
    for quality, freq, cost in instances(seed=1):
        if np.isnan(quality).any():
            continue  # a single expert is a map only when it is measured everywhere
        split = split_front(quality, freq, cost)
        singles = freq @ quality
        xs, ys = upper_hull(cost, singles)
        budgets = np.linspace(xs[0], xs[-1], 17)
        front = np.array([split.at_budget(b).quality for b in budgets])
        assert np.all(front >= hull_at((xs, ys), budgets) - 1e-9)


def test_a_split_routes_the_share_of_keys_below_it():
    smap = SplitMap(np.array([0, 1]), split=0, to=2, share=0.25, cost=0.0, quality=0.0)
    cat_of, keys = np.array([0, 0, 0, 1]), np.array([0.1, 0.3, 0.9, 0.1])
    assert smap.route(cat_of, keys).tolist() == [2, 0, 0, 1]
    assert smap.traffic(np.array([0.8, 0.2]), 3).tolist() == pytest.approx([0.6, 0.2, 0.2])


def test_stable_keys_are_uniform_and_do_not_change():
    keys = stable_keys(f"prompt {i}" for i in range(2000))
    assert keys.min() >= 0 and keys.max() < 1 and abs(keys.mean() - 0.5) < 0.02
    assert stable_keys(["hello"])[0] == pytest.approx(0.1755723, abs=1e-7)  # SHA-256 of the UTF-8 text
