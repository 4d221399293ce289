"""Benchmark: 100,000 requests over 150 experts through the hwsim engine on one core.

Target (issue 5): <= 10 s.  Experts cycle through the five real models of the dashboard's map so the
HBM cache sees mixed sizes; traffic is Zipf(1.0) with Poisson arrivals.  Run:
    .venv/bin/python bench/bench_hwsim.py [--requests N] [--policy lru] [--batching coe] [--all]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hwsim.engine import BATCHING, POLICIES, ExpertSpec, SimConfig, get_machine, simulate, synthetic  # noqa: E402

MODELS = [("Qwen2-7B-Instruct", 7.62e9), ("gemma-2-9b-it", 9.24e9), ("gemma-2-27b-it", 27.2e9),
          ("Llama-3.1-70B-Instruct", 70.6e9), ("Qwen2-72B-Instruct", 72.7e9)]


def run(machine, experts, workload, policy, batching):
    t0 = time.perf_counter()
    result = simulate(SimConfig(get_machine(machine), experts, policy=policy, batching=batching), workload)
    total = time.perf_counter() - t0
    s = result.summary()
    print(f"{machine:9s} {policy:7s} {batching:10s} requests={s['requests']} wall_s={total:.2f} "
          f"(engine {s['wall_seconds']:.2f}) req/s={s['requests'] / total:,.0f} switches={s['switches']} "
          f"hit={s['hbm_hit_rate']:.3f} switch_ms={s['switch_ms_mean']:.1f} ttft_p50_ms={s['ttft_p50_ms']:.0f} "
          f"ttft_p99_ms={s['ttft_p99_ms']:.0f}")
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--experts", type=int, default=150)
    ap.add_argument("--machine", default="sn40l-8")
    ap.add_argument("--policy", default="lru", choices=POLICIES)
    ap.add_argument("--batching", default="coe", choices=BATCHING)
    ap.add_argument("--all", action="store_true", help="also run every policy x batching")
    args = ap.parse_args()
    experts = [ExpertSpec(f"{MODELS[i % 5][0]}-{i:03d}", MODELS[i % 5][1]) for i in range(args.experts)]
    t0 = time.perf_counter()
    workload = synthetic(args.requests, [e.name for e in experts], rate=0.6, zipf_s=1.0, seed=0)
    print(f"workload: {args.requests} requests, {args.experts} experts, built in {time.perf_counter() - t0:.2f} s")
    wall = run(args.machine, experts, workload, args.policy, args.batching)
    print(f"headline: {args.requests} requests / {args.experts} experts in {wall:.2f} s "
          f"= {args.requests / wall:,.0f} requests/s (target <= 10 s)")
    if args.all:
        for batching in BATCHING:
            for policy in POLICIES:
                run(args.machine, experts, workload, policy, batching)


if __name__ == "__main__":
    main()
