"""Time costs: expert switch (fixed overhead + bytes / link) and forward passes (prefill, decode steps).

A forward pass takes max(FLOPs / effective FLOP/s, bytes moved / effective HBM bandwidth) -- the roofline, where
"effective" multiplies peak by the machine's efficiency factors and by every socket the expert spans -- plus what
the roofline leaves out, both taken from measurements:
- `step_overhead` per pass: kernel launches, host scheduling and small-batch inefficiency (calibrated per machine
  on a published batch-1 decode latency, see presets);
- under tensor parallelism over several sockets, two all-reduces per layer per pass, each `allreduce_s`
  (published small-message latencies; 0 where the collectives are fused into the kernels).
Decode FLOPs are 2 * params per token; bytes are the weights plus the KV cache read.  Attention FLOPs and
activation traffic are left out.  Costs are memoised in dicts keyed on (expert, batch, tokens), since traffic
repeats shapes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .experts import ExpertSpec

if TYPE_CHECKING:
    from .presets import Machine


class CostModel:
    """Switch, prefill and decode times for one machine and one expert list (experts by index).  A `router`
    spec, when given, is costed too (`route`): the model that picks the expert for each prompt."""

    def __init__(self, machine: Machine, experts: list, router: ExpertSpec | None = None):
        self.flops = machine.sockets * machine.v("peak_flops") * machine.v("compute_eff")
        self.bw = machine.sockets * machine.v("hbm_bw") * machine.v("memory_eff")
        self.link = machine.link_total
        self.overhead = machine.v("switch_overhead")
        step = machine.v("step_overhead")
        ar = machine.v("allreduce_s") if machine.sockets > 1 else 0.0
        self.weight = [e.weight_bytes for e in experts]
        self.params = [float(e.params) for e in experts]
        self.kv = [e.kv_per_token for e in experts]
        self.fixed = [step + 2 * e.layers * ar for e in experts]
        self.switch = [self.switch_time(w) for w in self.weight]
        self._prefill: dict = {}
        self._decode: dict = {}
        self._router = None if router is None else (float(router.params), router.weight_bytes, router.kv_per_token,
                                                     step + 2 * router.layers * ar)
        self._route: dict = {}

    def switch_time(self, nbytes: float) -> float:
        """Seconds to bring `nbytes` of weights from the home tier into HBM."""
        return self.overhead + nbytes / self.link

    def _pass(self, params: float, weight: float, kv: float, fixed: float, tokens: int) -> float:
        """One forward pass over `tokens` prompt tokens (summed over a batch)."""
        return max(2.0 * params * tokens / self.flops, (weight + kv * tokens) / self.bw) + fixed

    def prefill(self, e: int, tokens: int) -> float:
        """Prefill of `tokens` prompt tokens (summed over the batch): one pass over the weights."""
        key = (e, tokens)
        t = self._prefill.get(key)
        if t is None:
            t = self._prefill[key] = self._pass(self.params[e], self.weight[e], self.kv[e], self.fixed[e], tokens)
        return t

    def route(self, tokens: int) -> float:
        """The router's pass over `tokens` prompt tokens (0 without a router)."""
        if self._router is None:
            return 0.0
        t = self._route.get(tokens)
        if t is None:
            t = self._route[tokens] = self._pass(*self._router, tokens)
        return t

    def decode(self, e: int, batch: int, ctx: int, steps: int) -> float:
        """`steps` decode steps of a batch whose summed context starts at `ctx` tokens and grows by
        `batch` per step.  Closed form of the per-step sum: memory time grows linearly with context,
        compute time is constant, and the larger of the two sums is taken (exact when one side bounds
        every step, which holds away from the ridge point); each step adds the fixed per-pass cost."""
        if steps <= 0:
            return 0.0
        key = (e, batch, ctx, steps)
        t = self._decode.get(key)
        if t is None:
            compute = steps * 2.0 * self.params[e] * batch / self.flops
            kv_tokens = steps * ctx + batch * steps * (steps - 1) / 2
            memory = (steps * self.weight[e] + self.kv[e] * kv_tokens) / self.bw
            t = self._decode[key] = max(compute, memory) + steps * self.fixed[e]
        return t

    def request_seconds(self, e: int, prompt: int, output: int) -> float:
        """One batch-1 request on a resident expert: prefill (which yields the first token), then output-1
        decode steps."""
        return self.prefill(e, prompt) + self.decode(e, 1, prompt + 1, output - 1)

    def group_decode(self, e: int, prompts: list, outputs: list) -> list:
        """Decode finish offsets (s) for requests batched on one expert.  The first output token comes
        from prefill, so a request needs output-1 decode steps; the batch shrinks as requests finish."""
        if len(prompts) == 1:
            return [self.decode(e, 1, prompts[0] + 1, outputs[0] - 1)]
        finish = [0.0] * len(prompts)
        ctx = sum(prompts) + len(prompts)
        active, steps_done, t = len(prompts), 0, 0.0
        for k in sorted(range(len(prompts)), key=outputs.__getitem__):
            steps = outputs[k] - 1 - steps_done
            if steps > 0:
                t += self.decode(e, active, ctx, steps)
                ctx += active * steps
                steps_done += steps
            finish[k] = t
            active -= 1
            ctx -= prompts[k] + 1 + steps_done
        return finish


def decode_tokens_per_s(machine: Machine, expert: ExpertSpec, ctx: int = 1) -> float:
    """Single-stream decode rate (batch 1) that the simulator uses for this expert."""
    return 1.0 / CostModel(machine, [expert]).decode(0, 1, ctx, 1)
