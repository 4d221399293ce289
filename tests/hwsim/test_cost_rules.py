"""The cost model's rules, one by one, on a toy machine with round numbers: what a switch, a pass, a decode run, a
request and a batched decode cost, which socket count pays all-reduces, the memo keys, and the loading model's rate,
calibration point and messages. Written to kill mutants of hwsim/engine/costs.py and loading.py
(scripts/mutation.sh costs): each expected figure is worked out by hand from the inputs, not read back from the code.
"""
import pytest

from hwsim.engine import ExpertSpec, get_machine
from hwsim.engine import references as ref
from hwsim.engine.costs import CostModel, decode_tokens_per_s
from hwsim.engine.errors import ConfigError
from hwsim.engine.loading import calibration_model, load_path, predictions

# 2 sockets x 2 nodes = 4 sockets: FLOP/s = 4 * 1e12 * 0.5 = 2e12, HBM = 4 * 1e11 * 0.5 = 2e11 B/s, link = 2 * 1e10
TOY = dict(sockets_per_node=2, nodes=2, peak_flops=1e12, compute_eff=0.5, hbm_bw=1e11, memory_eff=0.5, link_bw=1e10,
           switch_overhead=0.01, step_overhead=0.001, allreduce_s=1e-5)
FLOPS, BW, LINK = 2e12, 2e11, 2e10
# 1e9 parameters in BF16 (2e9 bytes), 4 layers, 1e6 KV bytes per token: a pass costs 0.001 + 2 * 4 * 1e-5 beyond
# the roofline
SMALL = ExpertSpec("small", 1e9, 2.0, 4, 1e6)
FIXED = 0.001 + 2 * 4 * 1e-5
# 3e9 parameters in INT8 (3e9 bytes), 6 layers, 2e6 KV bytes per token
BIG = ExpertSpec("big", 3e9, 1.0, 6, 2e6)
FIXED_BIG = 0.001 + 2 * 6 * 1e-5


def toy(**changes):
    return get_machine("dgx-h100").with_values(**{**TOY, **changes})


def model(*experts, router=None, **changes):
    return CostModel(toy(**changes), list(experts or [SMALL]), router=router)


def test_the_machine_totals_multiply_every_socket_and_the_efficiencies():
    cost = model()
    assert (cost.flops, cost.bw, cost.link, cost.overhead) == pytest.approx((FLOPS, BW, LINK, 0.01))


def test_a_switch_is_the_fixed_overhead_plus_bytes_over_the_nodes_links():
    cost = model(SMALL, BIG)
    assert cost.switch == pytest.approx([0.01 + 2e9 / LINK, 0.01 + 3e9 / LINK])
    assert cost.switch_time(4e9) == pytest.approx(0.01 + 4e9 / LINK)


def test_each_pass_pays_the_step_overhead_and_two_all_reduces_per_layer_of_its_own_expert():
    assert model(SMALL, BIG).fixed == pytest.approx([FIXED, FIXED_BIG])


@pytest.mark.parametrize("sockets_per_node, nodes, all_reduces", [(1, 1, False), (2, 1, True), (1, 2, True)])
def test_only_a_pass_spread_over_more_than_one_socket_pays_all_reduces(sockets_per_node, nodes, all_reduces):
    cost = model(sockets_per_node=sockets_per_node, nodes=nodes)
    assert cost.fixed == pytest.approx([0.001 + (2 * 4 * 1e-5 if all_reduces else 0.0)], rel=1e-12)


def test_a_short_prefill_is_bound_by_reading_weights_and_kv():
    # compute 2 * 1e9 * 10 / 2e12 = 0.01 s; memory (2e9 + 1e6 * 10) / 2e11 = 0.01005 s
    assert model().prefill(0, 10) == pytest.approx(0.01005 + FIXED, rel=1e-12)


def test_a_long_prefill_is_bound_by_compute():
    # compute 2 * 1e9 * 1000 / 2e12 = 1.0 s; memory (2e9 + 1e9) / 2e11 = 0.015 s
    assert model().prefill(0, 1000) == pytest.approx(1.0 + FIXED, rel=1e-12)


def test_prefill_uses_the_experts_own_size_and_kv():
    # BIG: compute 2 * 3e9 * 10 / 2e12 = 0.03 s; memory (3e9 + 2e6 * 10) / 2e11 = 0.0151 s
    assert model(SMALL, BIG).prefill(1, 10) == pytest.approx(0.03 + FIXED_BIG, rel=1e-12)


def test_memoised_costs_are_keyed_on_every_argument():
    cost = model(SMALL, BIG)
    firsts = [cost.prefill(0, 10), cost.prefill(0, 1000), cost.prefill(1, 10)]
    assert firsts == pytest.approx([0.01005 + FIXED, 1.0 + FIXED, 0.03 + FIXED_BIG], rel=1e-12)
    assert [cost.prefill(0, 10), cost.prefill(0, 1000), cost.prefill(1, 10)] == firsts  # served from the memo
    decodes = [cost.decode(0, 3, 100, 4), cost.decode(1, 3, 100, 4), cost.decode(0, 2, 100, 4),
               cost.decode(0, 3, 200, 4), cost.decode(0, 3, 100, 5)]
    fresh = [model(SMALL, BIG).decode(*args) for args in
             [(0, 3, 100, 4), (1, 3, 100, 4), (0, 2, 100, 4), (0, 3, 200, 4), (0, 3, 100, 5)]]
    assert decodes == fresh and len(set(decodes)) == 5


