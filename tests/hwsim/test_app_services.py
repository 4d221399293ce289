"""Parameters and services: resolving what a user asked for, building engine inputs from our experts, map
and decisions, and storing bounded outputs."""
import json

import pytest

from hwsim import parameters as P
from hwsim import services
from hwsim.engine import ConfigError

pytestmark = pytest.mark.django_db


def test_defaults_resolve_the_current_map_and_match_expert_rows():
    from experts.models import Expert
    from experts.selectors import current_map

    params = P.normalise({})
    assert params["experts"] == {"source": "map", "map_version": current_map().version}
    config, workload = P.build(params)
    mapped = set(current_map().assignments.values())
    assert {e.name for e in config.experts} == mapped
    for spec in config.experts:
        row = Expert.objects.get(name=spec.name)
        assert spec.weight_bytes == pytest.approx(row.parameters * row.bytes_per_parameter)
    assert len(workload) == params["workload"]["requests"]
    assert set(workload.expert) <= mapped


def test_a_seeded_run_is_reproducible_and_the_seed_matters():
    params = P.normalise({"workload": {"requests": 300}, "seed": 3})
    a = services.rerun(type("Run", (), {"parameters": params})).summary()
    b = services.rerun(type("Run", (), {"parameters": params})).summary()
    other = services.rerun(type("Run", (), {"parameters": {**params, "seed": 4}})).summary()
    assert a["ttft_p50_ms"] == b["ttft_p50_ms"] and a["switches"] == b["switches"]
    assert (a["ttft_p50_ms"], a["switches"]) != (other["ttft_p50_ms"], other["switches"])


