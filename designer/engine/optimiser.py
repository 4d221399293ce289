"""Choose the category->expert map with the best expected quality under parameter budgets.

Two budgets, either or both:
- average cost per prompt, sum_c f_c * cost[e(c)] <= budget, where cost is total or active parameters
  (what each prompt pays: compute for active, memory traffic for total);
- size of the deployment, the sum of total parameters over the distinct experts used <= size_budget
  (every expert used must be resident, whatever share of traffic it gets).

Exact in every case: exhaustive search where the map space is small; the exact Pareto front (frontier.py) for an
average-cost budget alone; otherwise an integer program (scipy.optimize.milp / HiGHS) with binary x[c, e]
(category c -> expert e) and binary y[e] (expert e used), x <= y. Ties in quality go to the cheaper map, so a
budget never buys parameters that add nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from .frontier import Front, pareto_front
from .tables import CategoryScores, ModelInfo

EXHAUSTIVE_LIMIT = 4096  # maps; below this, enumerating is faster than setting up a MILP


def _slack(limit: float) -> float:
    """A budget with a relative slack, so a budget equal to a map's cost (up to rounding) admits it."""
    return limit * (1 + 1e-9) + 1e-12


def _within(value, limit):
    return True if limit is None else value <= _slack(limit)


@dataclass(frozen=True)
class MapChoice:
    """A chosen map: expert index per category, the same by name, and what it achieves and costs."""

    choice: tuple[int, ...]
    mapping: dict[str, str]
    quality: float
    avg_cost: float
    size: float


@dataclass(frozen=True, eq=False)
class Problem:
    """Categories x experts: quality (NaN = not measured, never chosen), category frequencies (normalised here),
    per-prompt cost of each expert, and each expert's size (total parameters) for the deployment budget."""

    categories: tuple[str, ...]
    experts: tuple[str, ...]
    quality: np.ndarray
    freq: np.ndarray
    cost: np.ndarray
    size: np.ndarray

    def __post_init__(self):
        quality = np.asarray(self.quality, dtype=float)
        freq, cost, size = (np.asarray(a, dtype=float).ravel() for a in (self.freq, self.cost, self.size))
        n_cat, n_exp = len(self.categories), len(self.experts)
        if quality.shape != (n_cat, n_exp) or freq.shape != (n_cat,) or cost.shape != (n_exp,) \
                or size.shape != (n_exp,):
            raise ValueError("quality must be categories x experts; freq per category; cost and size per expert")
        if (freq < 0).any() or freq.sum() <= 0 or (cost < 0).any() or (size < 0).any():
            raise ValueError("frequencies, costs and sizes must be non-negative, with some traffic")
        blind = [c for c, row in zip(self.categories, quality) if np.isnan(row).all()]
        if blind:
            raise ValueError(f"no expert measured for categories: {', '.join(blind)}")
        for name, value in (("quality", quality), ("freq", freq / freq.sum()), ("cost", cost), ("size", size)):
            object.__setattr__(self, name, value)

    @classmethod
    def from_table(cls, table: CategoryScores, models: Mapping[str, ModelInfo], *, cost: str,
                   freq: Mapping[str, float] | None = None) -> Problem:
        """From a quality table and models file; `cost` is 'total' or 'active' parameters per prompt (no default:
        the paper budgets active parameters, memory-bound serving pays total). Frequencies: `freq` by category
        name (e.g. routed traffic), else the table's prompt counts, else uniform."""
        if freq is not None:
            weights = [freq.get(c, 0.0) for c in table.categories]
        else:
            weights = table.counts if table.counts is not None else np.ones(len(table.categories))
        infos = [models[m] for m in table.models]
        return cls(tuple(table.categories), tuple(table.models), table.scores, weights,
                   [i.params(cost) for i in infos], [i.total_params for i in infos])

    def choice(self, experts: Sequence[int]) -> MapChoice:
        """Evaluate a map given as one expert index per category."""
        experts = np.asarray(experts, dtype=int)
        rows = np.arange(len(self.categories))
        return MapChoice(
            tuple(int(e) for e in experts),
            {c: self.experts[e] for c, e in zip(self.categories, experts)},
            float(self.freq @ self.quality[rows, experts]),
            float(self.freq @ self.cost[experts]),
            float(self.size[np.unique(experts)].sum()),
        )

    def front(self) -> Front:
        """The exact quality-vs-average-cost front (no deployment-size budget)."""
        return pareto_front(self.quality, self.freq, self.cost)


