"""Cache policies: unit behaviour, and Belady's MIN never loading more than LRU, LFU or a pinned set."""
import numpy as np
import pytest

from hwsim.engine import ExpertSpec, SimConfig, Workload, get_machine, simulate
from hwsim.engine.policies import NEVER, make_policy


def run_trace(name, trace, slots=2, pinned=()):
    """Switch count of a policy over a trace of expert ids, with `slots` equal-sized slots."""
    nxt, last = [NEVER] * len(trace), {}
    for j, e in enumerate(trace):
        if e in last:
            nxt[last[e]] = j
        last[e] = j
    cache = make_policy(name, slots, [1] * (max(trace) + 1), nxt, pinned)
    misses = 0
    for pos, e in enumerate(trace):
        hit, _ = cache.access(e, pos)
        misses += not hit
        assert cache.used <= cache.capacity
    return misses, cache


def test_lru_evicts_least_recently_used():
    _, cache = run_trace("lru", [0, 1, 0, 2])
    assert list(cache.resident) == [0, 2]


def test_lfu_evicts_least_frequently_used():
    _, cache = run_trace("lfu", [0, 0, 1, 2])
    assert set(cache.resident) == {0, 2}


def test_pinned_expert_is_never_evicted():
    misses, cache = run_trace("pinned", [0, 1, 2, 3, 0, 4, 0], pinned=[0])
    assert 0 in cache.resident and misses == 5


def test_belady_evicts_farthest_next_use():
    misses, cache = run_trace("belady", [0, 1, 2, 0])
    assert set(cache.resident) == {0, 2} and misses == 3  # at 2, expert 1 was needed later than 0
    trace = [0, 1, 2, 0, 1, 0]
    assert run_trace("belady", trace)[0] == 4 < run_trace("lru", trace)[0] == 5


def test_eviction_frees_bytes_for_large_expert():
    cache = make_policy("lru", 10, [4, 4, 9], [], ())
    cache.access(0, 0)
    cache.access(1, 1)
    hit, evicted = cache.access(2, 2)
    assert not hit and evicted == (0, 1) and cache.used == 9


def test_unknown_policy():
    with pytest.raises(ValueError, match="unknown cache policy"):
        make_policy("fifo", 1, [1], [], ())


@pytest.mark.parametrize("seed", range(40))
def test_belady_never_loads_more_than_online_policies(seed):
    rng = np.random.default_rng(seed)
    n_exp = int(rng.integers(3, 12))
    p = rng.dirichlet(np.ones(n_exp) * rng.uniform(0.2, 2))
    trace = rng.choice(n_exp, size=int(rng.integers(20, 300)), p=p).tolist()
    slots = int(rng.integers(1, n_exp))
    best, _ = run_trace("belady", trace, slots)
    for name in ("lru", "lfu"):
        assert best <= run_trace(name, trace, slots)[0]
    hot = [int(np.argmax(p))] if slots > 1 else []
    assert best <= run_trace("pinned", trace, slots, hot)[0]


@pytest.mark.parametrize("seed", range(10))
def test_belady_bound_holds_inside_the_simulator(seed):
    experts = [ExpertSpec(f"e{i}", 7e9) for i in range(60)]
    rng = np.random.default_rng(seed)
    names = [experts[i].name for i in rng.zipf(1.3, 400) % 60]
    wl = Workload(sorted(rng.uniform(0, 100, 400).tolist()), names, [64] * 400, [8] * 400)
    switches = {pol: simulate(SimConfig(get_machine("sn40l-8"), experts, policy=pol), wl).summary()["switches"]
                for pol in ("belady", "lru", "lfu", "pinned")}
    assert switches["belady"] <= min(switches.values())
