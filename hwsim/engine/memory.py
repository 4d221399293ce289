"""How the tiers are divided: what HBM reserves for the router and KV cache, and what is left to cache
experts; what the home tier (DDR, or host DRAM on DGX) must hold; what SRAM holds for a running expert.
"""
from __future__ import annotations

import math

from .errors import ConfigError
from .experts import ExpertSpec
from .presets import Machine


class Layout:
    """Capacities of each tier for one machine and run configuration.

    HBM = router + KV region (a fixed fraction, as serving stacks reserve it up front) + expert cache.
    Every expert lives in the home tier; an expert must be in the HBM expert cache to run.
    """

    def __init__(self, machine: Machine, router_bytes: float = 0.0, kv_reserve_fraction: float = 0.05):
        if not 0 <= kv_reserve_fraction < 1:
            raise ConfigError(f"kv_reserve_fraction must be in [0, 1), got {kv_reserve_fraction}")
        if router_bytes < 0:
            raise ConfigError("router_bytes must be >= 0")
        self.machine = machine
        self.hbm_total = machine.hbm_total
        self.router = float(router_bytes)
        self.kv_region = kv_reserve_fraction * self.hbm_total
        self.expert_cache = self.hbm_total - self.router - self.kv_region
        self.home_total = machine.home_total
        self.sram_total = machine.sram_total
        if self.expert_cache <= 0:
            raise ConfigError(f"router ({self.router / 1e9:.1f} GB) and KV reserve ({self.kv_region / 1e9:.1f} GB) "
                              f"leave no HBM for experts on {machine.name} ({self.hbm_total / 1e9:.1f} GB)")

    def experts_fit_home(self, expert_bytes: float) -> int:
        """How many experts of this size the home tier holds."""
        return math.floor(self.home_total / expert_bytes)

    def experts_fit_hbm(self, expert_bytes: float) -> int:
        """How many experts of this size the HBM expert cache holds before the rest spill."""
        return math.floor(self.expert_cache / expert_bytes)

    def sram_working_set(self, expert: ExpertSpec) -> float:
        """Two layers of weights (one computing while the next streams in), capped by SRAM."""
        return min(self.sram_total, 2.0 * expert.weight_bytes / expert.layers)

    def check(self, experts: list) -> None:
        """Raise ConfigError when the experts cannot be placed: home tier over-full, or an expert too big
        for the HBM expert cache.  Overflowing HBM itself is normal (that is what the cache is for)."""
        total = sum(e.weight_bytes for e in experts)
        m = self.machine
        if total > self.home_total:
            raise ConfigError(
                f"{len(experts)} experts need {total / 1e12:.2f} TB but {m.name} {m.home_tier} holds "
                f"{self.home_total / 1e12:.2f} TB: remove experts, quantise them, or add nodes")
        biggest = max(experts, key=lambda e: e.weight_bytes)
        if biggest.weight_bytes > self.expert_cache:
            raise ConfigError(
                f"expert {biggest.name!r} ({biggest.weight_bytes / 1e9:.1f} GB) does not fit the HBM expert "
                f"cache of {m.name} ({self.expert_cache / 1e9:.1f} GB after router and KV reserve)")
