"""Designer-side figures for docs/EVALUATION.md on the shared real data, without the router:
python -m designer.engine.report [--data DIR] [--seeds N]

Categories here are the data sets' own labels (MT-Bench, WildBench) or none at all (arena_bench_v1), so these
are baselines for the routed figures, which use `datasets.evaluate_benchmark(bench, categories_for)`.
"""

from __future__ import annotations

import argparse

import numpy as np

from .datasets import evaluate_benchmark, load_arena_bench_v1, load_mt_bench, load_wildbench
from .evaluation import Evaluation
from .frontier import pareto_front
from .metrics import Grid, apgr, hull_at, routellm_metrics, upper_hull
from .optimiser import Problem
from .shrinkage import STRENGTHS, category_quality
from .splits import split_front, stable_keys

IMPROVED = {"shrinkage": STRENGTHS, "splits": True}  # docs/EVALUATION.md, "Improving held-out APGR"


def _spread(values) -> str:
    values = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    return f"{np.nanmean(values):.3f} [{np.nanmin(values):.3f}, {np.nanmax(values):.3f}]"


def _experts(ev: Evaluation) -> str:
    lines = ["| expert | total B | active B | score |", "|---|---:|---:|---:|"]
    lines += [f"| {p.name} | {p.avg_total_params:g} | {p.avg_active_params:g} | {p.score:.3f} |" for p in ev.experts]
    o = ev.oracle
    lines.append(f"| per-prompt oracle | {o.avg_total_params:.1f} avg | {o.avg_active_params:.1f} avg "
                 f"| {o.score:.3f} |")
    return "\n".join(lines)


def _rows(ev: Evaluation, every: int = 7) -> str:
    lines = ["| budget B | CoE(b) | map's own held-out score | its avg total B | its avg active B | hull | oracle |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.budget:.1f} | {r.coe:.3f} | {r.score:.3f} | {r.avg_total_params:.1f} | {r.avg_active_params:.1f}"
              f" | {r.hull:.3f} | {r.oracle:.3f} |"
              for r in (ev.rows[i] for i in sorted({*range(0, len(ev.rows), every), len(ev.rows) - 1}))]
    return "\n".join(lines)


def _summary(label: str, runs: list[Evaluation]) -> str:
    text = (f"| {label} | {runs[0].n_categories} | {_spread(r.apgr for r in runs)} | "
            f"{_spread(r.apgr_direct for r in runs)} | {np.mean([r.below_hull for r in runs]):.1f} |")
    if runs[0].routellm:
        text += (f" {_spread(r.routellm.apgr for r in runs)} | "
                 f"{_spread(r.routellm.cpt50 for r in runs)} |")
    return text


def held_out(data: str | None, seeds: int) -> str:
    arena, mt = load_arena_bench_v1(data), load_mt_bench(data)
    length = ["short" if len(p) < 150 else "medium" if len(p) < 500 else "long" for p in arena.prompts]
    by_length = [evaluate_benchmark(arena, lambda _: length, cost="total", seed=s) for s in range(seeds)]
    arena_flat = [evaluate_benchmark(arena, lambda _: ["all"] * len(length), cost="total", seed=s) for s in range(seeds)]
    mt_own = [evaluate_benchmark(mt, lambda _: mt.categories, cost="total", seed=s) for s in range(seeds)]
    mt_flat = [evaluate_benchmark(mt, lambda _: ["all"] * len(mt.prompts), cost="total", seed=s) for s in range(seeds)]
    arena_keys, mt_keys = stable_keys(arena.prompts), stable_keys(mt.prompts)
    by_length_improved = [evaluate_benchmark(arena, lambda _: length, cost="total", seed=s, keys=arena_keys,
                                             **IMPROVED) for s in range(seeds)]
    mt_own_improved = [evaluate_benchmark(mt, lambda _: mt.categories, cost="total", seed=s, keys=mt_keys,
                                          **IMPROVED) for s in range(seeds)]
    head = "| categories | n | APGR (CoE(b)) | APGR (map's own score) | budgets below hull (of 50) |"
    return "\n".join([
        f"### arena_bench_v1: open pool, {len(arena.prompts)} prompts (dropped {arena.dropped} with a missing "
        f"judgment), cost = total parameters, 5-fold, seeds 0-{seeds - 1}: mean [min, max]", "",
        head, "|---|---:|---:|---:|---:|",
        _summary("no categories (one for all)", arena_flat),
        _summary("prompt length, 3 fixed buckets (<150, <500 chars)", by_length),
        _summary("prompt length, shrinkage auto, one split category", by_length_improved), "",
        "Single experts, oracle (all prompts):", "", _experts(by_length[0]), "",
        "Per budget, prompt-length buckets, seed 0:", "", _rows(by_length[0]), "",
        f"### mt_bench: GPT-4-1106 vs Mixtral-8x7B, {len(mt.prompts)} questions, 5-fold, seeds 0-{seeds - 1}", "",
        head + " RouteLLM APGR | RouteLLM CPT(50%) |", "|---|---:|---:|---:|---:|---:|---:|",
        _summary("MT-Bench's own 8 categories", mt_own),
        _summary("MT-Bench's own 8 categories, shrinkage auto, one split category", mt_own_improved),
        _summary("no categories (one for all)", mt_flat), "",
        in_sample(mt), "", _experts(mt_own[0]), "",
        "Per budget, own categories, seed 0 (GPT-4's size is a placeholder: read budgets as the share of GPT-4 "
        "calls):", "", _rows(mt_own[0]),
    ])


