import itertools

import numpy as np
import pytest

from designer.engine.frontier import pareto_front


def brute_front(quality, freq, cost):
    """All maps, then the non-dominated (cost, quality) points, cheapest first."""
    n_cat, n_exp = quality.shape
    points = []
    for choice in itertools.product(range(n_exp), repeat=n_cat):
        q = [quality[c, e] for c, e in enumerate(choice)]
        if not np.isnan(q).any():
            points.append((float(freq @ cost[list(choice)]), float(freq @ q)))
    points.sort(key=lambda p: (p[0], -p[1]))
    front, best = [], -np.inf
    for c, q in points:
        if q > best + 1e-12:
            if front and abs(front[-1][0] - c) < 1e-12:
                front.pop()
            front.append((c, q))
            best = q
    return np.array(front)


def test_front_equals_brute_force_and_its_maps_reproduce_it():
    rng = np.random.default_rng(11)
    for _ in range(150):
        n_cat, n_exp = int(rng.integers(1, 6)), int(rng.integers(1, 5))
        quality = rng.integers(1, 6, (n_cat, n_exp)).astype(float) if rng.random() < 0.5 else rng.random((n_cat, n_exp))
        quality[rng.random((n_cat, n_exp)) < 0.15] = np.nan
        quality[np.isnan(quality).all(axis=1), -1] = 1.0
        freq, cost = rng.dirichlet(np.ones(n_cat)), rng.choice([7.0, 13.0, 46.7, 70.0], n_exp)
        front = pareto_front(quality, freq, cost)
        expected = brute_front(quality, freq, cost)
        np.testing.assert_allclose(np.c_[front.costs, front.qualities], expected, atol=1e-9)
        rows = np.arange(n_cat)
        np.testing.assert_allclose(front.choices @ np.zeros(n_cat) + (cost[front.choices] @ freq), front.costs)
        np.testing.assert_allclose(quality[rows, front.choices] @ freq, front.qualities)


def test_at_budget_picks_the_best_map_within_budget():
    front = pareto_front(np.array([[1.0, 2.0, 3.0]]), np.array([1.0]), np.array([10.0, 20.0, 30.0]))
    assert front.costs.tolist() == [10, 20, 30]
    assert [front.at_budget(b) for b in (9.99, 10, 25, 30, 1e9)] == [None, 0, 1, 2, 2]


def test_dominated_and_tied_options_are_dropped():
    # e1 costs more for the same quality; e2 is worse and dearer: only e0 and e3 remain
    front = pareto_front(np.array([[2.0, 2.0, 1.0, 5.0]]), np.array([1.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert front.choices[:, 0].tolist() == [0, 3]


def test_empty_category_is_an_error():
    with pytest.raises(ValueError, match="category 1 has no measured expert"):
        pareto_front(np.array([[1.0], [np.nan]]), np.array([0.5, 0.5]), np.array([1.0]))