def _exhaustive(p: Problem, budget: float | None, size_budget: float | None) -> np.ndarray | None:
    n_cat, n_exp = p.quality.shape
    if n_exp ** n_cat > 200_000:
        raise ValueError(f"{n_exp}^{n_cat} maps are too many to enumerate; use method='milp'")
    maps = np.array(list(itertools.product(range(n_exp), repeat=n_cat)), dtype=int).reshape(-1, n_cat)
    q = p.quality[np.arange(n_cat), maps]
    quality = np.where(np.isnan(q), 0.0, q) @ p.freq
    avg = p.cost[maps] @ p.freq
    used = np.zeros((len(maps), n_exp), dtype=bool)
    used[np.arange(len(maps))[:, None], maps] = True
    size = used @ p.size
    ok = ~np.isnan(q).any(axis=1) & _within(avg, budget) & _within(size, size_budget)
    if not ok.any():
        return None
    idx = np.flatnonzero(ok)
    return maps[idx[np.lexsort((size[idx], avg[idx], -quality[idx]))[0]]]


def _milp(p: Problem, budget: float | None, size_budget: float | None) -> np.ndarray | None:
    n_cat, n_exp = p.quality.shape
    n_x = n_cat * n_exp
    n_y = n_exp if size_budget is not None else 0
    gain = np.concatenate([(p.freq[:, None] * np.nan_to_num(p.quality)).ravel(), np.zeros(n_y)])
    spend = np.concatenate([(p.freq[:, None] * p.cost[None, :]).ravel(), np.zeros(n_y)])
    pad = sparse.csr_matrix((n_cat, n_y))
    constraints = [LinearConstraint(sparse.hstack([sparse.kron(sparse.eye(n_cat), np.ones((1, n_exp))), pad]), 1, 1)]
    if budget is not None:
        constraints.append(LinearConstraint(spend[None, :], -np.inf, _slack(budget)))
    if n_y:
        link = sparse.hstack([sparse.eye(n_x), -sparse.kron(np.ones((n_cat, 1)), sparse.eye(n_exp))])
        constraints += [LinearConstraint(link, -np.inf, 0),
                        LinearConstraint(np.r_[np.zeros(n_x), p.size][None, :], -np.inf, _slack(size_budget))]
    upper = np.concatenate([(~np.isnan(p.quality)).ravel(), np.ones(n_y)]).astype(float)
    # HiGHS stops within an absolute gap of 1e-6: quality is rescaled so its range is 1e4, making that gap
    # 1e-10 of the range. Ties go to the cheaper map: the whole cost range is worth 1e-9 of the quality range.
    span = float(np.nanmax(p.quality) - np.nanmin(p.quality)) or 1.0
    objective = 1e4 * (1e-9 * spend / max(float(p.cost.max()), 1e-12) - gain / span)
    # presolve off: HiGHS's presolve prints a stray debug line to stdout (it would corrupt JSON output), and
    # these programs solve as fast without it
    result = milp(objective, constraints=constraints, integrality=np.ones(n_x + n_y),
                  bounds=Bounds(0, upper), options={"mip_rel_gap": 0, "presolve": False})
    if result.status == 2:
        return None
    if result.status != 0:
        raise RuntimeError(f"MILP solver failed: {result.message}")
    return result.x[:n_x].reshape(n_cat, n_exp).argmax(axis=1)


def _front(p: Problem, budget: float | None, size_budget: float | None) -> np.ndarray | None:
    if size_budget is not None:
        raise ValueError("the front handles the average-cost budget only; use method='milp' with a size budget")
    front = p.front()
    i = front.at_budget(np.inf if budget is None else budget)
    return None if i is None else front.choices[i]


def best_map(problem: Problem, budget: float | None = None, size_budget: float | None = None,
             method: str = "auto") -> MapChoice | None:
    """The map of best expected quality with average cost <= `budget` and deployment size <= `size_budget`
    (None = no such limit); None when no map fits. `method`: 'auto' (exhaustive when small, else the exact front
    for an average-cost budget alone, else the MILP), 'exhaustive', 'front' or 'milp'."""
    if method == "auto":
        small = len(problem.experts) ** len(problem.categories) <= EXHAUSTIVE_LIMIT
        method = "exhaustive" if small else "front" if size_budget is None else "milp"
    solve = {"exhaustive": _exhaustive, "front": _front, "milp": _milp}[method]
    experts = solve(problem, budget, size_budget)
    return None if experts is None else problem.choice(experts)


def sweep(problem: Problem, budgets: Sequence[float], size_budget: float | None = None) -> list[MapChoice | None]:
    """Best map at each average-cost budget (a Pareto plot's slider): read off the exact front, or one MILP
    per budget when a deployment-size budget couples the categories."""
    if size_budget is not None:
        return [best_map(problem, b, size_budget) for b in budgets]
    front = problem.front()
    picks = [front.at_budget(b) for b in budgets]
    return [None if i is None else problem.choice(front.choices[i]) for i in picks]
