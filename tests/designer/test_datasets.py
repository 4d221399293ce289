"""The loaders on the real shared data (skipped where ../shared/data is absent)."""

import numpy as np
import pytest

from designer.engine.datasets import (DATA_DIR, evaluate_benchmark, load_arena_bench_v1, load_mt_bench,
                                      load_wildbench)
from designer.engine.optimiser import Problem

pytestmark = pytest.mark.skipif(not (DATA_DIR / "mt_bench").is_dir(), reason="shared data not available")


def test_arena_bench_open_pool_keeps_fully_judged_prompts():
    bench = load_arena_bench_v1()
    assert bench.scores.shape == (281, 7) and bench.dropped == 19 and bench.categories is None
    assert len(bench.prompts) == 281 and all(bench.prompts)
    assert ((bench.scores >= 1) & (bench.scores <= 10)).all()
    mixtral = [m for m in bench.models if "Mixtral" in m.name][0]
    assert (mixtral.total_params, mixtral.active_params) == (46.7, 12.9)


def test_mt_bench_pair_with_its_own_categories_and_routed_evaluation_hook():
    bench = load_mt_bench()
    assert bench.scores.shape == (80, 2) and bench.dropped == 0
    assert sorted(set(bench.categories)) == ["coding", "extraction", "humanities", "math", "reasoning", "roleplay",
                                             "stem", "writing"]
    assert bench.scores.mean(axis=0) == pytest.approx([9.228, 8.341], abs=1e-3)
    seen = []

    def categories_for(prompts):
        seen.extend(prompts)
        return bench.categories

    ev = evaluate_benchmark(bench, categories_for, cost="total", folds=5, seed=0)
    assert seen == bench.prompts
    assert ev.n_categories == 8 and 0.4 < ev.apgr < 1 and ev.routellm is not None
    assert ev.to_dict() == evaluate_benchmark(bench, lambda _: bench.categories, cost="total", folds=5, seed=0).to_dict()


def test_wildbench_table_feeds_the_optimiser():
    table, models = load_wildbench()
    assert table.scores.shape == (5, 4) and not np.isnan(table.scores).any()
    front = Problem.from_table(table, models, cost="total").front()
    assert front.costs[0] == pytest.approx(9.24) and front.qualities[-1] > table.scores.mean(axis=0).max()
