"""Discrete-event simulator of one serving machine running a Composition of Experts.

The machine runs one expert at a time, tensor-parallel over all its sockets (as Samba-CoE does).
Events are request arrivals (a sorted stream) and the machine becoming free; with one server that merge
is the whole event list, so the loop below steps from one dispatch to the next.  Two batching policies:

- "coe" (the SN40L paper): the batch of up to `batch_size` queued prompts belongs to the whole CoE and
  each (prompt, expert) pair runs in turn at batch 1, in arrival order;
- "per-expert": the expert with the oldest waiting request runs all its waiting requests (up to
  `batch_size`, and as many as the KV reserve allows) as one batch, which amortises the switch.

With a `router` model in the config (the SN40L paper's Samba-CoE routes with a Llama2-7B on the accelerator), each
dispatch first runs the router over the prompts it serves, in one pass, and the router's weights stay in HBM.

The simulator can be fed incrementally (a live twin): `feed()` appends requests in arrival order,
`advance(until)` runs every dispatch that starts before `until`, `snapshot()` reports current state,
`result()` the metrics so far.  Feeding in chunks and advancing to each chunk's last arrival gives the
same result as one batch run, because a dispatch at time s only ever looks at arrivals <= s.
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, replace
from heapq import heappop, heappush

from .costs import CostModel
from .errors import ConfigError
from .experts import ExpertSpec
from .memory import Layout
from .metrics import Sampler, SimResult
from .policies import NEVER, POLICIES, make_policy
from .presets import Machine
from .workloads import Workload, replay

BATCHING = ("coe", "per-expert")


@dataclass
class SimConfig:
    """One simulation: machine, experts (ExpertSpec list) and policies."""

    machine: Machine
    experts: list
    policy: str = "lru"
    batching: str = "coe"
    batch_size: int = 8
    router_bytes: float = 0.0
    kv_reserve_fraction: float = 0.05
    pinned: tuple | None = None
    snapshot_cap: int = 2000
    router: ExpertSpec | None = None

    def router_hbm(self) -> float:
        """HBM the router holds: a costed router's weights, else `router_bytes` (a router not simulated)."""
        return self.router.weight_bytes if self.router is not None else self.router_bytes

    def layout(self) -> Layout:
        """Validate the configuration and return its memory layout (raises ConfigError)."""
        if not self.experts:
            raise ConfigError("a simulation needs at least one expert")
        names = [e.name for e in self.experts]
        if len(set(names)) != len(names):
            raise ConfigError("expert names must be unique")
        if self.policy not in POLICIES:
            raise ConfigError(f"unknown cache policy {self.policy!r}; policies: {', '.join(POLICIES)}")
        if self.batching not in BATCHING:
            raise ConfigError(f"unknown batching {self.batching!r}; choose from {', '.join(BATCHING)}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError("batch_size must be a whole number >= 1")
        if not isinstance(self.snapshot_cap, int) or self.snapshot_cap < 2:
            raise ConfigError("snapshot_cap must be a whole number >= 2")
        if self.router is not None and not isinstance(self.router, ExpertSpec):
            raise ConfigError("router must be an ExpertSpec (or None)")
        layout = Layout(self.machine, self.router_hbm(), self.kv_reserve_fraction)
        layout.check(self.experts)
        if self.policy == "pinned":
            if self.pinned is None:
                raise ConfigError("policy 'pinned' needs pinned expert names (simulate() picks the hot set)")
            unknown = set(self.pinned) - set(names)
            if unknown:
                raise ConfigError(f"pinned experts not in the map: {sorted(unknown)}")
            size = {e.name: e.weight_bytes for e in self.experts}
            free = layout.expert_cache - sum(size[n] for n in set(self.pinned))
            others = [size[n] for n in names if n not in set(self.pinned)]
            if others and max(others) > free:
                raise ConfigError("the pinned set leaves too little HBM for the largest unpinned expert")
        return layout


def hot_set(config: SimConfig, workload: Workload, fraction: float = 0.5) -> tuple:
    """Most requested experts whose weights fill at most `fraction` of the HBM expert cache while
    leaving room for the largest unpinned expert."""
    cache = Layout(config.machine, config.router_hbm(), config.kv_reserve_fraction).expert_cache
    size = {e.name: e.weight_bytes for e in config.experts}
    counts = workload.counts()
    chosen, used = [], 0.0
    for name in sorted(size, key=lambda n: -counts.get(n, 0)):
        rest = [b for n, b in size.items() if n != name and n not in chosen]
        if counts.get(name, 0) and used + size[name] <= min(fraction * cache, cache - max(rest, default=0)):
            chosen.append(name)
            used += size[name]
    return tuple(chosen)


class Simulator:
    """Incremental discrete-event simulator; see the module docstring for the feeding contract."""

    def __init__(self, config: SimConfig):
        self.config = config
        self.layout = config.layout()
        self.names = [e.name for e in config.experts]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.cost = CostModel(config.machine, config.experts, config.router)
        self._routing = config.router is not None
        self.sram_ws = [self.layout.sram_working_set(e) for e in config.experts]
        n_exp = len(self.names)
        self.next_use: list = []
        self.cache = make_policy(config.policy, self.layout.expert_cache, self.cost.weight, self.next_use,
                                 [self.index[n] for n in (config.pinned or ())])
        # per-request columns (inputs, then outputs filled when the request's run starts)
        self.arrival, self.expert, self.prompt, self.output = [], [], [], []
        self.start, self.route_s, self.switch_s, self.prefill_s, self.decode_s = [], [], [], [], []
        self._last_seen = [-1] * n_exp
        self._ptr = 0
        self._t_free = 0.0
        self.now = 0.0
        self._last_kv = 0.0
        self._fifo: deque = deque()
        self._queues = [deque() for _ in range(n_exp)]
        self._heap: list = []
        self._queued = 0
        self.done = 0
        self.miss_requests = 0
        self.load = [0] * n_exp
        self.busy = [0.0] * n_exp
        self.switch_events: list = []  # (t, expert, seconds, evicted experts)
        self.runs: list = []  # (t, expert, batch, switch s, prefill s, decode s)
        self.route_events: list = []  # (t, router s, prompts routed)
        self.samples = Sampler(config.snapshot_cap)  # (t, resident experts, running expert, kv bytes)
        self._tick = 0
        self.wall = 0.0

    # -- feeding -------------------------------------------------------------------------------------
    def feed(self, items) -> int:
        """Append requests (a Workload, or records as accepted by `replay`).  Arrivals must not go back
        in time past what was already fed.  Returns the number of requests fed so far."""
        wl = items if isinstance(items, Workload) else replay(items)
        if not len(wl):
            return len(self.arrival)
        if self.arrival and wl.arrival[0] < self.arrival[-1]:
            raise ConfigError(f"requests must be fed in arrival order: {wl.arrival[0]} s after "
                              f"{self.arrival[-1]} s")
        try:
            ex = [self.index[n] for n in wl.expert]
        except KeyError as err:
            raise ConfigError(f"workload names expert {err.args[0]!r}, which is not in the map") from None
        kv = self.cost.kv
        region = self.layout.kv_region
        for j, e in enumerate(ex):
            if (wl.prompt[j] + wl.output[j]) * kv[e] > region:
                raise ConfigError(f"a request of {wl.prompt[j] + wl.output[j]} tokens on {self.names[e]!r} "
                                  f"needs more KV cache than the {region / 1e9:.1f} GB reserve")
        base, n = len(self.arrival), len(ex)
        last, nxt = self._last_seen, self.next_use
        nxt.extend([NEVER] * n)
        for j, e in enumerate(ex, base):
            if last[e] >= 0:
                nxt[last[e]] = j
            last[e] = j
        self.arrival.extend(wl.arrival)
        self.expert.extend(ex)
        self.prompt.extend(wl.prompt)
        self.output.extend(wl.output)
        for col in (self.start, self.route_s, self.switch_s, self.prefill_s, self.decode_s):
            col.extend([math.nan] * n)
        return len(self.arrival)

    # -- running -------------------------------------------------------------------------------------
    def advance(self, until: float = math.inf, progress=None, every: int = 1000) -> None:
        """Run every dispatch that starts before `until` (all of them by default).  The caller promises
        that every request arriving before `until` has been fed.  progress(done, fed) is called each
        time another `every` requests have completed."""
        t0 = time.perf_counter()
        every = max(1, int(every))
        next_report = (self.done // every + 1) * every
        arrival = self.arrival
        n = len(arrival)
        ptr, t_free = self._ptr, self._t_free
        per_expert = self.config.batching == "per-expert"
        while True:
            if self._queued:
                s = t_free
            elif ptr < n:
                s = arrival[ptr] if arrival[ptr] > t_free else t_free
            else:
                break
            if s >= until:
                break
            while ptr < n and arrival[ptr] <= s:
                self._enqueue(ptr)
                ptr += 1
            t_free = self._dispatch_group(s) if per_expert else self._dispatch_batch(s)
            if progress is not None and self.done >= next_report:
                progress(self.done, n)
                next_report = (self.done // every + 1) * every
        self._ptr, self._t_free = ptr, t_free
        self.now = max(self.now, until if until < math.inf else t_free)
        self.wall += time.perf_counter() - t0

    def finish(self, progress=None, every: int = 1000) -> SimResult:
        """Run everything fed so far to completion and return the result."""
        self.advance(math.inf, progress, every)
        if progress is not None and (self.done % max(1, int(every)) or not self.done):
            progress(self.done, len(self.arrival))  # the last, partial step
        return self.result()

    def result(self) -> SimResult:
        """Metrics over the requests completed so far."""
        return SimResult(self)

    def snapshot(self) -> dict:
        """Current state for a live view (JSON-safe): HBM by owner at `t`, the time last advanced to."""
        m = self.layout
        resident = {self.names[e]: self.cost.weight[e] for e in self.cache.resident}
        running = bool(self.runs) and self._t_free > self.now
        kv = self._last_kv if running else 0.0
        return {
            "t": self.now, "fed": len(self.arrival), "done": self.done, "queued": self._queued,
            "switches": len(self.switch_events),
            "hbm_hit_rate": 1.0 - self.miss_requests / self.done if self.done else 0.0,
            "running": self.names[self.runs[-1][1]] if running else None,
            "hbm": {"capacity": m.hbm_total, "router": m.router, "kv": kv, "experts": resident,
                    "free": m.hbm_total - m.router - kv - sum(resident.values())},
        }

    # -- internals -----------------------------------------------------------------------------------
    def _enqueue(self, i: int) -> None:
        self._queued += 1
        if self.config.batching == "coe":
            self._fifo.append(i)
            return
        e = self.expert[i]
        q = self._queues[e]
        if not q:
            heappush(self._heap, (i, e))
        q.append(i)

    def _route(self, s: float, group: list) -> float:
        """Run the router over `group`'s prompts at time s; returns its duration."""
        r = self.cost.route(sum(self.prompt[i] for i in group))
        self.route_events.append((s, r, len(group)))
        return r

    def _dispatch_batch(self, s: float) -> float:
        fifo = self._fifo
        if not self._routing:
            t = s
            for _ in range(min(self.config.batch_size, len(fifo))):
                i = fifo.popleft()
                t = self._run(t, self.expert[i], [i])
            return t
        batch = [fifo.popleft() for _ in range(min(self.config.batch_size, len(fifo)))]
        r = self._route(s, batch)
        t = s + r
        for i in batch:
            t = self._run(t, self.expert[i], [i], r)
        return t

    def _dispatch_group(self, s: float) -> float:
        _, e = heappop(self._heap)
        q = self._queues[e]
        kv, region, cap = self.cost.kv[e], self.layout.kv_region, self.config.batch_size
        i = q.popleft()
        group, need = [i], (self.prompt[i] + self.output[i]) * kv
        while q and len(group) < cap:
            more = (self.prompt[q[0]] + self.output[q[0]]) * kv
            if need + more > region:
                break
            need += more
            group.append(q.popleft())
        if q:
            heappush(self._heap, (q[0], e))
        r = self._route(s, group) if self._routing else 0.0
        return self._run(s + r, e, group, r)

    def _run(self, t: float, e: int, group: list, routed: float = 0.0) -> float:
        """Switch expert e in if needed, prefill and decode `group` on it; returns the finish time."""
        b = len(group)
        hit, evicted = self.cache.access(e, group[-1])
        if hit:
            sw = 0.0
        else:
            sw = self.cost.switch[e]
            self.switch_events.append((t, e, sw, evicted))
            self.miss_requests += b
        cost, prompt, output = self.cost, self.prompt, self.output
        if b == 1:
            i = group[0]
            pf = cost.prefill(e, prompt[i])
            fin = (cost.decode(e, 1, prompt[i] + 1, output[i] - 1),)
            tokens = prompt[i] + output[i]
        else:
            ps = [prompt[i] for i in group]
            os_ = [output[i] for i in group]
            pf = cost.prefill(e, sum(ps))
            fin = cost.group_decode(e, ps, os_)
            tokens = sum(ps) + sum(os_)
        self._last_kv = kv = tokens * cost.kv[e]
        if self._tick % self.samples.stride == 0:
            self.samples.add((t, tuple(self.cache.resident), e, kv))
        self._tick += 1
        start, rts, sws, pfs, dcs = self.start, self.route_s, self.switch_s, self.prefill_s, self.decode_s
        for i, d in zip(group, fin):
            start[i] = t
            rts[i] = routed
            sws[i] = sw
            pfs[i] = pf
            dcs[i] = d
        dec = max(fin)
        self.runs.append((t, e, b, sw, pf, dec))
        self.load[e] += b
        self.busy[e] += sw + pf + dec
        self.done += b
        self._queued -= b
        return t + sw + pf + dec


def simulate(config: SimConfig, workload: Workload, progress=None, every: int = 1000) -> SimResult:
    """Run a whole workload.  For policy 'pinned' without names, pins the workload's hot set."""
    if config.policy == "pinned" and config.pinned is None:
        config = replace(config, pinned=hot_set(config, workload))
    sim = Simulator(config)
    sim.feed(workload)
    return sim.finish(progress, every)
