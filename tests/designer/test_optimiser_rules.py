"""The designer's optimiser and metrics, rule by rule: what a problem must be and how it is normalised, what a map
achieves and costs, which maps a budget admits (with its rounding slack), how ties are broken, which method 'auto'
picks, what each solver does at its edges, and the yardsticks (hull, grid, APGR, RouteLLM's metrics) on hand-worked
numbers. Written to kill mutants of designer/engine/optimiser.py and metrics.py (scripts/mutation.sh designer);
the large randomised agreement between the solvers is in test_optimiser.py."""
import math
import types

import numpy as np
import pytest

from designer.engine import optimiser
from designer.engine.metrics import Grid, apgr, hull_at, oracle_front, routellm_metrics, upper_hull
from designer.engine.optimiser import EXHAUSTIVE_LIMIT, MapChoice, Problem, best_map, sweep
from designer.engine.tables import CategoryScores, ModelInfo

METHODS = ("exhaustive", "milp")


def problem(quality, freq, cost, size=None, categories=None) -> Problem:
    quality = np.asarray(quality, dtype=float)
    n_cat, n_exp = quality.shape
    return Problem(tuple(categories or (f"c{i}" for i in range(n_cat))), tuple(f"e{i}" for i in range(n_exp)),
                   quality, freq, cost, cost if size is None else size)


# -- the problem ---------------------------------------------------------------------------------------------

def test_a_problem_stores_float_arrays_and_normalises_the_frequencies():
    p = Problem(("c0", "c1"), ("e0", "e1"), [[1, 2], [3, 4]], [[1], [3]], [[5, 6]], [7, 8])  # lists of whole numbers
    assert p.freq.tolist() == [0.25, 0.75] and p.cost.tolist() == [5.0, 6.0] and p.size.tolist() == [7.0, 8.0]
    assert p.quality.tolist() == [[1, 2], [3, 4]]
    assert [a.dtype for a in (p.quality, p.freq, p.cost, p.size)] == [np.dtype(float)] * 4


@pytest.mark.parametrize("quality, freq, cost, size", [
    ([[1, 2, 3]], [1], [1, 2], [1, 2]),        # quality has more experts than costs
    ([[1, 2], [1, 2]], [1], [1, 2], [1, 2]),   # quality has more categories than frequencies
    ([[1, 2]], [1, 1], [1, 2], [1, 2]),        # more frequencies than categories
    ([[1, 2]], [1], [1, 2, 3], [1, 2]),        # more costs than experts
    ([[1, 2]], [1], [1, 2], [1, 2, 3]),        # more sizes than experts
    ([1, 2], [1], [1, 2], [1, 2]),             # quality is not a table
])
def test_every_array_must_match_the_categories_and_experts(quality, freq, cost, size):
    with pytest.raises(ValueError, match=r"^quality must be categories x experts; freq per category; cost and size "
                                         r"per expert$"):
        Problem(("c0",) if len(freq) == 1 else ("c0", "c1"), ("e0", "e1"), np.asarray(quality, dtype=float), freq,
                cost, size)


@pytest.mark.parametrize("freq, cost, size", [
    ([-1, 2], [1, 2], [1, 2]), ([0, 0], [1, 2], [1, 2]), ([1, 1], [-1, 2], [1, 2]), ([1, 1], [1, 2], [1, -2]),
])
def test_frequencies_costs_and_sizes_must_be_non_negative_with_some_traffic(freq, cost, size):
    with pytest.raises(ValueError, match=r"^frequencies, costs and sizes must be non-negative, with some traffic$"):
        problem([[1, 2], [3, 4]], freq, cost, size)


def test_zero_costs_sizes_and_one_silent_category_are_allowed():
    p = problem([[1, 2], [3, 4]], [0, 1], [0, 0], [0, 0])
    assert p.freq.tolist() == [0, 1] and best_map(p).mapping == {"c0": "e0", "c1": "e1"}


