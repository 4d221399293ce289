"""The loaders on the real shared data, read in place from the folder tests/conftest.py's shared_data finds (it
fails in CI when the data is missing and skips elsewhere; a module-level skip here used to skip silently)."""

import numpy as np
import pytest

from designer.engine.datasets import (evaluate_benchmark, load_arena_bench_v1, load_gsm8k, load_mmlu, load_mt_bench,
                                      load_wildbench)
from designer.engine.optimiser import Problem
from tests.conftest import shared_data


def test_arena_bench_open_pool_keeps_fully_judged_prompts():
    bench = load_arena_bench_v1(shared_data("arena_bench_v1").parent)
    assert bench.scores.shape == (281, 7) and bench.dropped == 19 and bench.categories is None
    assert len(bench.prompts) == 281 and all(bench.prompts)
    assert ((bench.scores >= 1) & (bench.scores <= 10)).all()
    mixtral = [m for m in bench.models if "Mixtral" in m.name][0]
    assert (mixtral.total_params, mixtral.active_params) == (46.7, 12.9)


def test_mt_bench_pair_with_its_own_categories_and_routed_evaluation_hook():
    bench = load_mt_bench(shared_data("mt_bench").parent)
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


def test_mmlu_correctness_of_the_routellm_pair_with_subjects():
    bench = load_mmlu(shared_data("routellm_mmlu").parent)
    assert bench.scores.shape == (14042, 2) and bench.dropped == 0 and len(bench.prompts) == 14042
    assert [m.name for m in bench.models] == ["gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"]
    assert set(np.unique(bench.scores)) == {0.0, 1.0}
    assert bench.scores.sum(axis=0).tolist() == [11315, 9560]  # correct answers (80.6 % and 68.1 %)
    assert len(set(bench.categories)) == 57 and bench.categories.count("abstract_algebra") == 100
    assert all(p.rstrip().endswith("Answer:") for p in bench.prompts)
    ev = evaluate_benchmark(bench, lambda _: bench.categories, cost="total", folds=5, seed=0)
    assert ev.best == "gpt-4-1106-preview" and ev.apgr > 0.6 and ev.routellm.cpt50 < 35  # subjects carry signal


def test_gsm8k_correctness_of_the_routellm_pair():
    bench = load_gsm8k(shared_data("routellm_gsm8k").parent)
    assert bench.scores.shape == (1319, 2) and bench.categories is None
    assert bench.scores.sum(axis=0).tolist() == [1130, 842]  # as SOURCE.md states


def test_wildbench_table_feeds_the_optimiser():
    table, models = load_wildbench(shared_data("wildbench").parent)
    assert table.scores.shape == (5, 4) and not np.isnan(table.scores).any()
    front = Problem.from_table(table, models, cost="total").front()
    assert front.costs[0] == pytest.approx(9.24) and front.qualities[-1] > table.scores.mean(axis=0).max()
