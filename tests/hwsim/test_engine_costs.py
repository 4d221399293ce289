"""Switch formula and roofline, checked against hand arithmetic."""
import pytest

from hwsim.engine import CostModel, ExpertSpec, get_machine
from hwsim.engine.experts import expert_from_dict


def test_switch_is_overhead_plus_bytes_over_link():
    for name in ("sn40l-8", "sn40l-16", "dgx-h100", "dgx-a100"):
        m = get_machine(name)
        cost = CostModel(m, [ExpertSpec("e", 7.62e9)])
        assert cost.switch[0] == pytest.approx(m.v("switch_overhead") + 7.62e9 * 2 / (m.v("nodes") * m.v("link_bw")))


def test_decode_batch1_is_memory_bound_weights_plus_kv():
    m = get_machine("dgx-h100")
    e = ExpertSpec("e", 7e9, kv_bytes_per_token=1000)
    cost = CostModel(m, [e])
    bw = 8 * 3.35e12 * m.v("memory_eff")
    assert cost.decode(0, 1, 100, 1) == pytest.approx((14e9 + 1000 * 100) / bw)


def test_decode_turns_compute_bound_at_large_batch():
    m = get_machine("dgx-a100")
    cost = CostModel(m, [ExpertSpec("e", 7e9, kv_bytes_per_token=0)])
    flops = 8 * 312e12 * m.v("compute_eff")
    assert cost.decode(0, 4096, 4096, 1) == pytest.approx(2 * 7e9 * 4096 / flops)


def test_prefill_roofline():
    m = get_machine("sn40l-8")
    cost = CostModel(m, [ExpertSpec("e", 7e9, kv_bytes_per_token=0)])
    flops = 8 * 638e12 * m.v("compute_eff")
    bw = 8 * m.v("hbm_bw") * m.v("memory_eff")
    assert cost.prefill(0, 8) == pytest.approx(14e9 / bw)  # short prompt: reading weights dominates
    assert cost.prefill(0, 100_000) == pytest.approx(2 * 7e9 * 100_000 / flops)


def test_closed_form_decode_equals_per_step_sum():
    cost = CostModel(get_machine("sn40l-8"), [ExpertSpec("e", 7e9)])
    steps, batch, ctx = 50, 4, 400
    by_step = sum(cost.decode(0, batch, ctx + batch * j, 1) for j in range(steps))
    assert cost.decode(0, batch, ctx, steps) == pytest.approx(by_step)


def test_group_decode_matches_separate_segments():
    cost = CostModel(get_machine("sn40l-8"), [ExpertSpec("e", 7e9)])
    fin = cost.group_decode(0, [10, 20], [5, 3])
    first = cost.decode(0, 2, 11 + 21, 2)  # both active for 2 steps
    assert fin[1] == pytest.approx(first)
    assert fin[0] == pytest.approx(first + cost.decode(0, 1, 11 + 2, 2))
    assert cost.group_decode(0, [7], [1]) == [0.0]  # one token comes from prefill


def test_costs_are_memoised():
    cost = CostModel(get_machine("sn40l-8"), [ExpertSpec("e", 7e9)])
    a = cost.decode(0, 1, 10, 10)
    assert cost.decode(0, 1, 10, 10) == a and len(cost._decode) == 1


def test_expert_estimates_and_validation():
    e = ExpertSpec("Llama-3.1-70B-Instruct", 70.6e9)
    assert e.weight_bytes == 141.2e9 and 60 <= e.layers <= 80 and e.kv_per_token == 2 * e.layers * 1024 * 2
    assert expert_from_dict({"name": "q", "params": 7.62e9, "n_layers": 28}).layers == 28
    with pytest.raises(ValueError, match="params"):
        ExpertSpec("bad", 0)
    with pytest.raises(ValueError, match="unknown expert fields"):
        expert_from_dict({"name": "q", "params": 1e9, "colour": "red"})