def in_sample(bench) -> str:
    """The ceiling of maps on these categories: chosen and scored on the same prompts (not a held-out figure)."""
    names, cat_of = np.unique(bench.categories, return_inverse=True)
    counts = np.bincount(cat_of)
    quality = category_quality(bench.scores, cat_of, np.arange(len(names)))
    costs = np.array([m.total_params for m in bench.models])
    freq = counts / counts.sum()
    front, split = pareto_front(quality, freq, costs), split_front(quality, freq, costs)
    means = bench.scores.mean(axis=0)
    grid = Grid.for_experts(costs, means)
    coe = [front.qualities[front.at_budget(b)] for b in grid.budgets]
    split_coe = [split.at_budget(b).quality for b in grid.budgets]
    weak, strong = np.argsort(costs)
    pct = (front.choices == strong) @ freq * 100
    rl = routellm_metrics(np.r_[0, pct, 100], np.r_[means[weak], front.qualities, means[strong]],
                          means[weak], means[strong])
    low, high = means[grid.cheapest], means[grid.best]
    return (f"In sample (maps chosen and scored on all {len(bench.prompts)} questions, an optimistic ceiling for "
            f"these categories): APGR {apgr(coe, low, high):.3f}, "
            f"RouteLLM APGR {rl.apgr:.3f}, CPT(50%) {rl.cpt50:.1f}%; with one split category, APGR "
            f"{apgr(split_coe, low, high):.3f}.")


def wildbench(data: str | None) -> str:
    """Category-level table only (no prompts, so nothing to hold out): the designer's front, in sample."""
    table, models = load_wildbench(data)
    problem = Problem.from_table(table, models, cost="total")
    front = problem.front()
    singles = problem.quality.T @ problem.freq
    grid = Grid.for_experts(problem.cost, singles)
    coe = [front.qualities[front.at_budget(b)] for b in grid.budgets]
    hull = hull_at(upper_hull(problem.cost, singles), grid.budgets)
    low, high = singles[grid.cheapest], singles[grid.best]
    out = [f"### wildbench: {len(problem.experts)} experts x {len(problem.categories)} task categories, WB-Score "
           "(adjusted, -10..10), equal weights (WildBench's macro score), in sample", "",
           f"APGR of the front: {apgr(coe, low, high):.3f} (hull {apgr(hull, low, high):.3f}); "
           f"budgets below hull: {int(np.sum(np.asarray(coe) < hull - 1e-9))} of 50", "",
           "| expert | total B | macro score |", "|---|---:|---:|"]
    out += [f"| {e} | {c:g} | {s:.3f} |" for e, c, s in zip(problem.experts, problem.cost, singles)]
    out += ["", "| avg total B | macro score | " + " | ".join(problem.categories) + " |",
            "|---:|---:|" + "---|" * len(problem.categories)]
    out += [f"| {c:.1f} | {q:.3f} | " + " | ".join(problem.experts[e] for e in choice) + " |"
            for c, q, choice in zip(front.costs, front.qualities, front.choices)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="shared data folder (default: ../shared/data beside the repository)")
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    print(held_out(args.data, args.seeds), "", wildbench(args.data), sep="\n")


if __name__ == "__main__":
    main()
