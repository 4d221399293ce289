"""switches_for: the simulator's expert-switch count for a sequence of requests (the map editor's impact preview)."""
import pytest

from hwsim.engine import ConfigError, ExpertSpec, SimConfig, get_machine, replay, simulate, switches_for

# 100e9 parameters at 2 bytes: 200 GB each, so exactly two fit the SN40L-8's HBM expert cache (about 522 GB)
BIG = [ExpertSpec(n, 100e9) for n in "ABCD"]


@pytest.mark.parametrize("sequence, switches", [
    # LRU, two slots: A miss, B miss, A hit, C evicts B (least recently used), A hit, B evicts C → 4
    ("ABACAB", 4),
    # every request misses: each newcomer evicts the one used longest ago, which is always the next one asked for
    ("ABCABDA", 7),
    ("AAAA", 1),  # a cold start loads A once
])
def test_switches_match_a_hand_computed_lru(sequence, switches):
    seq = list(sequence)
    assert switches_for(seq, [10] * len(seq), BIG, rate=0.001) == switches  # far apart: no request waits
    assert switches_for(seq, [10] * len(seq), BIG) == switches  # the preview's default rate


def test_unknown_names_are_skipped_and_nothing_known_is_zero():
    assert switches_for(["A", "x", "B", "x", "A"], [5] * 5, BIG) == 2
    assert switches_for(["x", "y"], [5, 5], BIG) == 0
    assert switches_for([], [], BIG) == 0


def test_only_the_experts_used_are_simulated():
    """Same count as a simulation of just the used experts, as the impact preview always ran it."""
    seq = ["B", "A", "B", "C", "A"] * 4
    records = [{"expert": e, "prompt_tokens": 30, "output_tokens": 64, "order": i} for i, e in enumerate(seq)]
    direct = simulate(SimConfig(get_machine("sn40l-8"), BIG[:3], policy="lru"), replay(records, rate=10.0))
    assert switches_for(seq, [30] * len(seq), BIG) == direct.summary()["switches"]


def test_experts_that_cannot_be_served_raise_config_error():
    with pytest.raises(ConfigError):
        switches_for(["huge"], [5], [ExpertSpec("huge", 400e9)])  # 800 GB: bigger than the HBM expert cache
    with pytest.raises(ConfigError):
        switches_for(["A"], [5], BIG, machine="no-such-machine")