def test_categories_no_expert_was_measured_on_are_named():
    with pytest.raises(ValueError, match=r"^no expert measured for categories: b, c$"):
        problem([[1, np.nan], [np.nan, np.nan], [np.nan, np.nan]], [1, 1, 1], [1, 2], categories=["a", "b", "c"])


def test_from_table_takes_costs_by_kind_sizes_as_totals_and_frequencies_by_name():
    table = CategoryScores("t", ["x", "y", "z"], ["moe", "dense"], np.array([[1.0, 2.0], [3.0, 1.0], [2.0, 2.0]]),
                           np.array([1, 2, 1]))
    models = {"moe": ModelInfo("moe", 46.7, 12.9), "dense": ModelInfo("dense", 7, 7), "unused": ModelInfo("u", 1, 1)}
    p = Problem.from_table(table, models, cost="total", freq={"y": 3, "z": 1, "other": 9})
    assert (p.categories, p.experts) == (("x", "y", "z"), ("moe", "dense"))
    assert p.cost.tolist() == [46.7, 7] and p.size.tolist() == [46.7, 7] and p.freq.tolist() == [0, 0.75, 0.25]
    assert Problem.from_table(table, models, cost="active").freq.tolist() == [0.25, 0.5, 0.25]
    assert Problem.from_table(table, models, cost="active").cost.tolist() == [12.9, 7]
    table.counts = None
    assert Problem.from_table(table, models, cost="active").freq.tolist() == pytest.approx([1 / 3] * 3)
    with pytest.raises(ValueError, match="parameter kind"):
        Problem.from_table(table, models, cost="both")


