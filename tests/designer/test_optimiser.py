import numpy as np
import pytest

from designer.engine.optimiser import Problem, best_map, sweep
from designer.engine.tables import CategoryScores, ModelInfo


def problem(quality, freq, cost, size=None) -> Problem:
    quality = np.asarray(quality, dtype=float)
    n_cat, n_exp = quality.shape
    return Problem(tuple(f"c{i}" for i in range(n_cat)), tuple(f"e{i}" for i in range(n_exp)), quality, freq, cost,
                   cost if size is None else size)


def random_problem(rng) -> Problem:
    n_cat, n_exp = int(rng.integers(3, 6)), int(rng.integers(2, 5))
    quality = rng.random((n_cat, n_exp))
    if rng.random() < 0.3:
        quality[rng.random((n_cat, n_exp)) < 0.2] = np.nan  # unmeasured pairs
        quality[np.isnan(quality).all(axis=1), 0] = 0.5
    cost = rng.uniform(1, 70, n_exp)
    return problem(quality, rng.random(n_cat) + 0.01, cost, cost * rng.uniform(1, 3, n_exp))


def test_milp_and_front_equal_exhaustive_search_on_random_small_instances():
    rng = np.random.default_rng(2024)
    kinds = {"average": 0, "size": 0, "both": 0, "none": 0, "infeasible": 0}
    for _ in range(300):
        p = random_problem(rng)
        kind = rng.choice(["average", "size", "both", "none"])
        budget = rng.uniform(p.cost.min() * 0.9, p.cost.max()) if kind in ("average", "both") else None
        size_budget = rng.uniform(p.size.min() * 0.9, p.size.sum()) if kind in ("size", "both") else None
        exact = best_map(p, budget, size_budget, method="exhaustive")
        solved = best_map(p, budget, size_budget, method="milp")
        assert (exact is None) == (solved is None)
        kinds["infeasible" if exact is None else kind] += 1
        if exact is None:
            continue
        assert solved.choice == exact.choice
        assert exact.avg_cost <= (budget or np.inf) + 1e-9 and exact.size <= (size_budget or np.inf) + 1e-9
        if size_budget is None:
            assert sweep(p, [budget if budget is not None else np.inf])[0].choice == exact.choice
    assert min(kinds.values()) >= 10  # every case was exercised


def test_unmeasured_expert_is_never_chosen_and_ties_go_to_the_cheaper():
    p = problem([[np.nan, 0.2, 0.9], [0.5, 0.5, 0.1]], [1, 1], [1, 2, 3])
    for method in ("exhaustive", "milp"):
        choice = best_map(p, method=method)
        assert choice.mapping == {"c0": "e2", "c1": "e0"}
        assert choice.quality == pytest.approx(0.7) and choice.avg_cost == pytest.approx(2) and choice.size == 4


def test_budgets_bind_and_no_fit_gives_none():
    p = problem([[1, 2, 3], [1, 2, 3]], [3, 1], [10, 20, 30], [10, 20, 100])
    assert best_map(p, 17.5, method="milp").mapping == {"c0": "e1", "c1": "e0"}  # 0.75*20 + 0.25*10
    assert best_map(p, size_budget=30, method="milp").mapping == {"c0": "e1", "c1": "e1"}
    assert best_map(p, 25, size_budget=110, method="milp").mapping == {"c0": "e2", "c1": "e0"}
    assert best_map(p, 25, size_budget=109.9, method="milp").mapping == {"c0": "e1", "c1": "e1"}
    for method in ("exhaustive", "milp"):
        assert best_map(p, 9.9, method=method) is None
        assert best_map(p, size_budget=9, method=method) is None
    assert sweep(p, [5, 17.5]) == [None, best_map(p, 17.5)]
    assert sweep(p, [17.5, 25], size_budget=30) == [best_map(p, 17.5, 30), best_map(p, 25, 30)]


def test_large_instances_agree_across_methods():
    rng = np.random.default_rng(7)
    cost = np.sort(rng.uniform(2, 100, 20))
    p = problem(np.log(cost) + rng.normal(0, 0.3, (20, 20)), rng.random(20), cost)
    for budget in (20, 45, 80):
        assert best_map(p, budget, method="milp").choice == best_map(p, budget).choice  # auto: the front
    p = problem(rng.random((20, 20)), rng.random(20), cost)
    choice = best_map(p, 40, size_budget=150)
    assert choice.avg_cost <= 40 and choice.size <= 150 and choice.quality <= best_map(p, 40).quality
    used = sorted(set(choice.choice))  # optimal for its own set of experts
    assert best_map(problem(p.quality[:, used], p.freq, cost[used]), 40).quality == pytest.approx(choice.quality)
    with pytest.raises(ValueError, match="size budget"):
        best_map(p, 40, size_budget=150, method="front")


def test_from_table_costs_frequencies_and_validation():
    table = CategoryScores("t", ["x", "y"], ["moe", "dense"], np.array([[1.0, 2.0], [3.0, 1.0]]), np.array([3, 1]))
    models = {"moe": ModelInfo("moe", 46.7, 12.9), "dense": ModelInfo("dense", 7, 7)}
    p = Problem.from_table(table, models, cost="active")
    assert p.cost.tolist() == [12.9, 7] and p.size.tolist() == [46.7, 7] and p.freq.tolist() == [0.75, 0.25]
    assert Problem.from_table(table, models, cost="total", freq={"y": 2}).freq.tolist() == [0, 1]
    table.counts = None
    assert Problem.from_table(table, models, cost="active").freq.tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="no expert measured for categories: c1"):
        problem([[1, 2], [np.nan, np.nan]], [1, 1], [1, 2])
    with pytest.raises(ValueError, match="non-negative"):
        problem([[1, 2]], [0], [1, 2])
    with pytest.raises(ValueError, match="categories x experts"):
        problem([[1, 2]], [1], [1, 2, 3])
