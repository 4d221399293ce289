"""References for the designer's MMLU figures: maps over MMLU's own 57 subject labels.

python bench/designer_mmlu.py [--seeds 0-4] [--data ../shared/data]

A router sees only the question text, never the subject; these rows say what knowing the subject would give.
- in sample: the maps chosen and scored on all 14,042 questions (an optimistic ceiling, not a result);
- held out: the same 5-fold protocol as `evaluate_coe` (shrinkage chosen per fold, one split category), with every
  question's true subject as its category, as if a router recovered the subjects perfectly from the text.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from designer.engine.datasets import load_mmlu  # noqa: E402
from designer.engine.evaluation import evaluate  # noqa: E402
from designer.engine.frontier import pareto_front  # noqa: E402
from designer.engine.metrics import Grid, apgr, routellm_metrics  # noqa: E402
from designer.engine.shrinkage import STRENGTHS  # noqa: E402
from designer.engine.splits import split_front, stable_keys  # noqa: E402


def in_sample(bench, splits: bool) -> tuple[float, float, float]:
    """(APGR, RouteLLM APGR, CPT(50 %)) of the subject maps chosen and scored on all questions."""
    names, cat_of = np.unique(bench.categories, return_inverse=True)
    quality = np.array([bench.scores[cat_of == c].mean(axis=0) for c in range(len(names))])
    freq = np.bincount(cat_of) / len(cat_of)
    costs = np.array([m.total_params for m in bench.models])
    means = bench.scores.mean(axis=0)
    grid = Grid.for_experts(costs, means, 50)
    if splits:
        front = split_front(quality, freq, costs)
        points = [(m.cost, m.quality) for m in map(front.at_budget, grid.budgets)]
    else:
        front = pareto_front(quality, freq, costs)
        points = [(front.costs[i], front.qualities[i]) for i in map(front.at_budget, grid.budgets)]
    cost, score = np.array(points).T
    coe = [score[cost <= b * (1 + 1e-9)].max() for b in grid.budgets]
    weak, strong = grid.cheapest, grid.best
    pct = np.concatenate([[0.0], (cost - costs[weak]) / (costs[strong] - costs[weak]) * 100, [100.0]])
    rl = routellm_metrics(pct, np.concatenate([[means[weak]], score, [means[strong]]]), means[weak], means[strong])
    return apgr(coe, means[weak], means[strong]), rl.apgr, rl.cpt50


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4", help="first-last (inclusive)")
    parser.add_argument("--data", help="shared data folder (default: ../shared/data)")
    args = parser.parse_args()
    first, last = map(int, args.seeds.split("-"))
    bench = load_mmlu(args.data)
    for splits in (False, True):
        a, rl, cpt = in_sample(bench, splits)
        print(f"in sample, {'one split category' if splits else 'deterministic'}: APGR {a:.3f}, "
              f"RouteLLM APGR {rl:.3f}, CPT(50%) {cpt:.1f}%")
    keys = stable_keys(bench.prompts)
    rows = []
    for seed in range(first, last + 1):
        ev = evaluate(bench.scores, bench.categories, bench.models, cost="total", seed=seed, shrinkage=STRENGTHS,
                      splits=True, keys=keys)
        rows.append((ev.apgr, ev.routellm.apgr, ev.routellm.cpt50))
        print(f"held out, seed {seed}: APGR {ev.apgr:.3f}, RouteLLM APGR {ev.routellm.apgr:.3f}, "
              f"CPT(50%) {ev.routellm.cpt50:.1f}%")
    mean, low, high = np.mean(rows, axis=0), np.min(rows, axis=0), np.max(rows, axis=0)
    print("held out, mean [min, max]: " + ", ".join(
        f"{name} {m:.3f} [{lo:.3f}, {hi:.3f}]" for name, m, lo, hi in zip(("APGR", "RouteLLM APGR", "CPT(50%)"),
                                                                            mean, low, high)))


if __name__ == "__main__":
    main()