def test_a_map_reports_its_choice_names_expected_quality_average_cost_and_deployed_size():
    p = problem([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [1, 1, 2], [10, 20, 30], [100, 200, 300])
    choice = p.choice([2, 0, 2])
    assert choice == MapChoice((2, 0, 2), {"c0": "e2", "c1": "e0", "c2": "e2"}, pytest.approx(0.25 * 3 + 0.25 * 4 +
                                                                                              0.5 * 9),
                               pytest.approx(0.25 * 30 + 0.25 * 10 + 0.5 * 30), 400.0)
    assert all(type(e) is int for e in choice.choice)
    assert type(choice.quality) is float and type(choice.avg_cost) is float and type(choice.size) is float


def test_the_front_of_a_problem_is_the_exact_quality_cost_front():
    front = problem([[1, 3], [2, 2]], [1, 1], [1, 5]).front()
    assert front.costs.tolist() == [1, 3] and front.qualities.tolist() == [1.5, 2.5]
    assert front.choices.tolist() == [[0, 0], [1, 0]]


# -- budgets and ties ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ("exhaustive", "front", "auto"))
def test_a_budget_admits_maps_up_to_a_relative_slack_of_a_billionth(method):
    p = problem([[1, 2]], [1], [1, 1000])
    assert best_map(p, 1000 * (1 - 0.5e-9), method=method).mapping == {"c0": "e1"}  # rounding: still admitted
    assert best_map(p, 1000 * (1 - 2e-9), method=method).mapping == {"c0": "e0"}


def test_the_milp_admits_a_map_at_its_budget_and_refuses_one_above_it():
    """HiGHS's own feasibility tolerance (about 1e-7) is coarser than the slack, so only clear cases are stated."""
    p = problem([[1, 2]], [1], [1, 1000], [1, 1000])
    assert best_map(p, 1000 * (1 - 0.5e-9), method="milp").mapping == {"c0": "e1"}
    assert best_map(p, 999, method="milp").mapping == {"c0": "e0"}
    assert best_map(p, size_budget=1000 * (1 - 0.5e-9), method="milp").mapping == {"c0": "e1"}
    assert best_map(p, size_budget=999, method="milp").mapping == {"c0": "e0"}


def test_a_size_budget_has_the_same_slack():
    p = problem([[1, 2]], [1], [1, 1], [1, 1000])
    assert best_map(p, size_budget=1000 * (1 - 0.5e-9), method="exhaustive").mapping == {"c0": "e1"}
    assert best_map(p, size_budget=1000 * (1 - 2e-9), method="exhaustive").mapping == {"c0": "e0"}


@pytest.mark.parametrize("method", ("exhaustive", "front"))
def test_a_zero_budget_admits_only_what_costs_less_than_a_trillionth(method):
    p = problem([[3, 2, 1]], [1], [2e-12, 0.5e-12, 0])
    assert best_map(p, 0, method=method).mapping == {"c0": "e1"}


def test_a_map_costing_exactly_the_budget_with_its_slack_is_admitted():
    p = problem([[1, 2]], [1], [0, 1e-12])
    assert best_map(p, 0, method="exhaustive").mapping == {"c0": "e1"}  # 1e-12 <= 0 * (1 + 1e-9) + 1e-12


def test_the_slack_is_a_billionth_plus_a_trillionth():
    assert optimiser._slack(10.0) == 10.0 * (1 + 1e-9) + 1e-12
    assert optimiser._within(1e30, None) is True


@pytest.mark.parametrize("method", METHODS)
def test_no_map_within_the_budgets_gives_none(method):
    p = problem([[1, 2], [1, 2]], [1, 1], [10, 20], [10, 20])
    assert best_map(p, 9.9, method=method) is None
    assert best_map(p, size_budget=9.9, method=method) is None
    assert best_map(p, 20, size_budget=9.9, method=method) is None


@pytest.mark.parametrize("method", METHODS + ("front",))
def test_an_unmeasured_expert_is_never_chosen_even_where_it_would_be_free(method):
    p = problem([[np.nan, 0.5], [0.2, 0.1]], [1, 1], [0, 10], [0, 10])
    assert best_map(p, method=method).mapping == {"c0": "e1", "c1": "e0"}
    assert best_map(p, 4.9, method=method) is None


@pytest.mark.parametrize("method", METHODS + ("front",))
def test_equal_quality_goes_to_the_cheaper_map(method):
    p = problem([[5, 5, 5], [1, 2, 2]], [1, 1], [30, 10, 20])
    assert best_map(p, method=method).mapping == {"c0": "e1", "c1": "e1"}


def test_equal_quality_and_cost_goes_to_the_smaller_deployment():
    p = problem([[5, 5, 5]], [1], [10, 10, 10], [30, 10, 20])
    assert best_map(p, method="exhaustive").mapping == {"c0": "e1"}


@pytest.mark.parametrize("method", METHODS)
def test_with_one_quality_everywhere_the_cheapest_map_wins(method):
    p = problem([[3, 3, 3], [3, 3, 3]], [1, 2], [30, 10, 20])
    assert best_map(p, method=method).choice == (1, 1)
    free = problem([[3, 3], [3, 3]], [1, 1], [0, 0])
    assert best_map(free, method=method).quality == 3.0


@pytest.mark.parametrize("method", METHODS)
def test_a_map_is_one_expert_per_category_and_a_size_budget_counts_each_expert_once(method):
    # the best map uses e2 twice (size 5 once); e0 and e1 in different categories would be 6
    p = problem([[1, 9, 8], [9, 1, 8]], [1, 1], [1, 1, 1], [3, 3, 5])
    assert best_map(p, size_budget=5, method=method).mapping == {"c0": "e2", "c1": "e2"}
    assert best_map(p, size_budget=6, method=method).mapping == {"c0": "e1", "c1": "e0"}


@pytest.mark.parametrize("method", METHODS)
def test_an_average_budget_weighs_each_category_by_its_frequency(method):
    p = problem([[1, 2], [1, 2]], [3, 1], [10, 20])
    assert best_map(p, 17.5, method=method).mapping == {"c0": "e1", "c1": "e0"}  # 0.75 * 20 + 0.25 * 10
    assert best_map(p, 12.5, method=method).mapping == {"c0": "e0", "c1": "e1"}


def test_the_milp_keeps_tiny_quality_differences_apart():
    p = problem([[1.0, 1.0 + 1e-6], [0, 0]], [1, 1], [1, 2])
    assert best_map(p, method="milp").mapping == {"c0": "e1", "c1": "e0"}
    big = problem([[1e6, 1e6 + 1], [0, 0]], [1, 1], [1, 2])
    assert best_map(big, method="milp").mapping == {"c0": "e1", "c1": "e0"}


def test_the_milp_maximises_quality_when_every_quality_is_negative():
    p = problem([[-3.0, -1.0], [-2.0, -2.5]], [1, 1], [1, 2])  # e.g. log-likelihoods
    assert best_map(p, method="milp").mapping == {"c0": "e1", "c1": "e0"}


def test_the_milp_weighs_quality_over_cost_whatever_their_scales():
    # a quality gain of a millionth of its range beats a cost twice as high, with costs in the thousands...
    p = problem([[1.0, 1.0 + 1e-6], [0.0, 0.0]], [1, 1], [1000, 2000])
    assert best_map(p, method="milp").mapping == {"c0": "e1", "c1": "e0"}
    # ... and with qualities a millionth apart in all
    assert best_map(problem([[0.0, 1e-6]], [1], [1, 2]), method="milp").mapping == {"c0": "e1"}


def test_the_milp_breaks_quality_ties_by_cost_whatever_the_cost_scale():
    for cost in ([0.002, 0.001, 0.003], [2000, 1000, 3000]):
        assert best_map(problem([[5, 5, 5]], [1], cost), method="milp").mapping == {"c0": "e1"}


def test_the_milp_is_exact_where_the_solvers_default_gap_would_stop_early():
    """An instance (7 categories, 5 experts, both budgets) where HiGHS with its default 0.01 % relative gap returns
    a map of quality 0.84138 instead of the best, 0.84146: the MILP is run with no gap."""
    q = [[0.842, 0.825, 0.193, 0.616, 0.653], [0.543, 0.541, 0.488, 0.034, 0.208],
         [0.861, 0.863, 0.745, 0.111, 0.844], [0.441, 0.053, 0.992, 0.755, 0.586],
         [0.282, 0.398, 0.78, 0.508, 0.093], [0.142, 0.768, 0.064, 0.462, 0.898],
         [0.738, 0.238, 0.178, 0.341, 0.111]]
    p = problem(q, [0.82, 0.13, 0.39, 0.74, 0.26, 0.26, 0.64], [31.9, 19.9, 62.5, 41.0, 40.1],
                [37.9, 20.1, 182.4, 78.5, 79.9])
    exact = best_map(p, 38.9, 385.1, method="exhaustive")
    assert best_map(p, 38.9, 385.1, method="milp").choice == exact.choice


def test_the_milp_prints_nothing(capfd):
    """On this instance HiGHS's presolve writes a debug line to the process's output, which would corrupt JSON that a
    command prints (e.g. evaluate_coe --json): the MILP runs without presolve."""
    q = [[0.248, 0.614, 0.044, 0.826], [0.346, 0.35, 0.946, 0.098], [0.8, 0.837, 0.944, 0.946],
         [0.633, 0.1, 0.796, 0.009], [0.051, 0.639, 0.92, 0.901], [0.749, 0.766, 0.342, 0.898],
         [0.084, 0.051, 0.467, 0.0], [0.768, 0.609, 0.897, 0.128]]
    p = problem(q, [0.13, 0.04, 0.71, 0.73, 0.61, 0.85, 0.11, 0.66], [8.0, 38.2, 61.5, 18.4])
    exact = best_map(p, 25.5, method="front")
    capfd.readouterr()
    assert best_map(p, 25.5, method="milp").choice == exact.choice
    assert capfd.readouterr() == ("", "")


def test_a_failing_solver_is_an_error_saying_why(monkeypatch):
    monkeypatch.setattr(optimiser, "milp", lambda *a, **kw: types.SimpleNamespace(status=1, message="time limit"))
    with pytest.raises(RuntimeError, match=r"^MILP solver failed: time limit$"):
        best_map(problem([[1, 2]], [1], [1, 2]), method="milp")
    monkeypatch.setattr(optimiser, "milp", lambda *a, **kw: types.SimpleNamespace(status=2, message="infeasible"))
    assert best_map(problem([[1, 2]], [1], [1, 2]), method="milp") is None


def test_too_many_maps_to_enumerate_is_refused_naming_the_count():
    p = problem(np.ones((18, 2)), np.ones(18), [1, 2])
    with pytest.raises(ValueError, match=r"^2\^18 maps are too many to enumerate; use method='milp'$"):
        best_map(p, method="exhaustive")
    assert best_map(problem(np.ones((17, 2)), np.ones(17), [1, 2]), method="exhaustive").choice == (0,) * 17


def test_the_front_takes_no_size_budget():
    with pytest.raises(ValueError, match=r"^the front handles the average-cost budget only; use method='milp' with a "
                                         r"size budget$"):
        best_map(problem([[1, 2]], [1], [1, 2]), size_budget=3, method="front")


# -- which method ------------------------------------------------------------------------------------------

@pytest.fixture
def solvers(monkeypatch):
    """Which solver each best_map call used (each still solves)."""
    used = []
    for name in ("_exhaustive", "_front", "_milp"):
        real = getattr(optimiser, name)
        monkeypatch.setattr(optimiser, name, lambda *a, _n=name, _r=real: used.append(_n) or _r(*a))
    return used


@pytest.mark.parametrize("n_exp, n_cat, size_budget, used", [
    (4, 6, None, "_exhaustive"), (4, 6, 100, "_exhaustive"),   # 4096 maps: still enumerated
    (5, 6, None, "_front"), (5, 6, 100, "_milp"),              # 15625 maps
    (2, 12, None, "_exhaustive"), (2, 13, 100, "_milp"),
])
def test_auto_enumerates_up_to_4096_maps_then_uses_the_front_or_with_a_size_budget_the_milp(
        solvers, n_exp, n_cat, size_budget, used):
    assert EXHAUSTIVE_LIMIT == 4096
    rng = np.random.default_rng(n_exp * 100 + n_cat)
    p = problem(rng.random((n_cat, n_exp)), np.ones(n_cat), np.arange(1, n_exp + 1))
    best_map(p, 3, size_budget)
    assert solvers == [used]


def test_a_sweep_reads_the_front_without_a_size_budget_and_solves_each_budget_with_one(solvers):
    p = problem([[1, 2], [1, 3]], [1, 1], [10, 20], [10, 20])
    assert [c and c.mapping for c in sweep(p, [5, 15, 20])] == [None, {"c0": "e0", "c1": "e1"},
                                                                {"c0": "e1", "c1": "e1"}]
    assert solvers == []  # one front, read at each budget
    assert [c and c.mapping for c in sweep(p, [15, 20], size_budget=20)] == [{"c0": "e0", "c1": "e0"},
                                                                            {"c0": "e1", "c1": "e1"}]
    assert solvers == ["_exhaustive", "_exhaustive"]


def test_the_front_without_a_budget_is_its_best_map_and_below_its_cheapest_none():
    p = problem([[1, 3], [2, 2]], [1, 1], [1, 5])
    assert best_map(p, method="front").mapping == {"c0": "e1", "c1": "e0"}
    assert best_map(p, 0.5, method="front") is None


# -- metrics -------------------------------------------------------------------------------------------------

def test_the_hull_drops_points_on_or_below_a_chord_and_stops_at_the_best_expert():
    xs, ys = upper_hull([3, 1, 2, 4, 5], [2, 0, 1, 4, 1])  # (2, 1) lies on the chord from (1, 0) to (3, 2)
    assert xs.tolist() == [1, 4] and ys.tolist() == [0, 4]
    xs, ys = upper_hull([1, 2, 3], [0, 1.5, 2])  # above the chord: kept
    assert xs.tolist() == [1, 2, 3] and ys.tolist() == [0, 1.5, 2]


def test_the_hull_keeps_every_vertex_of_a_concave_run_and_drops_collinear_ones():
    xs, ys = upper_hull([1, 2, 3, 4], [0, 3, 5, 6])  # slopes 3, 2, 1: all vertices
    assert xs.tolist() == [1, 2, 3, 4] and ys.tolist() == [0, 3, 5, 6]
    xs, ys = upper_hull([1, 2, 3], [0, 1, 2])  # one straight line: its ends
    assert xs.tolist() == [1, 3] and ys.tolist() == [0, 2]
    xs, ys = upper_hull([1, 2], [2, 5])  # a cost equal to the previous score is no tie
    assert xs.tolist() == [1, 2] and ys.tolist() == [2, 5]


def test_the_yardsticks_are_floats_whatever_numbers_they_are_given():
    xs, ys = upper_hull([7, 13], [3, 5])
    assert (xs.dtype, ys.dtype) == (np.dtype(float), np.dtype(float))
    m = routellm_metrics([0, 100], [8, 10], weak=8, strong=10)
    assert [type(v) for v in m.strong_pct + m.pgr] == [float] * 4


def test_the_hull_keeps_the_best_of_equally_cheap_experts_and_the_cheapest_of_equally_good_ones():
    xs, ys = upper_hull([2, 1, 1, 3], [5, 1, 2, 5])
    assert xs.tolist() == [1, 2] and ys.tolist() == [2, 5]


def test_a_single_expert_is_its_own_hull():
    xs, ys = upper_hull([7], [3])
    assert xs.tolist() == [7] and ys.tolist() == [3]


def test_the_hull_read_at_budgets_interpolates_is_flat_beyond_and_undefined_below():
    hull = (np.array([10.0, 30.0]), np.array([1.0, 3.0]))
    values = hull_at(hull, [10, 20, 30, 40])
    assert values.tolist() == [1.0, 2.0, 3.0, 3.0]
    assert math.isnan(hull_at(hull, [9.999])[0])
    assert hull_at(hull, [10 * (1 - 0.5e-9)]).tolist() == [1.0]  # rounding just below the start
    assert math.isnan(hull_at(hull, [10 * (1 - 1e-6)])[0])  # a millionth below is below
    at_zero = (np.array([0.0, 10.0]), np.array([1.0, 3.0]))
    assert hull_at(at_zero, [-0.5e-12]).tolist() == [1.0] and math.isnan(hull_at(at_zero, [-1e-10])[0])


def test_the_oracle_front_takes_each_prompts_steepest_steps_first():
    # prompt 0's hull gains 3 for 10 (0.3 per unit); prompt 1's (1 for 10 lies under its chord) 5 for 20 (0.25)
    xs, ys = oracle_front([[0, 3, 3], [0, 1, 5]], [0, 10, 20])
    assert xs.tolist() == [0, 5, 15] and ys.tolist() == pytest.approx([0, 1.5, 4])
    xs, ys = oracle_front([[0, 1, 5], [0, 3, 3]], [0, 10, 20])  # the order of the prompts does not matter
    assert xs.tolist() == [0, 5, 15] and ys.tolist() == pytest.approx([0, 1.5, 4])


def test_oracle_steps_of_equal_slope_are_taken_in_prompt_order():
    # per prompt, one step: A 10 -> +5 and B 20 -> +10 (B's middle point lies on its chord) both at slope 0.5, C 10 ->
    # +10 at slope 1; the steepest first, equal slopes in prompt order
    kinds = "BBABCBBBBBCACABAACBC"
    scores = {"A": [0, 5, 5], "B": [0, 1, 10], "C": [0, 10, 10]}
    step = {"A": (10, 5), "B": (20, 10), "C": (10, 10)}
    xs, ys = oracle_front([scores[k] for k in kinds], [0, 10, 20])
    order = sorted(range(len(kinds)), key=lambda i: -step[kinds[i]][1] / step[kinds[i]][0])  # sorted() is stable
    assert xs.tolist() == pytest.approx([0] + list(np.cumsum([step[kinds[i]][0] for i in order]) / len(kinds)))
    assert ys.tolist() == pytest.approx([0] + list(np.cumsum([step[kinds[i]][1] for i in order]) / len(kinds)))


def test_operating_points_at_the_same_strong_share_keep_their_order():
    pct = [50] * 10 + [0] * 5 + [100] * 5
    scores = [8 + i / 10 for i in range(20)]
    m = routellm_metrics(pct, scores, weak=8, strong=10)
    assert m.pgr == pytest.approx([(s - 8) / 2 for s in scores[10:15] + scores[:10] + scores[15:]])


def test_the_grid_runs_from_the_cheapest_to_the_best_expert_with_50_budgets_by_default():
    grid = Grid.for_experts([20, 10, 10, 40, 30], [4, 2, 3, 5, 5])
    assert (grid.cheapest, grid.best) == (2, 4) and len(grid.budgets) == 50
    assert grid.budgets[0] == 10 and grid.budgets[-1] == 30 and grid.budgets[1] == pytest.approx(10 + 20 / 49)
    assert Grid.for_experts([1, 2], [1, 2], n=3).budgets.tolist() == [1, 1.5, 2]


def test_apgr_is_the_mean_gain_between_the_cheapest_and_best_scores():
    assert apgr([3, 4, 5], 3.0, 5.0) == pytest.approx(0.5)
    assert apgr([3.5, 5.5], 3.0, 5.0) == pytest.approx(0.75)
    assert math.isnan(apgr([1.0], 2.0, 2.0)) and math.isnan(apgr([1.0], 3.0, 2.0))
    assert type(apgr([3], 3.0, 5.0)) is float


def test_routellm_metrics_sort_the_points_and_integrate_pgr_over_the_strong_share():
    m = routellm_metrics([50, 0, 100], [8.5, 8, 10], weak=8, strong=10)
    assert m.strong_pct == [0, 50, 100] and m.pgr == [0, 0.25, 1]
    assert m.apgr == pytest.approx((0 + 0.25) * 50 / 2 / 100 + (0.25 + 1) * 50 / 2 / 100)
    assert m.cpt50 == pytest.approx(50 + (0.5 - 0.25) * 50 / 0.75)
    assert type(m.apgr) is float


def test_one_operating_point_is_its_own_apgr_and_a_partial_axis_is_normalised_by_its_span():
    assert routellm_metrics([30], [9], weak=8, strong=10).apgr == 0.5
    assert routellm_metrics([20, 60], [8, 10], weak=8, strong=10).apgr == pytest.approx(0.5)


def test_cpt_is_the_first_crossing_of_the_target():
    assert routellm_metrics([0, 100], [9, 10], weak=8, strong=10).cpt50 == 0  # already there at the start
    dips = routellm_metrics([0, 25, 50, 75, 100], [8, 9.2, 8.5, 9.5, 10], weak=8, strong=10, target=0.5)
    assert dips.cpt50 == pytest.approx(0 + (0.5 - 0) * 25 / 0.6)
    exactly = routellm_metrics([0, 40, 100], [8, 9, 10], weak=8, strong=10)
    assert exactly.cpt50 == 40
    assert routellm_metrics([0, 100], [8, 9.4], weak=8, strong=10, target=0.75).cpt50 is None
    assert routellm_metrics([0, 100], [8, 9.4], weak=8, strong=10, target=0.7).cpt50 == pytest.approx(100)
