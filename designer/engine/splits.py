"""Maps with one split category: the upper concave envelope of the map front, which a router can serve.

Why: the exact front of category->expert maps is a staircase with few points, so just above the cheapest
expert (and between any two maps) it sits under the straight random-mix hull. Its LP relaxation (the
multiple-choice knapsack's greedy: every category's own hull steps, steepest quality-per-cost first) is the
upper concave envelope of the exact front: its vertices are maps, and between two adjacent vertices exactly one
category is split between two experts. So at any budget the best "map" routes every category to one expert but
one, whose prompts go to expert `to` when their key is below `share`.

Serving it: a prompt's key is a stable hash of its text (`stable_keys`: SHA-256, first 8 bytes as a fraction of
2**64), so the same prompt always goes to the same expert and the split category's share is deterministic, not
random per call. A router that stores a map with `split`, `to` and `share` routes a prompt of category `split`
to `to` when `stable_keys([prompt])[0] < share`, else to `choice[split]`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


def stable_keys(texts: Iterable[str]) -> np.ndarray:
    """Each text's key in [0, 1): the same on every machine and run (unlike Python's salted hash())."""
    return np.array([int.from_bytes(hashlib.sha256(t.encode("utf-8")).digest()[:8], "big") / 2.0 ** 64
                     for t in texts])


@dataclass(frozen=True)
class SplitMap:
    """`choice[c]`: expert of category c; category `split` (None: no split) sends `share` of its prompts (those
    with key < share) to expert `to` instead. `cost`/`quality` are its expected average cost and quality."""

    choice: np.ndarray
    split: int | None
    to: int
    share: float
    cost: float
    quality: float

    def route(self, cat_of: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Expert of each prompt, given its category index and key."""
        experts = self.choice[cat_of]
        if self.split is not None:
            experts = np.where((cat_of == self.split) & (keys < self.share), self.to, experts)
        return experts

    def traffic(self, freq: np.ndarray, n_experts: int) -> np.ndarray:
        """Expected share of prompts each expert gets."""
        load = np.bincount(self.choice, weights=freq, minlength=n_experts)
        if self.split is not None:
            moved = freq[self.split] * self.share
            load[self.choice[self.split]] -= moved
            load[self.to] += moved
        return load


def _hull(cost: np.ndarray, quality: np.ndarray, options: np.ndarray) -> list[int]:
    """Experts (among `options`) on the rising upper concave envelope of one category's (cost, quality) points,
    from its cheapest (best on ties) to its best (cheapest on ties); collinear points are dropped."""
    hull: list[int] = []
    for e in sorted(options, key=lambda e: (cost[e], -quality[e])):
        if hull and cost[e] == cost[hull[-1]]:
            continue
        if hull and quality[e] <= quality[hull[-1]]:
            continue  # costs more for no more quality: never on the rising part
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (quality[b] - quality[a]) * (cost[e] - cost[a]) > (quality[e] - quality[a]) * (cost[b] - cost[a]):
                break
            hull.pop()
        hull.append(e)
    return hull


@dataclass(frozen=True, eq=False)
class SplitFront:
    """The concave front: starting map `start`, then `steps` (category, from expert, to expert) in the order the
    greedy takes them; `costs`/`qualities` are the vertices (after 0, 1, ... steps)."""

    start: np.ndarray
    steps: np.ndarray  # (n_steps, 3) ints: category, from, to
    costs: np.ndarray
    qualities: np.ndarray

    def at_budget(self, budget: float) -> SplitMap | None:
        """The best map with at most one split category whose expected average cost is within `budget`."""
        tol = budget * 1e-9 + 1e-12
        if budget + tol < self.costs[0]:
            return None
        k = int(np.searchsorted(self.costs, budget + tol, side="right")) - 1  # full steps taken
        choice = self.start.copy()
        for c, _, to in self.steps[:k]:
            choice[c] = to
        if k == len(self.steps):
            return SplitMap(choice, None, 0, 0.0, float(self.costs[k]), float(self.qualities[k]))
        share = (budget - self.costs[k]) / (self.costs[k + 1] - self.costs[k])
        if share <= 1e-9:
            return SplitMap(choice, None, 0, 0.0, float(self.costs[k]), float(self.qualities[k]))
        c, _, to = self.steps[k]
        quality = self.qualities[k] + share * (self.qualities[k + 1] - self.qualities[k])
        return SplitMap(choice, int(c), int(to), float(share), float(budget), float(quality))


def split_front(quality: np.ndarray, freq: np.ndarray, cost: np.ndarray) -> SplitFront:
    """Upper concave envelope of the front of maps (see frontier.pareto_front for the arguments; NaN = unmeasured,
    never chosen)."""
    quality, freq, cost = (np.asarray(a, dtype=float) for a in (quality, freq, cost))
    start = np.empty(len(quality), dtype=int)
    steps, dcost, dqual = [], [], []
    for c, row in enumerate(quality):
        options = np.flatnonzero(~np.isnan(row))
        if not options.size:
            raise ValueError(f"category {c} has no measured expert")
        hull = _hull(cost, row, options)
        start[c] = hull[0]
        for a, b in zip(hull, hull[1:]):
            steps.append((c, a, b))
            dcost.append(freq[c] * (cost[b] - cost[a]))
            dqual.append(freq[c] * (row[b] - row[a]))
    dcost, dqual = np.array(dcost), np.array(dqual)
    keep = dcost > 0  # a category of zero frequency changes nothing
    steps = np.array(steps, dtype=int).reshape(-1, 3)[keep]
    dcost, dqual = dcost[keep], dqual[keep]
    order = np.argsort(-dqual / dcost, kind="stable")  # within a category slopes strictly fall: order kept
    base_c = float(freq @ cost[start])
    base_q = float(freq @ quality[np.arange(len(quality)), start])
    return SplitFront(start, steps[order], base_c + np.concatenate([[0.0], np.cumsum(dcost[order])]),
                      base_q + np.concatenate([[0.0], np.cumsum(dqual[order])]))
