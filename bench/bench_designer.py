"""Time the CoE designer: the whole exact Pareto front for 20 categories x 20 experts (target: well under 1 s),
and, for reference, one deployment-size-budget MILP of the same size.

python bench/bench_designer.py [--trials N]

Instances: "realistic" quality grows with expert size plus noise; "worst case" sorts each category's qualities
by cost, so no option is dominated and the front is as large as it gets.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from designer.engine.optimiser import Problem, best_map  # noqa: E402


def instance(rng, kind: str, n: int = 20) -> Problem:
    cost = np.sort(rng.uniform(2, 100, n))
    if kind == "worst case":
        quality = np.sort(rng.random((n, n)), axis=1)
    else:
        quality = np.log(cost) + rng.normal(0, 0.3, (n, n))
    names = tuple(f"x{i}" for i in range(n))
    return Problem(names, names, quality, rng.random(n), cost, cost)


def timed(call) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for kind in ("realistic", "worst case"):
        runs = [timed(instance(rng, kind).front) for _ in range(args.trials)]
        times, sizes = [t for t, _ in runs], [len(f.costs) for _, f in runs]
        print(f"pareto front 20x20 {kind:10s}: median {statistics.median(times) * 1e3:6.1f} ms, "
              f"max {max(times) * 1e3:6.1f} ms over {args.trials} instances "
              f"(front points: median {int(statistics.median(sizes))}, max {max(sizes)})")
    times = [timed(lambda p=instance(rng, "realistic"): best_map(p, 40, size_budget=150))[0] for _ in range(5)]
    print(f"MILP 20x20, average <= 40 B and size <= 150 B: median {statistics.median(times) * 1e3:.0f} ms, "
          f"max {max(times) * 1e3:.0f} ms over 5 instances")


if __name__ == "__main__":
    main()
