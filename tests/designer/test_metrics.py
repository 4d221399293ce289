import math

import numpy as np
import pytest

from designer.engine.frontier import pareto_front
from designer.engine.metrics import Grid, apgr, hull_at, oracle_front, routellm_metrics, upper_hull


def test_upper_hull_keeps_the_rising_concave_envelope():
    costs = [7, 7, 13, 33, 47, 69, 100]
    scores = [3.7, 5.6, 1.5, 4.5, 6.6, 4.4, 6.6]  # 7B tie: the better one; 13B, 33B below; 69B and 100B after the top
    xs, ys = upper_hull(costs, scores)
    assert xs.tolist() == [7, 47] and ys.tolist() == [5.6, 6.6]
    assert hull_at((xs, ys), [7, 27, 47, 80]).tolist() == pytest.approx([5.6, 6.1, 6.6, 6.6])
    assert math.isnan(hull_at((xs, ys), [6])[0])
    xs, ys = upper_hull([1, 2, 3], [0, 0.9, 1])  # a concave middle vertex stays
    assert xs.tolist() == [1, 2, 3]


def test_grid_and_apgr_of_the_hull_is_one_half():
    grid = Grid.for_experts([10, 10, 30, 50], [2.0, 3.0, 5.0, 5.0], n=5)
    assert (grid.cheapest, grid.best) == (1, 2) and grid.budgets.tolist() == [10, 15, 20, 25, 30]
    line = hull_at(upper_hull([10, 30], [3.0, 5.0]), grid.budgets)
    assert apgr(line, 3.0, 5.0) == pytest.approx(0.5)
    assert apgr([5, 5, 5], 3.0, 5.0) == 1.0 and apgr([3, 3], 3.0, 5.0) == 0.0
    assert math.isnan(apgr([1.0], 2.0, 2.0))


def test_routellm_metrics_on_a_random_router_and_a_good_one():
    pct = np.linspace(0, 100, 11)
    random = routellm_metrics(pct, 8 + pct / 100, weak=8, strong=9)
    assert random.apgr == pytest.approx(0.5) and random.cpt50 == pytest.approx(50)
    good = routellm_metrics([100, 0, 20, 50], [9, 8, 8.8, 9.1], weak=8, strong=9)  # unsorted input
    assert good.strong_pct == [0, 20, 50, 100] and good.pgr == pytest.approx([0, 0.8, 1.1, 1])
    assert good.cpt50 == pytest.approx(12.5)
    assert good.apgr == pytest.approx((0.8 * 20 / 2 + (0.8 + 1.1) * 30 / 2 + (1.1 + 1) * 50 / 2) / 100)
    never = routellm_metrics([0, 100], [8, 8.4], weak=8, strong=9)
    assert never.cpt50 is None


def test_oracle_front_bounds_the_exact_one_tightly_and_shares_its_vertices():
    rng = np.random.default_rng(3)
    for _ in range(30):
        n, costs = int(rng.integers(1, 9)), rng.choice([7.0, 7.0, 13.0, 47.0, 70.0], 3)
        scores = rng.integers(1, 11, (n, 3)).astype(float)
        exact = pareto_front(scores, np.full(n, 1 / n), costs)
        xs, ys = oracle_front(scores, costs)
        gap = hull_at((xs, ys), exact.costs) - exact.qualities
        assert (gap >= -1e-9).all() and (gap <= 9 / n + 1e-9).all()  # scores span at most 9
        for x, y in zip(xs, ys):  # every vertex is a real per-prompt assignment on the exact front
            assert exact.qualities[exact.at_budget(x)] == pytest.approx(y)
        assert ys[-1] == pytest.approx(scores.max(axis=1).mean())
