"""Yardsticks for a CoE front: the random-mix hull of single experts, APGR over a budget grid, and RouteLLM's
two-model metrics (PGR, APGR, CPT).

Why a hull: sending a random share of prompts to each expert achieves any convex combination of the single
experts' (cost, score) points, with no router at all. A CoE is only worth its router if it beats that upper
hull, so the APGR here normalises by the cheapest and best single experts: the hull itself scores about 0.5
(exactly 0.5 when it is a straight line between the two), the best single expert's score everywhere scores 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def upper_hull(costs, scores) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (costs, scores) of the rising part of the upper concave envelope of single-expert points,
    from the cheapest (best of the cheapest, on ties) to the best-scoring expert."""
    costs, scores = np.asarray(costs, dtype=float), np.asarray(scores, dtype=float)
    hull: list[tuple[float, float]] = []
    for x, y in sorted(zip(costs, scores), key=lambda p: (p[0], -p[1])):
        if hull and x == hull[-1][0]:
            continue  # same cost, lower score
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (y2 - y1) * (x - x1) > (y - y1) * (x2 - x1):  # hull[-1] lies above the chord: keep it
                break
            hull.pop()
        hull.append((x, y))
    top = int(np.argmax([y for _, y in hull]))
    xs, ys = zip(*hull[: top + 1])
    return np.array(xs), np.array(ys)


def hull_at(hull: tuple[np.ndarray, np.ndarray], budgets) -> np.ndarray:
    """What a random mix achieves at each average-cost budget (flat beyond the best expert's cost)."""
    xs, ys = hull
    budgets = np.asarray(budgets, dtype=float)
    budgets = np.where(np.isclose(budgets, xs[0], rtol=1e-9, atol=1e-12), xs[0], budgets)  # rounding at the start
    return np.interp(budgets, xs, ys, left=np.nan)


def oracle_front(scores, costs) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (average cost, average score) of the per-prompt oracle's front: each prompt may go to any expert.

    Why not the exact front: with real-valued scores over thousands of prompts it has too many points to build.
    This is its LP relaxation (the multiple-choice knapsack's greedy over each prompt's hull steps, steepest
    first): at most one prompt is split between two experts, so it exceeds the exact oracle by at most
    (max - min score) / prompts, and its vertices are exact oracle points."""
    scores, costs = np.asarray(scores, dtype=float), np.asarray(costs, dtype=float)
    hulls = [upper_hull(costs, row) for row in scores]
    start_c, start_q = sum(xs[0] for xs, _ in hulls), sum(ys[0] for _, ys in hulls)
    dc = np.concatenate([np.diff(xs) for xs, _ in hulls])
    dq = np.concatenate([np.diff(ys) for _, ys in hulls])
    order = np.argsort(-dq / dc, kind="stable")
    xs = np.concatenate([[start_c], start_c + np.cumsum(dc[order])]) / len(scores)
    ys = np.concatenate([[start_q], start_q + np.cumsum(dq[order])]) / len(scores)
    return xs, ys


@dataclass(frozen=True)
class Grid:
    """The APGR budget grid: `n` evenly spaced budgets from the cheapest expert's cost to the best expert's."""

    budgets: np.ndarray
    cheapest: int  # index of the cheapest expert (best-scoring among equally cheap ones)
    best: int  # index of the best-scoring expert (cheapest among equally good ones)

    @classmethod
    def for_experts(cls, costs, scores, n: int = 50) -> Grid:
        costs, scores = np.asarray(costs, dtype=float), np.asarray(scores, dtype=float)
        cheapest = int(np.lexsort((-scores, costs))[0])
        best = int(np.lexsort((costs, -scores))[0])
        return cls(np.linspace(costs[cheapest], costs[best], n), cheapest, best)


def apgr(values, low: float, high: float) -> float:
    """Mean over the grid of (value - low) / (high - low): 0 = cheapest expert's score, 1 = best expert's."""
    if high <= low:
        return float("nan")  # the cheapest expert is already the best: nothing to gain
    return float(np.mean((np.asarray(values, dtype=float) - low) / (high - low)))


@dataclass(frozen=True)
class RouteLLMMetrics:
    """RouteLLM's two-model metrics (Ong et al., 2024; lm-sys/RouteLLM routellm/evals/evaluate.py):
    PGR(x) = (score - weak) / (strong - weak) at x % strong calls; APGR = area under PGR over the
    strong-call % axis (trapezoid, as a fraction of the axis covered); CPT(t) = the least % of strong calls
    at which PGR reaches t, linearly interpolated along the curve."""

    strong_pct: list[float]
    pgr: list[float]
    apgr: float
    cpt50: float | None


def routellm_metrics(strong_pct, scores, weak: float, strong: float, target: float = 0.5) -> RouteLLMMetrics:
    """`strong_pct` (0-100) and `scores` are the router's operating points; `weak`/`strong` the single models."""
    order = np.argsort(np.asarray(strong_pct, dtype=float), kind="stable")
    x = np.asarray(strong_pct, dtype=float)[order]
    pgr = (np.asarray(scores, dtype=float)[order] - weak) / (strong - weak)
    area = np.trapezoid(pgr, x) / (x[-1] - x[0]) if x[-1] > x[0] else float(pgr[0])
    return RouteLLMMetrics(x.tolist(), pgr.tolist(), float(area), _first_crossing(x, pgr, target))


def _first_crossing(x: np.ndarray, y: np.ndarray, target: float) -> float | None:
    """RouteLLM uses np.interp(target, y, x), which assumes y increases; this is the same on a rising curve
    and still the first crossing on one that dips."""
    if y[0] >= target:
        return float(x[0])
    up = np.flatnonzero((y[:-1] < target) & (y[1:] >= target))
    if not up.size:
        return None
    i = up[0]
    return float(x[i] + (target - y[i]) * (x[i + 1] - x[i]) / (y[i + 1] - y[i]))
