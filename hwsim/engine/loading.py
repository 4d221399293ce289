"""GPU model loading: how long an expert takes to reach HBM from a medium (NVMe, or host DRAM) with a loader.

Two loaders, after the ServerlessLLM benchmark: "naive" is the usual path (safetensors files through
`from_pretrained`), "optimised" is ServerlessLLM Store (its own format, O_DIRECT, a pinned-memory pool, parallel
chunked reads).  Two media: "nvme" (a cold load from the SSD) and "dram" (the weights are already in host memory:
the store's pinned pool, or the OS page cache for safetensors).

The model is one effective rate per loader x medium: seconds = bytes / rate.  Each rate is calibrated on ONE
published load (the smallest model measured for that pair; the first listed when sizes tie) and every other
published load of that pair is a prediction the validation table checks.  No fixed set-up time is modelled:
fitting one would need a second load of the same pair, which would then not be a prediction.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import references as ref
from .errors import ConfigError

LOADERS = ("naive", "optimised")
MEDIA = ("nvme", "dram")
LOADER_NAMES = {"naive": "safetensors (from_pretrained)", "optimised": "ServerlessLLM Store"}
MEDIUM_NAMES = {"nvme": "NVMe SSD, cold", "dram": "host DRAM (pinned pool or page cache)"}


@dataclass(frozen=True)
class LoadPath:
    """A loader reading from a medium, with the one published load its rate was calibrated on."""

    loader: str
    medium: str
    model: str
    params: float
    seconds: float

    @property
    def rate(self) -> float:
        """Effective bytes/s of this loader x medium (BF16 weights)."""
        return self.params * ref.BF16_BYTES / self.seconds

    @property
    def source(self) -> str:
        return (f"calibrated: {LOADER_NAMES[self.loader]} from {MEDIUM_NAMES[self.medium]}, {self.model} "
                f"{self.params / 1e9:g}B BF16 in {self.seconds:g} s ({ref.full('sllm_bench')})")

    def load_seconds(self, nbytes: float) -> float:
        return nbytes / self.rate


def calibration_model(loader: str, medium: str) -> str:
    """The published load a loader x medium is calibrated on: its smallest model, first listed on ties."""
    measured = [m for (lo, me, m) in ref.SLLM_LOADS if (lo, me) == (loader, medium)]
    if not measured:
        raise ConfigError(f"no published load for loader {loader!r} and medium {medium!r}")
    return min(measured, key=lambda m: (ref.SLLM_MODEL_PARAMS[m], measured.index(m)))


def load_path(loader: str, medium: str) -> LoadPath:
    if loader not in LOADERS or medium not in MEDIA:
        raise ConfigError(f"loader must be one of {LOADERS} and medium one of {MEDIA}")
    model = calibration_model(loader, medium)
    return LoadPath(loader, medium, model, ref.SLLM_MODEL_PARAMS[model], ref.SLLM_LOADS[(loader, medium, model)])


def predictions() -> list:
    """(loader, medium, model, params, published s, predicted s) for every published load that is not the
    calibration point of its loader x medium."""
    rows = []
    for (loader, medium, model), seconds in ref.SLLM_LOADS.items():
        path = load_path(loader, medium)
        if model != path.model:
            params = ref.SLLM_MODEL_PARAMS[model]
            rows.append((loader, medium, model, params, seconds, path.load_seconds(params * ref.BF16_BYTES)))
    return rows