@pytest.mark.parametrize("raw, message", [
    ({"machine": {"preset": "tpu-v9"}}, "unknown machine preset 'tpu-v9'"),
    ({"policy": "fifo"}, "unknown cache policy 'fifo'"),
    ({"batching": "none"}, "unknown batching"),
    ({"experts": {"source": "map", "map_version": 999}}, "map version 999 does not exist"),
    ({"experts": {"source": "uniform", "count": 1000, "params": 7e9}}, "DDR holds"),
    ({"machine": {"custom": {"base": "sn40l-8", "hbm_bw": -1}}}, "'hbm_bw' must be > 0"),
    ({"workload": {"kind": "replay", "source": "recent", "count": 10}}, "no routed decisions"),
    ({"workload": {"requests": 0}}, "requests must be >= 1"),
    ({"colour": "red"}, "unknown run parameter fields ['colour']"),
])
def test_bad_parameters_say_what_is_wrong(raw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        P.normalise(raw)


def test_dgx_spills_instead_of_refusing():
    params = P.normalise({"machine": {"preset": "dgx-h100"},
                          "experts": {"source": "uniform", "count": 60, "params": 6.74e9},
                          "workload": {"requests": 200, "zipf_s": 0.0}})
    summary = services.rerun(type("Run", (), {"parameters": params})).summary()
    assert summary["spilled_experts"] > 0 and summary["experts_fit_hbm"] < 60


def test_recent_replay_resolves_a_fixed_id_range_and_maps_categories_through_the_chosen_map(make_decisions):
    from experts.selectors import current_map

    made = make_decisions([("coding", 400), ("math", 40), ("writing", 4000), ("unknown-category", 8)])
    make_decisions([("roleplay", 10)])  # newer than the replayed range
    params = P.normalise({"workload": {"kind": "replay", "source": "recent", "count": 5}})
    wl = params["workload"]
    assert (wl["first_id"], wl["count"]) == (made[0].pk, 5)
    snap = current_map()
    config, workload = P.build(params)
    assert workload.expert[:4] == [snap.assignments["coding"], snap.assignments["math"],
                                   snap.assignments["writing"], snap.assignments["general"]]
    assert workload.prompt[:4] == [100, 10, 1000, 2]  # characters / 4
    assert set(workload.output) == {params["output_tokens"]}
    make_decisions([("coding", 10)])  # later traffic does not change what the run replays
    assert P.build(params)[1].expert == workload.expert


def test_replay_on_a_split_map_moves_the_split_share_by_prompt_key(make_decisions):
    from experts.selectors import current_map, split_key
    from experts.services import publish_map

    made = make_decisions([("coding", n) for n in range(1, 201)] + [("nowhere", 7)])  # prompts "x" * n
    snap = current_map()
    version = publish_map(base_version=snap.version, assignments=dict(snap.assignments), note="canary",
                          splits={"coding": {"expert": "gemma-2-9b-it", "share": 0.3},
                                  "general": {"expert": "qwen2-7b-instruct", "share": 0.5}})
    params = P.normalise({"experts": {"source": "map", "map_version": version.number},
                          "workload": {"kind": "replay", "source": "recent", "count": len(made)}})
    config, workload = P.build(params)
    expected = ["gemma-2-9b-it" if split_key("x" * n) < 0.3 else snap.assignments["coding"] for n in range(1, 201)]
    expected.append("qwen2-7b-instruct" if split_key("x" * 7) < 0.5 else snap.assignments["general"])
    assert workload.expert == expected and 30 < expected.count("gemma-2-9b-it") < 90
    assert {"gemma-2-9b-it", "qwen2-7b-instruct"} <= {e.name for e in config.experts}


def test_replay_on_uniform_experts_spreads_real_experts_over_them(make_decisions):
    make_decisions([("coding", 40), ("writing", 40), ("roleplay", 40), ("coding", 40)])
    params = P.normalise({"experts": {"source": "uniform", "count": 2, "params": 7e9},
                          "workload": {"kind": "replay", "source": "recent", "count": 4, "rate": 1.0}})
    _, workload = P.build(params)
    assert workload.arrival == [0.0, 1.0, 2.0, 3.0]
    assert workload.expert[0] == workload.expert[3]
    assert set(workload.expert) == {"expert-000", "expert-001"}


def test_batch_replay_needs_an_existing_batch():
    with pytest.raises(ConfigError, match="batch|Batch"):
        P.normalise({"workload": {"kind": "replay", "source": "batch", "batch_id": 12345}})


def test_outputs_stay_bounded_for_many_requests_and_experts():
    params = P.normalise({"experts": {"source": "uniform", "count": 150, "params": 7e9},
                          "workload": {"requests": 20000, "rate": 5.0}})
    result = services.rerun(type("Run", (), {"parameters": params}))
    outputs = services.compact_outputs(result)
    size = len(json.dumps(outputs))
    assert size < 1_000_000
    hbm = next(t for t in outputs["occupancy"] if t["tier"] == "HBM")
    experts = [o for o in hbm["owners"] if o["kind"] == "expert"]
    assert len(experts) == services.OWNERS_CAP + 1 and experts[-1]["owner"].endswith("other experts")
    for j in range(len(hbm["t"])):  # folding keeps the stack equal to the capacity
        assert sum(o["bytes"][j] for o in hbm["owners"]) == pytest.approx(hbm["capacity"], rel=1e-6)
    assert outputs["switches"]["total"] == result.summary()["switches"] > len(outputs["switches"]["events"])
    assert len(outputs["residency"]["rows"]) == 150
    assert all(set(r) <= {"0", "1"} and len(r) == len(outputs["residency"]["t"]) for r in outputs["residency"]["rows"])


def test_sweep_grid_is_machines_times_policies_times_maps():
    grid = services.sweep_grid({"workload": {"requests": 10}}, ["sn40l-8", "dgx-h100"], ["lru", "lfu"], [1])
    assert [(g["machine"]["preset"], g["policy"]) for g in grid] == [
        ("sn40l-8", "lru"), ("sn40l-8", "lfu"), ("dgx-h100", "lru"), ("dgx-h100", "lfu")]
    assert {g["workload"]["requests"] for g in grid} == {10} and {g["seed"] for g in grid} == {0}
    with pytest.raises(ConfigError, match="at least two"):
        services.create_sweep(raw={}, machines=["sn40l-8"])
