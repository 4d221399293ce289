"""The HBM expert-cache policies' rules, one by one: hits and misses, byte accounting, which victim each policy picks
and in what order. Written to kill mutants of hwsim/engine/policies.py (scripts/mutation.sh policies); the
randomised bounds (Belady never loads more than the online policies) are in test_engine_policies.py."""
import pytest

from hwsim.engine.errors import ConfigError
from hwsim.engine.policies import LFU, LRU, NEVER, POLICIES, Belady, Pinned, make_policy


def next_uses(trace):
    """next_use[pos]: the position of the next request for the same expert (NEVER if none), as the simulator fills."""
    nxt, last = [NEVER] * len(trace), {}
    for pos, e in enumerate(trace):
        if e in last:
            nxt[last[e]] = pos
        last[e] = pos
    return nxt


def feed(cache, trace):
    """Access every expert of the trace in order; returns [(hit, evicted)] per request."""
    return [cache.access(e, pos) for pos, e in enumerate(trace)]


def test_make_policy_builds_each_named_policy():
    sizes, nxt = [1, 1, 1], []
    assert POLICIES == ("lru", "lfu", "pinned", "belady")
    built = {name: make_policy(name, 2, sizes, nxt, (1,)) for name in POLICIES}
    assert [type(built[n]) for n in POLICIES] == [LRU, LFU, Pinned, Belady]
    assert all(c.capacity == 2 and c.sizes is sizes and c.used == 0 and not c.resident for c in built.values())
    assert built["pinned"].pinned == frozenset({1})
    assert built["belady"].next_use is nxt  # shared with the simulator, which fills it in as requests come


def test_unknown_policy_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError) as err:
        make_policy("fifo", 1, [1], [], ())
    assert str(err.value) == "unknown cache policy 'fifo'; policies: lru, lfu, pinned, belady"


def test_a_hit_changes_nothing_but_recency():
    cache = make_policy("lru", 10, [4, 5], [], ())
    assert cache.access(0, 0) == (False, ())
    assert cache.access(1, 1) == (False, ())
    assert cache.access(0, 2) == (True, ())
    assert cache.used == 9 and list(cache.resident) == [1, 0]


def test_an_exact_fit_evicts_nothing():
    cache = make_policy("lru", 10, [4, 6], [], ())
    assert feed(cache, [0, 1]) == [(False, ()), (False, ())]
    assert cache.used == 10 and list(cache.resident) == [0, 1]


def test_a_miss_evicts_least_recent_first_until_the_new_expert_fits():
    cache = make_policy("lru", 10, [3, 3, 3, 7], [], ())
    feed(cache, [0, 1, 2, 0])  # recency: 1, 2, 0
    hit, evicted = cache.access(3, 4)
    assert (hit, evicted) == (False, (1, 2))  # 9 used, needs 7: frees 3 + 3 and stops (0 stays)
    assert cache.used == 10 and list(cache.resident) == [0, 3]


def test_used_bytes_track_every_load_and_eviction():
    sizes = [2.5, 4.0, 1.5, 6.0]
    cache = make_policy("lru", 8, sizes, [], ())
    for pos, e in enumerate([0, 1, 2, 3, 0, 2, 1]):
        cache.access(e, pos)
        assert cache.used == pytest.approx(sum(sizes[r] for r in cache.resident))
        assert cache.used <= cache.capacity


def test_lfu_evicts_the_least_used_counting_hits_and_loads():
    cache = make_policy("lfu", 2, [1, 1, 1], [], ())
    feed(cache, [0, 1, 1, 0, 1])  # uses: 0 twice, 1 three times
    assert cache.access(2, 5) == (False, (0,))
    assert cache.count == [2, 3, 1]


def test_lfu_breaks_ties_by_least_recent_use():
    cache = make_policy("lfu", 2, [1, 1, 1], [], ())
    feed(cache, [1, 0, 0, 1])  # both used twice; 0 less recently
    assert cache.access(2, 4) == (False, (0,))


def test_lfu_remembers_uses_across_evictions():
    cache = make_policy("lfu", 2, [1, 1, 1], [], ())
    feed(cache, [0, 0, 0, 1, 2])  # 2 evicts 1 (one use against 0's three)
    assert list(cache.resident) == [0, 2]
    feed(cache, [1, 1])  # 1 comes back with its one earlier use and evicts 2 (one use against 0's three)
    assert cache.count == [3, 3, 1] and list(cache.resident) == [0, 1]
    assert cache.access(2, 7) == (False, (0,))  # 0 and 1 both used three times: 0 is the less recent


def test_pinned_experts_stay_while_the_rest_is_lru():
    cache = make_policy("pinned", 3, [1] * 5, [], (0, 4))
    results = feed(cache, [0, 1, 2, 3, 4, 1, 2])
    # 0 is the least recent at 3 but pinned; once 0 and 4 are both in, only the third slot turns over
    assert [evicted for _, evicted in results] == [(), (), (), (1,), (2,), (3,), (1,)]
    assert list(cache.resident) == [0, 4, 2]


def test_pinned_experts_load_on_demand_only():
    cache = make_policy("pinned", 2, [1, 1, 1], [], (2,))
    feed(cache, [0, 1])
    assert 2 not in cache.resident and cache.used == 2


def test_belady_evicts_the_expert_used_farthest_in_the_future():
    trace = [0, 1, 2, 1, 0]
    cache = make_policy("belady", 2, [1, 1, 1], next_uses(trace), ())
    results = feed(cache, trace)
    # at 2: 0 is next used at 4, 1 at 3 -> evict 0; at 4: 2 is never used again -> evict it
    assert [evicted for _, evicted in results] == [(), (), (0,), (), (2,)]


def test_belady_evicts_an_expert_never_used_again_first():
    trace = [0, 1, 2, 0]
    cache = make_policy("belady", 2, [1, 1, 1], next_uses(trace), ())
    assert feed(cache, trace) == [(False, ()), (False, ()), (False, (1,)), (True, ())]


def test_belady_looks_up_the_next_use_from_each_experts_last_request():
    trace = [1, 0, 1, 2, 0, 1]  # 1's first request is followed at 2; what counts is its latest, at 2 -> next at 5
    cache = make_policy("belady", 2, [1, 1, 1], next_uses(trace), ())
    results = feed(cache, trace)
    assert cache.last_pos == [4, 5, 3]
    assert results[3] == (False, (1,))  # at 3: 0 next at 4, 1 next at 5 -> evict 1


def test_belady_sees_next_use_filled_in_after_it_was_built():
    nxt = []
    cache = Belady(2, [1, 1, 1], nxt)
    nxt.extend([NEVER, NEVER, NEVER])
    cache.access(0, 0)
    cache.access(1, 1)
    nxt[0], nxt[1] = 5, 3  # the simulator learns of the next requests only as they arrive
    assert cache.access(2, 2) == (False, (0,))
