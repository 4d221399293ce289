"""Request streams: replay of routed traffic, or synthetic traffic (Poisson arrivals, Zipf popularity,
log-normal lengths).  Everything random comes from one numpy Generator seeded by the caller, so a
(seed, parameters) pair always yields the same workload.

A workload is four parallel lists (arrival seconds, expert name, prompt tokens, output tokens) rather
than a list of objects: 100k requests stay cheap to build, slice and feed.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from numbers import Real

import numpy as np

from .errors import ConfigError


@dataclass
class Workload:
    """Requests sorted by arrival time; `output` counts every generated token (>= 1)."""

    arrival: list = field(default_factory=list)
    expert: list = field(default_factory=list)
    prompt: list = field(default_factory=list)
    output: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.arrival)

    def __getitem__(self, s: slice) -> "Workload":
        return Workload(self.arrival[s], self.expert[s], self.prompt[s], self.output[s])

    def counts(self) -> Counter:
        return Counter(self.expert)


def _tokens(value, what: str, i: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Real) or value != int(value) or value < 1:
        raise ConfigError(f"record {i}: {what} must be a whole number >= 1, got {value!r}")
    return int(value)


def replay(records, rate: float | None = None) -> Workload:
    """Routed traffic as a workload.

    Each record is a dict {"expert", "prompt_tokens", "output_tokens", and "arrival" (seconds) or
    "order"} or a tuple (arrival, expert, prompt_tokens, output_tokens).  Records without an arrival time
    are spaced 1/rate seconds apart in `order`; with rate None they all arrive at t=0, like an uploaded
    batch.  The result is sorted by arrival (stable, so equal times keep record order).
    """
    rows = []
    for i, r in enumerate(records):
        if isinstance(r, dict):
            missing = {"expert", "prompt_tokens", "output_tokens"} - set(r)
            if missing:
                raise ConfigError(f"record {i} lacks {sorted(missing)}")
            if "arrival" in r:
                t = r["arrival"]
            else:
                order = r.get("order", i)
                t = 0.0 if rate is None else order / rate
            e, p, o = r["expert"], r["prompt_tokens"], r["output_tokens"]
        else:
            try:
                t, e, p, o = r
            except (TypeError, ValueError):
                raise ConfigError(f"record {i} must be a dict or (arrival, expert, prompt, output)") from None
        if isinstance(t, bool) or not isinstance(t, Real) or not math.isfinite(t) or t < 0:
            raise ConfigError(f"record {i}: arrival must be a finite number >= 0, got {t!r}")
        rows.append((float(t), i, str(e), _tokens(p, "prompt_tokens", i), _tokens(o, "output_tokens", i)))
    rows.sort()
    return Workload([r[0] for r in rows], [r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows])


def zipf_weights(n: int, s: float) -> np.ndarray:
    """Popularity of ranks 1..n proportional to rank**-s (s=0 is uniform)."""
    w = np.arange(1, n + 1, dtype=float) ** -float(s)
    return w / w.sum()


def _lognormal(rng, n: int, mean: float, sigma: float, cap: int) -> np.ndarray:
    """Integers with the given mean (before clipping) and log-space spread; sigma=0 gives a constant."""
    mu = math.log(mean) - sigma * sigma / 2
    return np.clip(np.rint(rng.lognormal(mu, sigma, n)), 1, cap).astype(np.int64)


def synthetic(n: int, experts: list, *, rate: float | None = 10.0, zipf_s: float = 1.0,
              prompt_mean: float = 512, prompt_sigma: float = 0.8, max_prompt: int = 8192,
              output_mean: float = 128, output_sigma: float = 0.8, max_output: int = 2048,
              shuffle_ranks: bool = True, seed: int = 0) -> Workload:
    """n requests over the named experts: Poisson arrivals at `rate` per second (None: all at t=0),
    Zipf(zipf_s) popularity, log-normal prompt and output lengths.  With shuffle_ranks the popularity
    ranks are a seeded permutation, so the hottest expert is not always the first in the map."""
    if n < 0 or not experts:
        raise ConfigError("synthetic traffic needs n >= 0 and at least one expert")
    if rate is not None and not rate > 0:
        raise ConfigError(f"rate must be > 0 requests/s or None, got {rate!r}")
    if zipf_s < 0 or prompt_mean < 1 or output_mean < 1 or prompt_sigma < 0 or output_sigma < 0:
        raise ConfigError("zipf_s and sigmas must be >= 0, length means >= 1")
    rng = np.random.default_rng(seed)
    arrival = np.zeros(n) if rate is None else np.cumsum(rng.exponential(1.0 / rate, n))
    ranks = rng.permutation(len(experts)) if shuffle_ranks else np.arange(len(experts))
    choice = ranks[rng.choice(len(experts), size=n, p=zipf_weights(len(experts), zipf_s))]
    names = list(experts)
    return Workload(arrival.tolist(), [names[i] for i in choice.tolist()],
                    _lognormal(rng, n, prompt_mean, prompt_sigma, max_prompt).tolist(),
                    _lognormal(rng, n, output_mean, output_sigma, max_output).tolist())
