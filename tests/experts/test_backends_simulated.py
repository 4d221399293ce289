"""SimulatedBackend: labelled placeholder text at the speed the hwsim roofline predicts."""
import asyncio
import time

import pytest

from experts.backends import BackendConfig, BackendError, BreakerBoard, make_backend, open_stream
from experts.backends.simulated import SimulatedBackend
from hwsim.engine import CostModel, ExpertSpec, get_machine

MSGS = [{"role": "user", "content": "one two three four five six seven eight"}]


def config(**overrides) -> BackendConfig:
    return BackendConfig(**{"kind": "simulated", "expert": "maths", "parameters": 7e9, "preset": "sn40l-16",
                            "time_scale": 0.0, **overrides})


def test_estimate_is_prefill_then_batch_one_decode():
    backend = make_backend(config())
    costs = CostModel(get_machine("sn40l-16"), [ExpertSpec("maths", 7e9, 2.0)])
    est = backend.estimate(100, 65)
    assert est["ttft_s"] == pytest.approx(costs.prefill(0, 100))
    assert est["total_s"] == pytest.approx(costs.prefill(0, 100) + costs.decode(0, 1, 101, 64))
    assert est["per_token_s"] == pytest.approx(costs.decode(0, 1, 101, 64) / 64)
    assert 0 < est["ttft_s"] < est["total_s"]
    bigger = make_backend(config(parameters=70e9)).estimate(100, 65)
    assert bigger["per_token_s"] > 5 * est["per_token_s"]  # decode is weight-bandwidth bound


@pytest.mark.asyncio
async def test_streams_labelled_placeholder_tokens_with_usage():
    backend = make_backend(config())
    assert isinstance(backend, SimulatedBackend)
    deltas = [d async for d in backend.stream(MSGS, max_tokens=5)]
    assert len(deltas) == 5
    assert deltas[0].text.startswith("[simulated maths on sn40l-16] ")
    assert all(d.text.startswith(" ") and d.text.strip() for d in deltas[1:])
    assert [d.finish_reason for d in deltas] == [None] * 4 + ["length"]
    assert deltas[-1].usage == {"prompt_tokens": 8, "completion_tokens": 5}
    done = await make_backend(config(generation={"max_new_tokens": 3})).complete(MSGS)
    assert done.usage["completion_tokens"] == 3 and done.text.startswith("[simulated maths")
    assert (await backend.complete(MSGS)).usage["completion_tokens"] == 64


@pytest.mark.asyncio
async def test_sleeps_follow_the_estimate_times_time_scale():
    slept = []

    async def sleep(s):
        slept.append(s)

    backend = SimulatedBackend(config(time_scale=1000.0), sleep=sleep)
    [d async for d in backend.stream(MSGS, max_tokens=10)]
    est = backend.estimate(8, 10)
    # sleeps run to absolute deadlines, and this sleep does not pass time: each is the time to token i
    assert len(slept) == 10
    assert slept[0] == pytest.approx(est["ttft_s"] * 1000, rel=0.05)
    assert slept[1] - slept[0] == pytest.approx(est["per_token_s"] * 1000, rel=0.05)
    assert slept[-1] == pytest.approx(est["total_s"] * 1000, rel=0.05)


@pytest.mark.asyncio
async def test_wall_clock_timing_is_realistic():
    backend = make_backend(config(parameters=70e9, preset="dgx-a100", time_scale=3.0))
    est = backend.estimate(8, 10)
    expected = est["total_s"] * 3.0
    assert 0.1 < expected < 1.0  # the test's premise: measurable, but short
    t0 = time.monotonic()
    opened = await open_stream([("maths", backend)], MSGS, breakers=BreakerBoard(), max_tokens=10)
    assert opened.ttft_ms / 1e3 == pytest.approx(est["ttft_s"] * 3.0, abs=0.05)
    rest = [d async for d in opened.rest]
    assert len(rest) == 9
    assert time.monotonic() - t0 == pytest.approx(expected, rel=0.25, abs=0.03)


def test_bad_configuration_is_a_config_error():
    for bad in (config(preset="tpu-v9"), config(parameters=0.0), config(time_scale=-1.0)):
        with pytest.raises(BackendError) as err:
            make_backend(bad)
        assert err.value.kind == "config"
    with pytest.raises(BackendError, match="tpu-v9"):
        make_backend(config(preset="tpu-v9"))


def test_concurrent_simulated_streams_do_not_block_each_other():
    backend = make_backend(config(time_scale=200.0))
    per_stream = backend.estimate(8, 4)["total_s"] * 200.0

    async def run():
        async def one():
            return [d async for d in backend.stream(MSGS, max_tokens=4)]
        t0 = time.monotonic()
        results = await asyncio.gather(*[one() for _ in range(20)])
        return results, time.monotonic() - t0

    results, took = asyncio.run(run())
    assert all(len(r) == 4 for r in results)
    assert took < per_stream * 5
