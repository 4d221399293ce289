"""Experts as the simulator needs them: size in bytes, layer count and KV-cache bytes per token.

Parameter counts and bytes/param come from the caller (the dashboard knows each expert's real model).
Layers and KV bytes/token may be given; when not, they are estimated (see `ExpertSpec`) because the
only thing the engine is always told is the parameter count.
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

from . import references as ref
from .errors import ConfigError

GQA_KV_WIDTH = 8 * 128  # 8 KV heads x head dim 128: the common grouped-query layout of 7B-72B models


@dataclass(frozen=True)
class ExpertSpec:
    """One expert.  Estimates when not given:

    - layers ~ 32 * (params / 7e9) ** (1/3): depth grows roughly with the cube root of size
      (32 at 7B, ~69 at 70B, real models have 28-80);
    - KV bytes/token = 2 (K and V) * layers * 8 KV heads * 128 * bytes/param (grouped-query attention).
    """

    name: str
    params: float
    bytes_per_param: float = 2.0
    n_layers: int | None = None
    kv_bytes_per_token: float | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("an expert needs a non-empty name")
        for field in ("params", "bytes_per_param"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, Real) or not value > 0:
                raise ConfigError(f"expert {self.name!r}: {field} must be a number > 0, got {value!r}")
        if self.n_layers is not None and (not isinstance(self.n_layers, int) or self.n_layers < 1):
            raise ConfigError(f"expert {self.name!r}: n_layers must be a whole number >= 1")
        if self.kv_bytes_per_token is not None and not self.kv_bytes_per_token >= 0:
            raise ConfigError(f"expert {self.name!r}: kv_bytes_per_token must be >= 0")

    @property
    def weight_bytes(self) -> float:
        return self.params * self.bytes_per_param

    @property
    def layers(self) -> int:
        return self.n_layers or max(1, round(32 * (self.params / 7e9) ** (1 / 3)))

    @property
    def kv_per_token(self) -> float:
        if self.kv_bytes_per_token is not None:
            return float(self.kv_bytes_per_token)
        return 2.0 * self.layers * GQA_KV_WIDTH * self.bytes_per_param


def expert_from_dict(data: dict) -> ExpertSpec:
    """{"name", "params", optional "bytes_per_param", "n_layers", "kv_bytes_per_token"} -> ExpertSpec."""
    allowed = {"name", "params", "bytes_per_param", "n_layers", "kv_bytes_per_token"}
    unknown = set(data) - allowed
    if unknown:
        raise ConfigError(f"unknown expert fields {sorted(unknown)}; allowed: {sorted(allowed)}")
    if "name" not in data or "params" not in data:
        raise ConfigError("an expert needs 'name' and 'params'")
    return ExpertSpec(**data)


def uniform_experts(n: int, params: float, bytes_per_param: float = 2.0, prefix: str = "expert") -> list:
    """n identical experts named prefix-000, prefix-001, ... (synthetic maps, capacity studies)."""
    width = max(3, len(str(n - 1)))
    return [ExpertSpec(f"{prefix}-{i:0{width}d}", params, bytes_per_param) for i in range(n)]


# The reference models that presets are calibrated on and the validation table runs, with their real shapes.
LLAMA2_7B = ExpertSpec("Llama-2-7B", ref.LLAMA2_7B_PARAMS, ref.BF16_BYTES, ref.LLAMA2_7B_LAYERS,
                       ref.LLAMA2_7B_KV_BYTES_PER_TOKEN)
LLAMA31_8B = ExpertSpec("Llama-3.1-8B", ref.LLAMA31_8B_PARAMS, ref.BF16_BYTES, 32, 2 * 32 * 8 * 128 * 2)