def test_a_costed_shape_comes_from_the_memo_and_is_not_recomputed():
    """Traffic repeats shapes, so each (expert, tokens) prefill, (expert, batch, context, steps) decode and router pass
    is computed once: once a shape is costed, not even a change of the machine totals reaches it."""
    cost = model(SMALL, router=BIG)
    first = (cost.prefill(0, 10), cost.decode(0, 3, 100, 4), cost.route(10))
    cost.flops = cost.bw = float("nan")
    assert (cost.prefill(0, 10), cost.decode(0, 3, 100, 4), cost.route(10)) == first
    assert all(v != v for v in (cost.prefill(0, 11), cost.decode(0, 3, 100, 5), cost.route(11)))  # new shapes: NaN


def test_a_memory_bound_decode_run_reads_the_weights_every_step_and_the_growing_kv():
    # 4 steps of a batch of 3 from a summed context of 100: KV tokens read 4 * 100 + 3 * (0 + 1 + 2 + 3) = 418;
    # memory (4 * 2e9 + 1e6 * 418) / 2e11 = 0.04209 s; compute 4 * 2 * 1e9 * 3 / 2e12 = 0.012 s
    assert model().decode(0, 3, 100, 4) == pytest.approx(0.04209 + 4 * FIXED, rel=1e-12)


def test_a_compute_bound_decode_run_pays_compute_every_step():
    # 2 steps of a batch of 200: compute 2 * 2 * 1e9 * 200 / 2e12 = 0.4 s; memory (2 * 2e9 + 1e6 * 200) / 2e11
    assert model().decode(0, 200, 0, 2) == pytest.approx(0.4 + 2 * FIXED, rel=1e-12)


def test_a_decode_run_equals_the_sum_of_its_steps_away_from_the_ridge():
    cost = model(SMALL, BIG)
    for e, batch, ctx, steps in [(0, 3, 100, 7), (1, 5, 40, 6), (0, 1, 1, 2)]:
        one_by_one = sum(model(SMALL, BIG).decode(e, batch, ctx + batch * j, 1) for j in range(steps))
        assert cost.decode(e, batch, ctx, steps) == pytest.approx(one_by_one, rel=1e-12)


@pytest.mark.parametrize("steps", [0, -1, -3])
def test_no_decode_steps_cost_nothing(steps):
    assert model().decode(0, 3, 100, steps) == 0.0


def test_a_request_is_its_prefill_then_one_decode_step_per_token_after_the_first():
    cost = model()
    # prefill of 10 tokens, then 3 steps from a context of 11: KV tokens 3 * 11 + 0 + 1 + 2 = 36
    decode = (3 * 2e9 + 1e6 * 36) / BW + 3 * FIXED
    assert cost.request_seconds(0, 10, 4) == pytest.approx(0.01005 + FIXED + decode, rel=1e-12)
    assert cost.request_seconds(0, 10, 1) == pytest.approx(0.01005 + FIXED, rel=1e-12)  # the prefill's token


def step_by_step(prompts, outputs, expert=SMALL, fixed=FIXED):
    """Reference for group_decode: one memory-bound decode step at a time; each request holds prompt + 1 + steps
    done tokens of context, reads it every step and leaves the batch after output - 1 steps."""
    left = [o - 1 for o in outputs]
    ctx = [p + 1 for p in prompts]
    finish, t = [0.0] * len(prompts), 0.0
    while any(n > 0 for n in left):
        active = [k for k, n in enumerate(left) if n > 0]
        t += max(2 * expert.params * len(active) / FLOPS,
                 (expert.weight_bytes + expert.kv_per_token * sum(ctx[k] for k in active)) / BW) + fixed
        for k in active:
            left[k] -= 1
            ctx[k] += 1
            if left[k] == 0:
                finish[k] = t
    return finish


@pytest.mark.parametrize("prompts, outputs", [
    ([10, 20, 30], [5, 2, 9]),          # finishing in another order than given
    ([7, 50, 3, 12], [4, 4, 5, 1]),     # a tie, a request one step longer, and one with no decode step
    ([100, 5], [3, 2]),                 # the longer answer comes first
])
def test_a_batched_decode_finishes_each_request_when_its_own_steps_are_done(prompts, outputs):
    assert model().group_decode(0, prompts, outputs) == pytest.approx(step_by_step(prompts, outputs), rel=1e-12)


def test_a_batch_of_one_is_a_single_decode_run():
    assert model().group_decode(0, [10], [4]) == pytest.approx([(3 * 2e9 + 1e6 * 36) / BW + 3 * FIXED], rel=1e-12)
    assert model(SMALL, BIG).group_decode(1, [10], [1]) == [0.0]


