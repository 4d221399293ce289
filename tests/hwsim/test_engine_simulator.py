"""Simulator behaviour: capacity rules, determinism, replay, incremental feeding, tier occupancy."""
import json
import math

import pytest

from hwsim.engine import (
    ConfigError,
    ExpertSpec,
    SimConfig,
    Simulator,
    Workload,
    get_machine,
    replay,
    simulate,
    synthetic,
    uniform_experts,
)

MAP = [ExpertSpec("Qwen2-7B-Instruct", 7.62e9), ExpertSpec("gemma-2-9b-it", 9.24e9),
       ExpertSpec("gemma-2-27b-it", 27.2e9), ExpertSpec("Llama-3.1-70B-Instruct", 70.6e9),
       ExpertSpec("Qwen2-72B-Instruct", 72.7e9)]
NAMES = [e.name for e in MAP]
SUMMARY_KEYS = {"wall_seconds", "switches", "hbm_hit_rate", "switch_ms_mean", "ttft_p50_ms", "ttft_p99_ms"}


def small_hbm(machine="sn40l-8"):
    """The preset with HBM shrunk so a handful of real experts compete for the cache."""
    return get_machine(machine).with_values(hbm_bytes=25e9)


def test_overfull_ddr_is_an_error_not_a_spill():
    experts = uniform_experts(979, 6.74e9)
    with pytest.raises(ConfigError, match="need .* TB but sn40l-8 DDR holds"):
        SimConfig(get_machine("sn40l-8"), experts).layout()
    SimConfig(get_machine("sn40l-8"), experts[:978]).layout()


def test_dgx_spills_beyond_hbm_to_host():
    experts = uniform_experts(150, 6.74e9)
    wl = synthetic(300, [e.name for e in experts], zipf_s=0.0, seed=1)
    s = simulate(SimConfig(get_machine("dgx-h100"), experts), wl).summary()
    assert s["experts_fit_hbm"] == 45 and s["spilled_experts"] == 105 and s["switches"] > 150


def test_expert_bigger_than_hbm_cache_and_reserves_are_errors():
    with pytest.raises(ConfigError, match="does not fit the HBM expert cache"):
        SimConfig(get_machine("sn40l-8").with_values(sockets_per_node=1), MAP).layout()
    with pytest.raises(ConfigError, match="leave no HBM"):
        SimConfig(get_machine("sn40l-8"), MAP, router_bytes=1e15).layout()


@pytest.mark.parametrize("field, value, message", [
    ("policy", "random", "unknown cache policy"), ("batching", "greedy", "unknown batching"),
    ("batch_size", 0, "batch_size"), ("pinned", ("nope",), "not in the map"),
])
def test_bad_configs(field, value, message):
    cfg = SimConfig(get_machine("sn40l-8"), MAP, policy="pinned", pinned=())
    setattr(cfg, field, value)
    with pytest.raises(ConfigError, match=message):
        cfg.layout()


def test_unknown_expert_and_out_of_order_feed():
    sim = Simulator(SimConfig(get_machine("sn40l-8"), MAP))
    with pytest.raises(ConfigError, match="not in the map"):
        sim.feed([(0.0, "gpt-5", 10, 10)])
    sim.feed([(5.0, NAMES[0], 10, 10)])
    with pytest.raises(ConfigError, match="arrival order"):
        sim.feed([(1.0, NAMES[0], 10, 10)])


@pytest.mark.parametrize("batching", ["coe", "per-expert"])
def test_same_seed_same_result(batching):
    def run(seed):
        wl = synthetic(2000, NAMES, rate=0.5, seed=seed)
        res = simulate(SimConfig(small_hbm(), MAP, batching=batching), wl)
        s = res.summary()
        s.pop("wall_seconds"), s.pop("requests_per_wall_second")
        return s, res.requests()
    assert run(3) == run(3)
    assert run(3) != run(4)


