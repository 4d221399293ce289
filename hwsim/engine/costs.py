"""Time costs: expert switch (fixed overhead + bytes / link) and a roofline for prefill and decode.

Roofline: a step takes max(FLOPs / effective FLOP/s, bytes moved / effective HBM bandwidth), where
"effective" multiplies peak by the machine's efficiency factors and by every socket the expert spans.
Decode FLOPs are 2 * params per token; bytes are the weights plus the KV cache read.  Attention FLOPs
and activation traffic are left out: they are small next to the weights for prompts of a few thousand
tokens.  Costs are memoised in dicts keyed on (expert, batch, tokens), since traffic repeats shapes.
"""
from __future__ import annotations

from .experts import ExpertSpec
from .presets import Machine


class CostModel:
    """Switch, prefill and decode times for one machine and one expert list (experts by index)."""

    def __init__(self, machine: Machine, experts: list):
        self.flops = machine.sockets * machine.v("peak_flops") * machine.v("compute_eff")
        self.bw = machine.sockets * machine.v("hbm_bw") * machine.v("memory_eff")
        self.link = machine.link_total
        self.overhead = machine.v("switch_overhead")
        self.weight = [e.weight_bytes for e in experts]
        self.params = [float(e.params) for e in experts]
        self.kv = [e.kv_per_token for e in experts]
        self.switch = [self.switch_time(w) for w in self.weight]
        self._prefill: dict = {}
        self._decode: dict = {}

    def switch_time(self, nbytes: float) -> float:
        """Seconds to bring `nbytes` of weights from the home tier into HBM."""
        return self.overhead + nbytes / self.link

    def prefill(self, e: int, tokens: int) -> float:
        """Prefill of `tokens` prompt tokens (summed over the batch): one pass over the weights."""
        key = (e, tokens)
        t = self._prefill.get(key)
        if t is None:
            compute = 2.0 * self.params[e] * tokens / self.flops
            memory = (self.weight[e] + self.kv[e] * tokens) / self.bw
            t = self._prefill[key] = max(compute, memory)
        return t

    def decode(self, e: int, batch: int, ctx: int, steps: int) -> float:
        """`steps` decode steps of a batch whose summed context starts at `ctx` tokens and grows by
        `batch` per step.  Closed form of the per-step sum: memory time grows linearly with context,
        compute time is constant, and the larger of the two sums is taken (exact when one side bounds
        every step, which holds away from the ridge point)."""
        if steps <= 0:
            return 0.0
        key = (e, batch, ctx, steps)
        t = self._decode.get(key)
        if t is None:
            compute = steps * 2.0 * self.params[e] * batch / self.flops
            kv_tokens = steps * ctx + batch * steps * (steps - 1) / 2
            memory = (steps * self.weight[e] + self.kv[e] * kv_tokens) / self.bw
            t = self._decode[key] = max(compute, memory)
        return t

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
