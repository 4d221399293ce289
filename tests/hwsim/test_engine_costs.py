"""Switch formula, roofline and the per-pass costs beyond it, checked against hand arithmetic."""
import pytest

from hwsim.engine import CostModel, ExpertSpec, get_machine
from hwsim.engine.experts import LLAMA2_7B, expert_from_dict
from hwsim.engine.presets import step_overhead_calibration


def test_switch_is_overhead_plus_bytes_over_link():
    for name in ("sn40l-8", "sn40l-16", "dgx-h100", "dgx-a100"):
        m = get_machine(name)
        cost = CostModel(m, [ExpertSpec("e", 7.62e9)])
        assert cost.switch[0] == pytest.approx(m.v("switch_overhead") + 7.62e9 * 2 / (m.v("nodes") * m.v("link_bw")))


def test_decode_batch1_is_weights_plus_kv_plus_the_fixed_costs_of_a_pass():
    m = get_machine("dgx-h100")
    e = ExpertSpec("e", 7e9, kv_bytes_per_token=1000, n_layers=32)
    cost = CostModel(m, [e])
    bw = 8 * 3.35e12 * m.v("memory_eff")
    fixed = m.v("step_overhead") + 2 * 32 * m.v("allreduce_s")  # two all-reduces per layer under TP8
    assert m.v("step_overhead") > 0 and m.v("allreduce_s") > 0
    assert cost.decode(0, 1, 100, 1) == pytest.approx((14e9 + 1000 * 100) / bw + fixed)
    assert cost.decode(0, 1, 100, 10) == pytest.approx(10 * 14e9 / bw + 1000 * (10 * 100 + 45) / bw + 10 * fixed)


def test_one_socket_pays_no_all_reduce_and_a_zero_overhead_machine_is_the_plain_roofline():
    m = get_machine("dgx-h100")
    one = CostModel(m.with_values(sockets_per_node=1), [LLAMA2_7B])
    assert one.fixed == [m.v("step_overhead")]
    bare = CostModel(m.with_values(step_overhead=0.0, allreduce_s=0.0), [LLAMA2_7B])
    assert bare.decode(0, 1, 1, 1) == pytest.approx((LLAMA2_7B.weight_bytes + LLAMA2_7B.kv_per_token) /
                                                    (8 * 3.35e12 * m.v("memory_eff")))


def test_decode_turns_compute_bound_at_large_batch():
    m = get_machine("dgx-a100")
    cost = CostModel(m, [ExpertSpec("e", 7e9, kv_bytes_per_token=0)])
    flops = 8 * 312e12 * m.v("compute_eff")
    assert cost.decode(0, 4096, 4096, 1) == pytest.approx(2 * 7e9 * 4096 / flops + cost.fixed[0])


def test_prefill_roofline():
    m = get_machine("sn40l-8")
    cost = CostModel(m, [ExpertSpec("e", 7e9, kv_bytes_per_token=0)])
    flops = 8 * 638e12 * m.v("compute_eff")
    bw = 8 * m.v("hbm_bw") * m.v("memory_eff")
    step = m.v("step_overhead")
    assert m.v("allreduce_s") == 0  # the RDU's collectives are fused into its kernels
    assert cost.prefill(0, 8) == pytest.approx(14e9 / bw + step)  # short prompt: reading weights dominates
    assert cost.prefill(0, 100_000) == pytest.approx(2 * 7e9 * 100_000 / flops + step)


def test_step_overhead_calibration_reproduces_its_measurement():
    m = get_machine("dgx-a100").with_values(sockets_per_node=2)
    c = step_overhead_calibration(m, LLAMA2_7B, 64, 32, 0.5)
    cost = CostModel(m.with_values(step_overhead=c), [LLAMA2_7B])
    assert cost.request_seconds(0, 64, 32) == pytest.approx(0.5)
    assert step_overhead_calibration(m, LLAMA2_7B, 64, 32, 0.6) == pytest.approx(c + 0.1 / 32)  # one per pass


def test_router_pass_is_a_prefill_of_the_router_model():
    m = get_machine("sn40l-8")
    with_router = CostModel(m, [ExpertSpec("e", 7e9)], router=LLAMA2_7B)
    assert CostModel(m, [ExpertSpec("e", 7e9)]).route(1024) == 0.0
    assert with_router.route(1024) == pytest.approx(CostModel(m, [LLAMA2_7B]).prefill(0, 1024))


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
