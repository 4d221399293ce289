"""How much of the designer's held-out APGR gap is the method, and how much the data? Per-prompt quality predictors
on the same prompts, folds and yardsticks as `evaluate_coe`.

python bench/designer_ceiling.py [--seeds 0-9] [--data ../shared/data]

A category map is a coarse router; a per-prompt predictor is the finest one. If per-prompt predictors of each
expert's score from the same prompt embeddings (the router's int8 MiniLM) do no better held out than the category
maps, the APGR is capped by what the prompts' embeddings (and a few hundred judgments) say about which expert
wins, not by the map method. Predictors (hyper-parameters chosen per outer fold by an inner 5-fold cross-validation
on the training prompts only, from grids fixed before any result was seen):
- kNN: an expert's predicted score is its mean over the K most similar training prompts (cosine), K in KS;
- ridge: a linear model of the embedding, per expert, alpha in ALPHAS;
- mt_bench only, kNN with arena_bench_v1's GPT-4-1106 / Mixtral judgments (same judge, same 1-10 scale) added to
  every fold's training prompts: the transfer RouteLLM relies on (it trained on Arena data).
Each held-out prompt goes to argmax_e (predicted score_e - lambda * cost_e); sweeping lambda gives held-out
(average cost, score) points and CoE(b) = the best score among points that spend at most b, as in evaluation.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import Ridge

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from designer.engine.datasets import ARENA_OPEN_POOL, MT_BENCH_PAIR, load_arena_bench_v1, load_mt_bench  # noqa: E402
from designer.engine.evaluation import kfold  # noqa: E402
from designer.engine.metrics import Grid, apgr, hull_at, upper_hull  # noqa: E402
from routing.engine.embedder import get_embedder  # noqa: E402

KS = (10, 20, 40, 80)
ALPHAS = (1.0, 3.0, 10.0, 30.0)
LAMBDAS = np.concatenate([[0.0], np.geomspace(1e-5, 10.0, 300)])


def knn(k):
    def predict(x_train, s_train, x_held):
        near = np.argsort(-(x_held @ x_train.T), axis=1)[:, :min(k, len(x_train))]
        return s_train[near].mean(axis=1)
    return predict


def ridge(alpha):
    return lambda x_train, s_train, x_held: Ridge(alpha=alpha).fit(x_train, s_train).predict(x_held)


def held_out_apgr(pred, scores, costs, n_budgets=50):
    """(APGR, budgets below the single-expert hull) of routing each prompt by its predicted scores."""
    means = scores.mean(axis=0)
    grid = Grid.for_experts(costs, means, n_budgets)
    pick = np.argmax(pred[None] - LAMBDAS[:, None, None] * costs[None, None], axis=2)  # lambdas x prompts
    spent, got = costs[pick].mean(axis=1), np.take_along_axis(scores.T, pick, axis=0).mean(axis=1)
    coe = np.array([got[spent <= b * (1 + 1e-9)].max(initial=-np.inf) for b in grid.budgets])
    hull = hull_at(upper_hull(costs, means), grid.budgets)
    return apgr(coe, means[grid.cheapest], means[grid.best]), int(np.sum(coe < hull - 1e-9))


def cross_predict(make, grid, x, scores, costs, seed, extra=None):
    """Out-of-fold predictions for every prompt; each outer fold picks its hyper-parameter by inner CV. `extra`
    (x, scores): prompts every fold (inner and outer) also trains on, never held out."""
    x_extra, s_extra = extra if extra is not None else (x[:0], scores[:0])
    pred = np.empty_like(scores)
    for held in kfold(len(x), 5, seed):
        train = np.setdiff1d(np.arange(len(x)), held)

        def inner(param):
            p = np.empty((len(train), scores.shape[1]))
            for inner_held in kfold(len(train), 5, seed):
                inner_train = np.setdiff1d(np.arange(len(train)), inner_held)
                p[inner_held] = make(param)(np.vstack([x[train][inner_train], x_extra]),
                                            np.vstack([scores[train][inner_train], s_extra]), x[train][inner_held])
            return held_out_apgr(p, scores[train], costs)[0]

        best = max(grid, key=inner)  # first wins ties
        pred[held] = make(best)(np.vstack([x[train], x_extra]), np.vstack([scores[train], s_extra]), x[held])
    return pred


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0-9", help="outer fold cuts, e.g. 0-9")
    parser.add_argument("--data", default=None, help="shared data folder (default ../shared/data)")
    args = parser.parse_args()
    lo, _, hi = args.seeds.partition("-")
    seeds = range(int(lo), int(hi or lo) + 1)
    embed = get_embedder()
    arena = load_arena_bench_v1(args.data)
    mt = load_mt_bench(args.data)
    pair = load_arena_bench_v1(args.data, pool=MT_BENCH_PAIR)  # arena prompts judged for GPT-4-1106 and Mixtral
    cases = [("arena_bench_v1", arena, ARENA_OPEN_POOL, None), ("mt_bench", mt, MT_BENCH_PAIR, None),
             ("mt_bench + arena judgments", mt, MT_BENCH_PAIR, pair)]
    print(f"seeds {seeds.start}-{seeds.stop - 1}, 5-fold held out, cost = total parameters; mean [min, max] over seeds")
    for name, bench, pool, extra in cases:
        x = embed.encode(bench.prompts)
        extra_xs = None if extra is None else (embed.encode(extra.prompts), extra.scores)
        costs = np.array([m.total_params for m in pool])
        for label, make, grid in (("kNN", knn, KS), ("ridge", ridge, ALPHAS)):
            if extra is not None and label == "ridge":
                continue
            runs = np.array([held_out_apgr(cross_predict(make, grid, x, bench.scores, costs, s, extra_xs),
                                           bench.scores, costs) for s in seeds])
            print(f"{name:28s} {label:6s} APGR {runs[:, 0].mean():.3f} [{runs[:, 0].min():.3f}, "
                  f"{runs[:, 0].max():.3f}]  budgets below hull {runs[:, 1].mean():.1f} of 50", flush=True)


if __name__ == "__main__":
    main()
