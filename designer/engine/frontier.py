"""The exact quality-vs-average-cost Pareto front of category->expert maps.

Why this algorithm: with only an average-cost budget, choosing one expert per category is a multiple-choice
knapsack. Its exact front is built by adding one category at a time: every front point so far x every option
of the new category, then dominance pruning (sort by cost, keep only points that raise the best quality so far).
Each shifted copy of the front is already sorted, so a stable sort merges them fast, and adding the most
frequent categories first keeps the intermediate fronts small: 20 categories x 20 experts take well under
a second even when every option of every category is on the front (the worst case, tested in bench/).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_REL_TOL = 1e-12  # quality/cost differences below this (relative) are ties: keep the cheaper, lower point


@dataclass(frozen=True, eq=False)
class Front:
    """All non-dominated maps: costs and qualities strictly increase; `choices[i, c]` is the expert of
    category `c` in map `i`."""

    costs: np.ndarray
    qualities: np.ndarray
    choices: np.ndarray

    def at_budget(self, budget: float) -> int | None:
        """Index of the best map whose average cost is within `budget` (None when even the cheapest is not)."""
        i = int(np.searchsorted(self.costs, budget * (1 + 1e-9) + 1e-12, side="right")) - 1
        return i if i >= 0 else None


def _prune(costs: np.ndarray, qualities: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points, in increasing cost (and quality)."""
    order = np.argsort(costs, kind="stable")
    q = qualities[order]
    tol = _REL_TOL * max(1.0, float(np.max(np.abs(q))))
    keep = np.empty(len(q), dtype=bool)
    keep[0] = True
    keep[1:] = q[1:] > np.maximum.accumulate(q)[:-1] + tol
    idx = order[keep]
    c = costs[idx]
    # equal costs can survive in option order: only the last (best) of a run of equal costs is non-dominated
    last_of_run = np.append(c[1:] > c[:-1] + _REL_TOL * max(1.0, float(c[-1])), True)
    return idx[last_of_run]


def pareto_front(quality: np.ndarray, freq: np.ndarray, cost: np.ndarray) -> Front:
    """Exact front for expected quality sum_c freq[c]*quality[c, e(c)] vs average cost sum_c freq[c]*cost[e(c)].

    `quality` is C x E with NaN where an expert was not measured (never chosen); `freq` (C) and `cost` (E) are
    non-negative."""
    quality, freq, cost = (np.asarray(a, dtype=float) for a in (quality, freq, cost))
    n_cat = quality.shape[0]
    front_c, front_q = np.zeros(1), np.zeros(1)
    parents, picks = [], []
    order = np.argsort(-freq, kind="stable")
    for c in order:
        options = np.flatnonzero(~np.isnan(quality[c]))
        if not options.size:
            raise ValueError(f"category {c} has no measured expert")
        options = options[_prune(cost[options], quality[c, options])]  # dominated in this category: never used
        cand_c = (freq[c] * cost[options])[:, None] + front_c[None, :]
        cand_q = (freq[c] * quality[c, options])[:, None] + front_q[None, :]
        keep = _prune(cand_c.ravel(), cand_q.ravel())
        parents.append(keep % len(front_c))
        picks.append(options[keep // len(front_c)])
        front_c, front_q = cand_c.ravel()[keep], cand_q.ravel()[keep]
    choices = np.empty((len(front_c), n_cat), dtype=int)
    point = np.arange(len(front_c))
    for c, parent, pick in zip(order[::-1], parents[::-1], picks[::-1]):
        choices[:, c] = pick[point]
        point = parent[point]
    return Front(front_c, front_q, choices)
