"""Results of a run: per-request timings, latency percentiles, per-expert load, switch events, and tier
occupancy / expert residency over time.  Every method returns JSON-safe values (plain float, int, str,
list, dict) so the Django side can store or publish them without conversion.
"""
from __future__ import annotations

import numpy as np

PERCENTILES = (50, 90, 99)


class Sampler:
    """At most `cap` evenly spaced samples of an unbounded stream.  The producer offers item k only when
    k % stride == 0; when the list fills, every other sample is dropped and the stride doubles, so 100k
    runs keep a bounded, evenly thinned series (and the same series however the run was fed)."""

    def __init__(self, cap: int):
        self.cap = cap
        self.stride = 1
        self.items: list = []

    def add(self, item) -> None:
        self.items.append(item)
        if len(self.items) >= self.cap:
            self.items = self.items[::2]
            self.stride *= 2


def _ms(x) -> float:
    return float(x) * 1e3


class SimResult:
    """Metrics over the requests a Simulator has completed (built by Simulator.result())."""

    def __init__(self, sim):
        self.config = sim.config
        self.machine = sim.config.machine
        self.layout = sim.layout
        self.names = list(sim.names)
        self.weight = list(sim.cost.weight)
        self.sram_ws = list(sim.sram_ws)
        start = np.array(sim.start, dtype=float)
        served = ~np.isnan(start)
        self.ids = np.flatnonzero(served)
        self.arrival = np.array(sim.arrival, dtype=float)[served]
        self.start = start[served]
        self.route = np.array(sim.route_s, dtype=float)[served]
        self.expert = np.array(sim.expert, dtype=np.int64)[served]
        self.prompt = np.array(sim.prompt, dtype=np.int64)[served]
        self.output = np.array(sim.output, dtype=np.int64)[served]
        self.switch = np.array(sim.switch_s, dtype=float)[served]
        self.prefill = np.array(sim.prefill_s, dtype=float)[served]
        self.decode = np.array(sim.decode_s, dtype=float)[served]
        self.queue = self.start - self.arrival - self.route
        self.ttft = self.queue + self.route + self.switch + self.prefill
        self.e2e = self.ttft + self.decode
        self.switch_events = list(sim.switch_events)
        self.runs = list(sim.runs)
        self.route_events = list(sim.route_events)
        self.samples = list(sim.samples.items)
        self.load = list(sim.load)
        self.busy = list(sim.busy)
        self.miss_requests = sim.miss_requests
        self.fed = len(sim.arrival)
        self.wall_seconds = sim.wall
        self.end = max((r[0] + r[3] + r[4] + r[5] for r in self.runs), default=0.0)

    # -- headline figures -----------------------------------------------------------------------------
    def percentiles(self, metric: str) -> dict:
        """{"p50": ms, "p90": ms, "p99": ms} of queue, route, switch, prefill, decode, ttft or e2e."""
        values = getattr(self, metric)
        if not len(values):
            return {f"p{p}": 0.0 for p in PERCENTILES}
        return {f"p{p}": _ms(v) for p, v in zip(PERCENTILES, np.percentile(values, PERCENTILES))}

    def summary(self) -> dict:
        n = len(self.ids)
        sw = np.array([ev[2] for ev in self.switch_events], dtype=float)
        gbps = np.array([self.weight[ev[1]] / ev[2] / 1e9 for ev in self.switch_events if ev[2] > 0])
        ttft, e2e = self.percentiles("ttft"), self.percentiles("e2e")
        fits = sorted(self.weight)
        in_hbm = int(np.searchsorted(np.cumsum(fits), self.layout.expert_cache, side="right"))
        return {
            "machine": self.machine.name, "policy": self.config.policy, "batching": self.config.batching,
            "batch_size": self.config.batch_size, "experts": len(self.names),
            "requests": n, "requests_fed": self.fed,
            "wall_seconds": float(self.wall_seconds),
            "requests_per_wall_second": float(n / self.wall_seconds) if self.wall_seconds else 0.0,
            "sim_seconds": float(self.end),
            "throughput_rps": float(n / self.end) if self.end else 0.0,
            "switches": len(self.switch_events),
            "hbm_hit_rate": float(1 - self.miss_requests / n) if n else 0.0,
            "switch_ms_mean": _ms(sw.mean()) if len(sw) else 0.0,
            "switch_gbps_mean": float(gbps.mean()) if len(gbps) else 0.0,
            "queue_ms_mean": _ms(self.queue.mean()) if n else 0.0,
            "route_ms_mean": _ms(self.route.mean()) if n else 0.0,
            "prefill_ms_mean": _ms(self.prefill.mean()) if n else 0.0,
            "decode_ms_mean": _ms(self.decode.mean()) if n else 0.0,
            **{f"ttft_{k}_ms": v for k, v in ttft.items()},
            **{f"e2e_{k}_ms": v for k, v in e2e.items()},
            "hbm_expert_cache_bytes": float(self.layout.expert_cache),
            "experts_fit_hbm": in_hbm,
            "spilled_experts": len(self.names) - min(in_hbm, len(self.names)),
        }

    def cdf(self, metric: str, points: int = 101) -> dict:
        """Quantiles for a CDF plot: {"q": [0..1], "ms": [...]}, `points` evenly spaced."""
        q = np.linspace(0, 1, points)
        values = getattr(self, metric)
        ms = np.quantile(values, q) * 1e3 if len(values) else np.zeros(points)
        return {"q": q.tolist(), "ms": ms.tolist()}

    def per_expert(self) -> list:
        """Load per expert: requests, switches, busy seconds, share of requests."""
        switches = [0] * len(self.names)
        for ev in self.switch_events:
            switches[ev[1]] += 1
        total = sum(self.load) or 1
        return [{"expert": n, "requests": self.load[i], "switches": switches[i], "busy_s": float(self.busy[i]),
                 "share": self.load[i] / total, "bytes": float(self.weight[i])} for i, n in enumerate(self.names)]

    def switches(self, limit: int | None = None) -> list:
        """Switch events: time, expert, bytes, duration, achieved GB/s (overhead included), evicted."""
        return [{"t_s": float(t), "expert": self.names[e], "bytes": float(self.weight[e]), "duration_ms": _ms(d),
                 "gbps": float(self.weight[e] / d / 1e9) if d else 0.0,
                 "evicted": [self.names[v] for v in ev]}
                for t, e, d, ev in self.switch_events[:limit]]

    def requests(self) -> dict:
        """Per-request columns (times in ms), in request-id (arrival) order."""
        return {"id": self.ids.tolist(), "arrival_s": self.arrival.tolist(),
                "expert": [self.names[e] for e in self.expert.tolist()],
                "prompt_tokens": self.prompt.tolist(), "output_tokens": self.output.tolist(),
                **{f"{m}_ms": (getattr(self, m) * 1e3).tolist()
                   for m in ("queue", "route", "switch", "prefill", "decode", "ttft", "e2e")}}

    # -- tiers over time ------------------------------------------------------------------------------
    def _series(self) -> list:
        """Samples plus a closing idle sample at the end of the run."""
        if not self.samples:
            return []
        last = self.samples[-1]
        return self.samples + [(self.end, last[1], None, 0.0)] if self.end > last[0] else self.samples

    def occupancy(self) -> dict:
        """Bytes by owner per tier over (sampled) time, with capacities, for stacked-area charts.

        {"tiers": [{"tier", "capacity", "t": [...], "owners": [{"owner", "kind", "bytes": [...]}]}]}
        kinds: router, kv, expert, free.  The home tier is static: every expert lives there."""
        lay, samples = self.layout, self._series()
        t = [float(s[0]) for s in samples]
        sets = [set(s[1]) for s in samples]
        seen = sorted(set().union(*sets)) if sets else []
        kv = [float(s[3]) for s in samples]
        owners = [{"owner": "router", "kind": "router", "bytes": [lay.router] * len(t)},
                  {"owner": "kv", "kind": "kv", "bytes": kv}]
        used = [lay.router + k for k in kv]
        for e in seen:
            col = [self.weight[e] if e in s else 0.0 for s in sets]
            used = [u + c for u, c in zip(used, col)]
            owners.append({"owner": self.names[e], "kind": "expert", "bytes": col})
        owners.append({"owner": "free", "kind": "free", "bytes": [lay.hbm_total - u for u in used]})
        hbm = {"tier": "HBM", "capacity": lay.hbm_total, "t": t, "owners": owners}

        running = sorted({s[2] for s in samples if s[2] is not None})
        sram_owners = [{"owner": self.names[e], "kind": "expert",
                        "bytes": [self.sram_ws[e] if s[2] == e else 0.0 for s in samples]} for e in running]
        sram_used = [self.sram_ws[s[2]] if s[2] is not None else 0.0 for s in samples]
        sram_owners.append({"owner": "free", "kind": "free", "bytes": [lay.sram_total - u for u in sram_used]})
        sram = {"tier": "SRAM", "capacity": lay.sram_total, "t": t, "owners": sram_owners}

        ends = [0.0, float(self.end)]
        home_owners = [{"owner": n, "kind": "expert", "bytes": [self.weight[i]] * 2} for i, n in enumerate(self.names)]
        home_owners.append({"owner": "free", "kind": "free", "bytes": [lay.home_total - sum(self.weight)] * 2})
        home = {"tier": self.machine.home_tier, "capacity": lay.home_total, "t": ends, "owners": home_owners}
        return {"tiers": [home, hbm, sram]}

    def residency(self) -> dict:
        """Expert x time heatmap of HBM residency (1 resident, 0 not) at the sampled times."""
        samples = self._series()
        sets = [set(s[1]) for s in samples]
        return {"t": [float(s[0]) for s in samples], "experts": self.names,
                "resident": [[1 if e in s else 0 for s in sets] for e in range(len(self.names))]}
