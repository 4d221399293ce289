"""A backend that answers with labelled placeholder text at the speed the hwsim roofline predicts.

It lets the whole serving path (routing, dispatch, streaming, dashboards) run, and be timed, for
experts that have no server yet, on hardware we do not have: time to first token is the prefill of
the prompt, then one decode step per token at batch 1.  Sleeps are scheduled against absolute
deadlines so per-token sleep overhead does not accumulate into drift.
"""
from __future__ import annotations

import asyncio
import itertools

from hwsim.engine.costs import CostModel
from hwsim.engine.errors import ConfigError
from hwsim.engine.experts import ExpertSpec
from hwsim.engine.presets import get_machine

from .base import Backend, BackendConfig, BackendError, Delta, generation_settings, prompt_tokens

DEFAULT_MAX_TOKENS = 64
FILLER = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do",
          "eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua")


class SimulatedBackend(Backend):
    def __init__(self, config: BackendConfig, *, sleep=asyncio.sleep):
        super().__init__(config)
        try:
            machine = get_machine(config.preset)
            spec = ExpertSpec(config.expert or "expert", config.parameters, config.bytes_per_parameter)
        except ConfigError as exc:
            raise BackendError(f"simulated expert {config.expert!r}: {exc}", kind="config") from None
        if config.time_scale < 0:
            raise BackendError(f"simulated expert {config.expert!r}: time_scale must be >= 0", kind="config")
        self.costs = CostModel(machine, [spec])
        self.sleep = sleep

    def estimate(self, prompt_tokens: int, output_tokens: int) -> dict:
        """Simulated seconds: ttft_s (prefill), per_token_s (mean decode step), total_s.  The first output
        token comes out of prefill, so the remaining output_tokens - 1 are decode steps."""
        prompt_tokens, output_tokens = max(1, int(prompt_tokens)), max(1, int(output_tokens))
        ttft = self.costs.prefill(0, prompt_tokens)
        steps = output_tokens - 1
        decode = self.costs.decode(0, 1, prompt_tokens + 1, steps)
        per_token = decode / steps if steps else self.costs.decode(0, 1, prompt_tokens + 1, 1)
        return {"ttft_s": ttft, "per_token_s": per_token, "total_s": ttft + decode}

    def label(self) -> str:
        return f"[simulated {self.config.expert} on {self.config.preset}] "

    async def stream(self, messages, *, max_tokens=None, temperature=None, top_p=None, stop=None):
        n_prompt = max(1, prompt_tokens(messages))
        n_out = max(1, generation_settings(self.config, max_tokens=max_tokens)["max_tokens"] or DEFAULT_MAX_TOKENS)
        est = self.estimate(n_prompt, n_out)
        scale = self.config.time_scale
        loop = asyncio.get_running_loop()
        due = loop.time() + est["ttft_s"] * scale
        words = itertools.cycle(FILLER)
        for i in range(n_out):
            if scale:
                await self.sleep(max(0.0, due - loop.time()))
                due += est["per_token_s"] * scale
            text = self.label() + next(words) if i == 0 else " " + next(words)
            if i == n_out - 1:
                yield Delta(text, "length", {"prompt_tokens": n_prompt, "completion_tokens": n_out})
            else:
                yield Delta(text)