def test_synthetic_traffic_shape():
    wl = synthetic(20000, NAMES, rate=4.0, zipf_s=1.0, prompt_mean=300, output_mean=50, seed=0,
                   shuffle_ranks=False)
    counts = wl.counts()
    assert counts[NAMES[0]] > counts[NAMES[1]] > counts[NAMES[4]]
    assert len(wl) / wl.arrival[-1] == pytest.approx(4.0, rel=0.05)
    assert sum(wl.prompt) / len(wl) == pytest.approx(300, rel=0.05) and min(wl.output) >= 1


def test_replay_records_with_order_or_arrival():
    recs = [{"order": 1, "expert": NAMES[1], "prompt_tokens": 20, "output_tokens": 4},
            {"order": 0, "expert": NAMES[0], "prompt_tokens": 10, "output_tokens": 2}]
    wl = replay(recs, rate=2.0)
    assert wl.arrival == [0.0, 0.5] and wl.expert == NAMES[:2] and wl.prompt == [10, 20]
    assert replay(recs).arrival == [0.0, 0.0]  # no rate: an uploaded batch, all at t=0
    timed = replay([{"arrival": 3.0, "expert": "a", "prompt_tokens": 1, "output_tokens": 1}])
    assert timed.arrival == [3.0]
    with pytest.raises(ConfigError, match="output_tokens"):
        replay([{"expert": "a", "prompt_tokens": 1, "output_tokens": 0}])
    res = simulate(SimConfig(get_machine("sn40l-8"), MAP), wl)
    req = res.requests()
    assert req["expert"] == NAMES[:2] and res.summary()["switches"] == 2
    assert req["queue_ms"][0] == 0.0 and req["ttft_ms"][1] > req["ttft_ms"][0]


def test_per_request_times_add_up_and_coe_runs_pairs_in_turn():
    wl = Workload([0.0, 0.0, 0.0], [NAMES[0], NAMES[1], NAMES[0]], [100, 100, 100], [10, 10, 10])
    res = simulate(SimConfig(get_machine("dgx-h100"), MAP), wl)
    r = res.requests()
    assert r["switch_ms"][2] == 0.0 and r["switch_ms"][0] > 0  # third pair finds Qwen resident
    for i in range(3):
        assert r["e2e_ms"][i] == pytest.approx(r["queue_ms"][i] + r["switch_ms"][i] + r["prefill_ms"][i]
                                               + r["decode_ms"][i])
    assert r["queue_ms"][1] == pytest.approx(r["e2e_ms"][0])  # second pair waited for the first


def test_per_expert_batching_amortises_switches():
    wl = synthetic(3000, NAMES, rate=None, zipf_s=0.5, seed=2)
    coe = simulate(SimConfig(small_hbm(), MAP, batching="coe"), wl).summary()
    grouped = simulate(SimConfig(small_hbm(), MAP, batching="per-expert", batch_size=32), wl).summary()
    assert grouped["switches"] < coe["switches"] / 5 and grouped["sim_seconds"] < coe["sim_seconds"]


@pytest.mark.parametrize("policy", ["lru", "lfu", "pinned", "belady"])
@pytest.mark.parametrize("batching", ["coe", "per-expert"])
def test_occupancy_never_exceeds_capacity(policy, batching):
    wl = synthetic(3000, NAMES, rate=1.0, seed=5)
    res = simulate(SimConfig(small_hbm(), MAP, policy=policy, batching=batching, snapshot_cap=50), wl)
    occ = res.occupancy()["tiers"]
    assert [t["tier"] for t in occ] == ["DDR", "HBM", "SRAM"]
    for tier in occ:
        assert len(tier["t"]) <= 51
        for j in range(len(tier["t"])):
            used = sum(o["bytes"][j] for o in tier["owners"] if o["kind"] != "free")
            free = next(o["bytes"][j] for o in tier["owners"] if o["kind"] == "free")
            assert used <= tier["capacity"] * (1 + 1e-12) and free == pytest.approx(tier["capacity"] - used)
    heat = res.residency()
    assert len(heat["resident"]) == len(MAP) and all(len(r) == len(heat["t"]) for r in heat["resident"])


