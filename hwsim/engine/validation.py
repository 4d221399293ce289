"""The validation table: published figures next to what the engine computes for them.

Every simulated figure comes out of the engine: switch times from a simulator run with a cold cache,
capacities from the memory layout the simulator enforces, the decode rate from the cost model.  Nothing
here is a simulated number written down.  Two rows are calibration points (the SN40L switch times fix
the derived link bandwidth and overhead, see presets.sn40l_link_calibration), so they match by
construction; their `note` says so.  The rest are independent checks.

error_pct is the signed relative error for "≈" rows.  For bound rows ("≥", "≤") it is how far the
simulated figure lies on the wrong side of the bound, 0 when the bound holds.
"""
from __future__ import annotations

import math

from . import references as ref
from .costs import decode_tokens_per_s
from .experts import ExpertSpec
from .memory import Layout
from .presets import get_machine
from .simulator import SimConfig, simulate
from .workloads import Workload, synthetic

TOLERANCE_PCT = 10.0

LLAMA2_7B = ExpertSpec("Llama-2-7B", ref.LLAMA2_7B_PARAMS, ref.BF16_BYTES, ref.LLAMA2_7B_LAYERS,
                       ref.LLAMA2_7B_KV_BYTES_PER_TOKEN)
LLAMA31_8B = ExpertSpec("Llama-3.1-8B", ref.LLAMA31_8B_PARAMS, ref.BF16_BYTES, 32, 2 * 32 * 1024 * 2)


def switch_ms(machine, expert: ExpertSpec) -> float:
    """Duration of the first (cold) switch when one request reaches the expert."""
    result = simulate(SimConfig(machine, [expert]), Workload([0.0], [expert.name], [1], [1]))
    return result.switches()[0]["duration_ms"]


def _row(target, published, simulated, check, note):
    if check == "≈":
        err = (simulated - published) / published * 100
        passed = abs(err) <= TOLERANCE_PCT
    else:
        short = published - simulated if check == "≥" else simulated - published
        err = max(0.0, short) / published * 100
        passed = err == 0.0
    return {"target": target, "published": float(published), "simulated": float(simulated),
            "error_pct": round(err, 2), "check": check, "passed": passed, "note": note}


def validate() -> list:
    """Rows {"target", "published", "simulated", "error_pct", "check", "passed", "note"}."""
    sn8, sn16 = get_machine("sn40l-8"), get_machine("sn40l-16")
    h100, a100 = get_machine("dgx-h100"), get_machine("dgx-a100")
    one_h100 = h100.with_values(name="1x H100", sockets_per_node=1)
    sn_ms = switch_ms(sn8, LLAMA2_7B)
    w7 = LLAMA2_7B.weight_bytes
    return [
        _row("switch Llama-2-7B BF16 on sn40l-8 (ms)", ref.SN40L8_SWITCH_7B_MS, sn_ms, "≈",
             "calibration point for the SN40L link bandwidth and overhead (SN40L paper Table V)"),
        _row("switch speed-up sn40l-8 vs dgx-h100 (x)", ref.SWITCH_SPEEDUP_VS_DGX_H100,
             switch_ms(h100, LLAMA2_7B) / sn_ms, "≈", "independent: host->GPU 64 GB/s (SN40L paper Table V)"),
        _row("switch speed-up sn40l-8 vs dgx-a100 (x)", ref.SWITCH_SPEEDUP_VS_DGX_A100,
             switch_ms(a100, LLAMA2_7B) / sn_ms, "≈", "independent: host->GPU 32 GB/s (SN40L paper Table V)"),
        _row("switch Llama-3.1-8B BF16 on sn40l-16 (ms)", ref.SN40L16_SWITCH_8B_MS,
             switch_ms(sn16, LLAMA31_8B), "≈", "calibration point (SambaNova, Hot Chips 2024)"),
        _row("7B-class experts held in sn40l-8 DDR", ref.SN40L8_MIN_7B_EXPERTS_IN_DDR,
             Layout(sn8).experts_fit_home(w7), "≥", "independent: 8 x 1.5 TiB DDR / 13.48 GB (SN40L paper)"),
        _row("7B-class experts in dgx-h100 HBM before spilling", ref.DGX_H100_7B_EXPERTS_IN_HBM,
             Layout(h100).experts_fit_hbm(w7), "≈",
             "independent: 8 x 80 GB less the 5% KV reserve (SN40L paper: latency climbs at ~50)"),
        _row("Llama-2-7B decode, batch 1, one H100 (tokens/s)", ref.H100_7B_DECODE_CEILING_TPS,
             decode_tokens_per_s(one_h100, LLAMA2_7B), "≤",
             "roofline sanity: 3.35 TB/s / 13.5 GB; the simulator applies 80% memory efficiency"),
    ]


def coe_latency_report(requests: int = 800, prompt_tokens: int = 128, seed: int = 0) -> list:
    """The SN40L paper's overall CoE latency ratios next to the simulator's, with no pass mark.

    Scenario: 150 Llama-2-7B-class experts, uniform routing, all prompts queued at t=0 and served in
    CoE batches of 8 with 20 output tokens, LRU cache; the ratio is the mean batch latency (makespan /
    batches) on the DGX node over that on sn40l-8.  Prompt length is not published: an assumption."""
    names = [f"expert-{i:03d}" for i in range(ref.COE_EXPERTS)]
    experts = [ExpertSpec(n, ref.LLAMA2_7B_PARAMS, ref.BF16_BYTES, ref.LLAMA2_7B_LAYERS,
                          ref.LLAMA2_7B_KV_BYTES_PER_TOKEN) for n in names]
    wl = synthetic(requests, names, rate=None, zipf_s=0.0, prompt_mean=prompt_tokens, prompt_sigma=0.0,
                   output_mean=ref.COE_OUTPUT_TOKENS, output_sigma=0.0, seed=seed)
    batches = math.ceil(requests / ref.COE_BATCH)

    def batch_ms(machine):
        res = simulate(SimConfig(get_machine(machine), experts, batch_size=ref.COE_BATCH), wl)
        return res.end / batches * 1e3, res.summary()["hbm_hit_rate"]

    sn, sn_hit = batch_ms("sn40l-8")
    rows = []
    for machine, published in (("dgx-h100", ref.COE_LATENCY_RATIO_VS_DGX_H100),
                               ("dgx-a100", ref.COE_LATENCY_RATIO_VS_DGX_A100)):
        dgx, hit = batch_ms(machine)
        rows.append({"target": f"CoE batch latency {machine} / sn40l-8 (x), batch 8, 20 output tokens",
                     "published": published, "simulated": dgx / sn,
                     "error_pct": round((dgx / sn - published) / published * 100, 2),
                     "note": f"no pass mark; batch latency {sn:.1f} ms vs {dgx:.1f} ms, "
                             f"HBM hit rate {sn_hit:.2f} vs {hit:.2f}"})
    return rows
