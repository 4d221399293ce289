"""Small estimates built on the simulator, for callers that need one number rather than a run (the map editor's
impact preview asks how many expert switches a sequence of routed prompts would cost)."""
from __future__ import annotations

from .presets import get_machine
from .simulator import SimConfig, simulate
from .workloads import replay


def switches_for(sequence, prompt_tokens, specs, machine: str = "sn40l-8", policy: str = "lru", *,
                 output_tokens: int = 64, rate: float = 10.0) -> int:
    """Expert switches the simulator counts for serving ``sequence`` (expert names, in arrival order, one request
    each with its ``prompt_tokens`` and ``output_tokens``, ``rate`` requests a second) on preset ``machine`` with
    eviction ``policy``. ``specs``: ExpertSpecs to draw from; only the experts the sequence uses are simulated, and
    names without a spec are skipped. 0 for a sequence with no known expert. Raises ConfigError when the experts
    cannot be served on that machine (e.g. one does not fit)."""
    by_name = {s.name: s for s in specs}
    used = sorted({e for e in sequence if e in by_name})
    if not used:
        return 0
    records = [{"expert": e, "prompt_tokens": t, "output_tokens": output_tokens, "order": i}
               for i, (e, t) in enumerate(zip(sequence, prompt_tokens)) if e in by_name]
    config = SimConfig(get_machine(machine), [by_name[n] for n in used], policy=policy)
    return simulate(config, replay(records, rate=rate)).summary()["switches"]