def test_without_a_router_routing_costs_nothing():
    assert model().route(500) == 0.0


def test_the_router_pass_is_a_prefill_of_the_router_model_with_its_own_layers():
    cost = model(SMALL, router=BIG)
    # BIG over 10 tokens: compute 0.03 s; over 1000 tokens: compute 3.0 s; each with BIG's own fixed cost
    assert cost.route(10) == pytest.approx(0.03 + FIXED_BIG, rel=1e-12)
    assert cost.route(1000) == pytest.approx(3.0 + FIXED_BIG, rel=1e-12)
    assert cost.route(10) == pytest.approx(0.03 + FIXED_BIG, rel=1e-12)  # memoised per token count
    memory_bound = ExpertSpec("wide", 1e9, 2.0, 4, 1e9)  # KV-heavy: (2e9 + 1e9 * 10) / 2e11 = 0.06 s
    assert model(SMALL, router=memory_bound).route(10) == pytest.approx(0.06 + FIXED, rel=1e-12)


def test_single_stream_decode_rate_is_one_step_at_the_given_context():
    assert decode_tokens_per_s(toy(), SMALL) == pytest.approx(1 / ((2e9 + 1e6 * 1) / BW + FIXED), rel=1e-12)
    assert decode_tokens_per_s(toy(), SMALL, ctx=1000) == pytest.approx(1 / ((2e9 + 1e9) / BW + FIXED), rel=1e-12)


def test_single_stream_decode_rate_is_for_a_batch_of_one():
    slow = toy(peak_flops=1e9)  # 2e9 FLOP/s: one token's 2e9 FLOPs take 1 s, far more than reading the weights
    assert decode_tokens_per_s(slow, SMALL) == pytest.approx(1 / (1.0 + FIXED), rel=1e-12)


# -- loading -----------------------------------------------------------------------------------------------

def test_a_load_path_is_its_calibration_load_and_its_rate_is_bf16_bytes_over_seconds():
    path = load_path("optimised", "nvme")
    assert (path.loader, path.medium, path.model, path.params, path.seconds) == (
        "optimised", "nvme", "Llama-3.1-8B-Instruct", 8.03e9, 0.678)
    assert path.rate == pytest.approx(8.03e9 * 2 / 0.678, rel=1e-12)
    assert path.load_seconds(1e9) == pytest.approx(1e9 * 0.678 / (8.03e9 * 2), rel=1e-12)


def test_a_load_path_says_where_its_rate_comes_from():
    assert load_path("optimised", "nvme").source == (
        f"calibrated: ServerlessLLM Store from NVMe SSD, cold, Llama-3.1-8B-Instruct 8.03B BF16 in 0.678 s "
        f"({ref.full('sllm_bench')})")
    assert load_path("naive", "dram").source == (
        f"calibrated: safetensors (from_pretrained) from host DRAM (pinned pool or page cache), Qwen3-32B 32.8B BF16 "
        f"in 12.466 s ({ref.full('sllm_bench')})")


@pytest.mark.parametrize("loader, medium, model_name", [
    ("optimised", "nvme", "Llama-3.1-8B-Instruct"), ("naive", "nvme", "Llama-3.1-8B-Instruct"),
    ("optimised", "dram", "Qwen3-32B"), ("naive", "dram", "Qwen3-32B")])
def test_each_pair_is_calibrated_on_its_smallest_model_and_the_first_listed_on_a_tie(loader, medium, model_name):
    assert calibration_model(loader, medium) == model_name
    assert load_path(loader, medium).seconds == ref.SLLM_LOADS[(loader, medium, model_name)]


@pytest.mark.parametrize("loader, medium", [("turbo", "nvme"), ("naive", "tape"), ("turbo", "tape")])
def test_an_unknown_loader_or_medium_is_refused_naming_the_choices(loader, medium):
    with pytest.raises(ConfigError, match=r"^loader must be one of \('naive', 'optimised'\) and medium one of "
                                          r"\('nvme', 'dram'\)$"):
        load_path(loader, medium)


def test_a_pair_without_published_loads_has_no_calibration_point():
    with pytest.raises(ConfigError, match=r"^no published load for loader 'turbo' and medium 'nvme'$"):
        calibration_model("turbo", "nvme")


def test_predictions_are_every_other_load_predicted_from_its_pairs_rate():
    rows = {(lo, me, m): (params, published, predicted) for lo, me, m, params, published, predicted in predictions()}
    assert len(rows) == len(ref.SLLM_LOADS) - 4
    params, published, predicted = rows[("optimised", "nvme", "Qwen3-32B")]
    assert (params, published) == (32.8e9, 3.216)
    assert predicted == pytest.approx(32.8e9 * 0.678 / 8.03e9, rel=1e-12)  # bytes / (8.03e9 * 2 / 0.678)
    params, published, predicted = rows[("naive", "dram", "DeepSeek-R1-Distill-Qwen-32B")]
    assert (params, published, predicted) == (32.8e9, 10.165, pytest.approx(12.466, rel=1e-12))
