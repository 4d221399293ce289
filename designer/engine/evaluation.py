"""Honest evaluation of category-level CoE maps: choose on training folds, score on held-out folds.

Protocol (K-fold over prompts, shuffled with `seed`). For each fold, from the training prompts only: category
quality = mean training score per (category, model), frequencies = training share of each category; the exact
front gives, for each budget b of the grid, the best map with training average cost <= b. That map routes the
fold's held-out prompts (a category never seen in training goes to the expert carrying most of the map's
training traffic). Every prompt is held out exactly once, so each budget yields one held-out score and one
realised held-out average cost over all prompts.

CoE(b) = the best held-out score among the budgets' maps whose *realised* held-out average cost is <= b: the
front drawn from held-out points, never crediting a map that overspent b. `apgr_direct` instead scores each
budget's own map, overspend or not, as a check that the envelope flatters little.

Two options change how maps are chosen (never how they are scored): `shrinkage` pulls small categories' means
toward each expert's overall mean (shrinkage.py), with its strength fixed or chosen per outer fold by an inner
K-fold evaluation of the training prompts alone; `splits` lets a map split one category between two experts by a
stable hash of the prompt (splits.py), so each budget's map spends its training budget fully.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .frontier import pareto_front
from .metrics import Grid, RouteLLMMetrics, apgr, hull_at, oracle_front, routellm_metrics, upper_hull
from .shrinkage import category_quality
from .splits import SplitMap, split_front, stable_keys
from .tables import ModelInfo

# (training prompt indices, held-out prompt indices) -> (their category labels), learned from training prompts only
Categoriser = Callable[[np.ndarray, np.ndarray], tuple[Sequence[str], Sequence[str]]]


@dataclass(frozen=True)
class BudgetRow:
    budget: float  # average-cost budget the maps were chosen for, on training folds
    score: float  # held-out score of those maps
    avg_cost: float  # their realised held-out average cost (the chosen parameter kind)
    avg_total_params: float
    avg_active_params: float
    coe: float  # CoE(b), see the module docstring
    hull: float  # random mix of single experts at b
    oracle: float  # per-prompt oracle at average cost <= b (metrics.oracle_front)


@dataclass(frozen=True)
class Point:
    """A single expert, or the unconstrained per-prompt oracle, on all prompts."""

    name: str
    score: float
    avg_total_params: float
    avg_active_params: float


@dataclass(frozen=True)
class Evaluation:
    cost: str
    folds: int
    seed: int
    n_prompts: int
    n_categories: int  # distinct categories; for a Categoriser, the most any fold's training prompts had
    experts: list[Point]
    cheapest: str
    best: str
    oracle: Point
    rows: list[BudgetRow]
    apgr: float
    apgr_direct: float
    hull_apgr: float
    below_hull: int  # grid budgets where CoE(b) < hull(b): a step front can dip under a straight hull
    routellm: RouteLLMMetrics | None  # two-expert pools only
    splits: bool = False  # maps could split one category (splits.py)
    shrinkage: list[dict] = field(default_factory=list)  # per outer fold: strength used (and inner APGRs if tuned)

    def to_dict(self) -> dict:
        return asdict(self)


def kfold(n: int, folds: int, seed: int) -> list[np.ndarray]:
    """Held-out index sets: a seeded shuffle cut into `folds` near-equal parts."""
    if not 2 <= folds <= n:
        raise ValueError(f"need 2 <= folds <= prompts ({n}), got {folds}")
    return np.array_split(np.random.default_rng(seed).permutation(n), folds)


def evaluate(scores, categories: Sequence[str] | Categoriser, models: Sequence[ModelInfo], *, cost: str,
             folds: int = 5, seed: int = 0, n_budgets: int = 50, shrinkage: float | Sequence[float] = 0.0,
             splits: bool = False, keys=None) -> Evaluation:
    """`scores[p, m]`: prompt p judged for `models[m]` (complete: see PromptScores.complete); `categories[p]`:
    the router's category for prompt p, or a Categoriser that learns categories on each fold's training prompts
    (e.g. subclusters.ClusterCategoriser); `cost`: 'total' or 'active' parameters per prompt.

    `shrinkage`: strength m of shrinkage.category_quality, or candidates for it, chosen in each outer fold by the
    APGR of an inner `folds`-fold evaluation (same options) of that fold's training prompts and categories;
    `splits`: maps may split one category, by `keys[p]` in [0, 1) (default: stable_keys of the prompt indices;
    give stable_keys(prompt texts) to match what a router serves)."""
    scores = np.asarray(scores, dtype=float)
    n_prompts, n_models = scores.shape
    if callable(categories):
        categorise = categories
    else:
        fixed = np.asarray(categories, dtype=str)
        categorise = lambda train, held: (fixed[train], fixed[held])  # noqa: E731
    if np.isnan(scores).any() or (not callable(categories) and len(categories) != n_prompts) \
            or len(models) != n_models:
        raise ValueError("need a complete prompts x models score matrix and one category per prompt")
    costs = np.array([m.params(cost) for m in models])
    totals = np.array([m.total_params for m in models])
    actives = np.array([m.active_params for m in models])
    means = scores.mean(axis=0)
    grid = Grid.for_experts(costs, means, n_budgets)
    n_categories = 0 if callable(categories) else len(set(fixed))

    if splits:
        keys = stable_keys(map(str, range(n_prompts))) if keys is None else np.asarray(keys, dtype=float)
    assigned = np.empty((n_budgets, n_prompts), dtype=int)  # expert of each held-out prompt, per budget
    tuning = []
    for held in kfold(n_prompts, folds, seed):
        train = np.setdiff1d(np.arange(n_prompts), held)
        train_labels, held_labels = categorise(train, held)
        names, cat_of = np.unique(np.concatenate([np.asarray(train_labels, dtype=str),
                                                  np.asarray(held_labels, dtype=str)]), return_inverse=True)
        train_of, held_of = cat_of[:len(train)], cat_of[len(train):]
        seen, counts = np.unique(train_of, return_counts=True)
        n_categories = max(n_categories, len(seen))
        if np.isscalar(shrinkage):
            tuning.append({"strength": float(shrinkage)})
        else:
            tuning.append(_tune_strength(scores[train], names[train_of], models, cost=cost, candidates=shrinkage,
                                         folds=folds, seed=seed, n_budgets=n_budgets, splits=splits,
                                         keys=None if keys is None else keys[train]))
        quality = category_quality(scores[train], train_of, seen, tuning[-1]["strength"])
        freq = counts / counts.sum()
        map_at = split_front(quality, freq, costs).at_budget if splits else _deterministic(quality, freq, costs)
        per_cat = np.empty(len(names), dtype=int)
        for i, budget in enumerate(grid.budgets):
            smap = map_at(budget)  # never None: all-cheapest costs exactly the minimum
            per_cat[:] = smap.traffic(freq, n_models).argmax()  # a category unseen in training: the busiest expert
            per_cat[seen] = smap.choice
            full = replace(smap, choice=per_cat, split=None if smap.split is None else int(seen[smap.split]))
            assigned[i, held] = full.route(held_of, None if keys is None else keys[held])

    held_scores = np.take_along_axis(scores, assigned.T, axis=1).mean(axis=0)
    held_costs = costs[assigned].mean(axis=1)
    coe = [held_scores[held_costs <= b * (1 + 1e-9)].max(initial=-np.inf) for b in grid.budgets]
    hull = hull_at(upper_hull(costs, means), grid.budgets)
    oracle = hull_at(oracle_front(scores, costs), grid.budgets)
    rows = [BudgetRow(*map(float, r)) for r in zip(grid.budgets, held_scores, held_costs, totals[assigned].mean(axis=1),
                                                   actives[assigned].mean(axis=1), coe, hull, oracle)]
    top = scores.max(axis=1, keepdims=True)
    best_per_prompt = np.where(scores == top, costs, np.inf).argmin(axis=1)  # cheapest of the best, per prompt
    low, high = means[grid.cheapest], means[grid.best]
    return Evaluation(
        cost, folds, seed, n_prompts, n_categories,
        [Point(m.name, float(s), m.total_params, m.active_params) for m, s in zip(models, means)],
        models[grid.cheapest].name, models[grid.best].name,
        Point("oracle", float(top.mean()), float(totals[best_per_prompt].mean()),
              float(actives[best_per_prompt].mean())),
        rows, apgr(coe, low, high), apgr(held_scores, low, high), apgr(hull, low, high),
        int(np.sum(np.asarray(coe) < hull - 1e-9)),
        _two_expert(assigned, held_scores, costs, means), splits, tuning,
    )


def _deterministic(quality, freq, costs):
    """The exact front's best map at a budget, as a SplitMap without a split (one code path with splits)."""
    front = pareto_front(quality, freq, costs)

    def at_budget(budget):
        i = front.at_budget(budget)
        return SplitMap(front.choices[i], None, 0, 0.0, float(front.costs[i]), float(front.qualities[i]))
    return at_budget


def _tune_strength(scores, labels, models, *, candidates, **options) -> dict:
    """The shrinkage strength with the best APGR of an inner held-out evaluation on these (training) prompts
    alone; the first candidate wins ties."""
    inner = {float(m): evaluate(scores, labels, models, shrinkage=float(m), **options).apgr for m in candidates}
    return {"strength": max(inner, key=inner.get), "inner_apgr": inner}


def _two_expert(assigned: np.ndarray, held_scores: np.ndarray, costs: np.ndarray, means: np.ndarray):
    """RouteLLM's metrics for a weak/strong pair: operating points are the budgets' held-out (strong %, score),
    plus always-weak (0 %) and always-strong (100 %), as RouteLLM's extreme thresholds give."""
    if len(costs) != 2 or costs[0] == costs[1]:
        return None
    weak, strong = np.argsort(costs)
    pct = np.concatenate([[0.0], (assigned == strong).mean(axis=1) * 100, [100.0]])
    points = np.concatenate([[means[weak]], held_scores, [means[strong]]])
    return routellm_metrics(pct, points, means[weak], means[strong])