def test_incremental_feeding_equals_batch_run():
    wl = synthetic(3000, NAMES, rate=1.0, seed=9)
    for batching in ("coe", "per-expert"):
        cfg = SimConfig(small_hbm(), MAP, batching=batching, snapshot_cap=64)
        whole = simulate(cfg, wl)
        sim = Simulator(cfg)
        for k in range(0, len(wl), 137):
            chunk = wl[k:k + 137]
            sim.feed(chunk)
            sim.advance(until=chunk.arrival[-1])
            json.dumps(sim.snapshot())
        live = sim.finish()
        assert live.requests() == whole.requests()
        assert live.switches() == whole.switches() and live.occupancy() == whole.occupancy()


def test_live_snapshot_reports_hbm_by_owner():
    sim = Simulator(SimConfig(get_machine("sn40l-8"), MAP))
    sim.feed([(0.0, NAMES[3], 500, 100)])
    sim.advance(until=0.001)
    snap = sim.snapshot()
    assert snap["running"] == NAMES[3] and snap["hbm"]["experts"] == {NAMES[3]: 141.2e9}
    assert snap["hbm"]["kv"] > 0 and snap["hbm"]["free"] < snap["hbm"]["capacity"]
    json.dumps(snap)


def test_progress_callback_and_json_safe_summary():
    calls = []
    sim = Simulator(SimConfig(get_machine("sn40l-8"), MAP))
    sim.feed(synthetic(2500, NAMES, rate=None, seed=1))
    res = sim.finish(progress=lambda done, total: calls.append((done, total)), every=1000)
    assert calls == [(1000, 2500), (2000, 2500), (2500, 2500)]
    s = res.summary()
    assert SUMMARY_KEYS <= set(s) and s["requests"] == 2500
    assert json.loads(json.dumps(s)) == s
    assert all(isinstance(v, (int, float, str)) and not (isinstance(v, float) and math.isnan(v)) for v in s.values())
    json.dumps([res.per_expert(), res.cdf("ttft"), res.switches(5), res.occupancy(), res.residency()])


def test_a_router_runs_once_per_coe_batch_before_its_pairs_and_holds_hbm():
    from hwsim.engine.experts import LLAMA2_7B

    machine = get_machine("sn40l-8")
    experts = uniform_experts(60, 6.74e9)
    wl = synthetic(40, [e.name for e in experts], rate=None, zipf_s=0.0, prompt_mean=100, prompt_sigma=0.0,
                   output_mean=5, output_sigma=0.0, seed=3)
    plain = simulate(SimConfig(machine, experts, batch_size=8), wl)
    routed = simulate(SimConfig(machine, experts, batch_size=8, router=LLAMA2_7B), wl)
    r = routed.config  # the router's weights stay in HBM, so the expert cache shrinks
    assert routed.layout.expert_cache == pytest.approx(plain.layout.expert_cache - LLAMA2_7B.weight_bytes)
    assert r.router_hbm() == LLAMA2_7B.weight_bytes
    route = routed.route_events
    assert len(route) == 5 and all(n == 8 for _, _, n in route)  # 40 prompts, batches of 8
    cost = Simulator(SimConfig(machine, experts, router=LLAMA2_7B)).cost
    assert route[0][1] == pytest.approx(cost.route(8 * 100))
    first = routed.runs[0]
    assert first[0] == pytest.approx(route[0][0] + route[0][1])  # pairs start after the router
    assert (routed.route == route[0][1]).all() and (plain.route == 0).all()
    assert routed.ttft == pytest.approx(routed.start - routed.arrival + routed.switch + routed.prefill)
    assert routed.summary()["route_ms_mean"] == pytest.approx(route[0][1] * 1e3)


def test_per_expert_batching_routes_each_group_it_dispatches():
    from hwsim.engine.experts import LLAMA2_7B

    experts = uniform_experts(4, 6.74e9)
    wl = synthetic(30, [e.name for e in experts], rate=None, zipf_s=0.0, seed=2)
    res = simulate(SimConfig(get_machine("sn40l-8"), experts, batching="per-expert", router=LLAMA2_7B), wl)
    assert len(res.route_events) == len(res.runs) and sum(n for *_, n in res.route_events) == 30
