"""Replacement policies for the HBM expert cache.

All are demand policies over a byte capacity: an expert is loaded when a request needs it, and victims
are evicted until it fits.  They differ only in the victim they choose:

- lru    least recently used (Samba-CoE's policy);
- lfu    fewest uses so far, ties broken by least recent use;
- pinned a hot set that is never evicted once loaded, LRU for the rest;
- belady the expert whose next use is farthest in the future (Belady's MIN).  It needs the future
         request sequence, so it is an offline bound: optimal for equal-sized experts served in arrival
         order; with mixed sizes or per-expert batching it is the classic heuristic, not a proof.
"""
from __future__ import annotations

from collections import OrderedDict

from .errors import ConfigError

NEVER = float("inf")


class ExpertCache:
    """Byte-capacity cache of expert indices; `resident` keeps least recently used first."""

    def __init__(self, capacity: float, sizes: list):
        self.capacity = capacity
        self.sizes = sizes
        self.used = 0.0
        self.resident: OrderedDict = OrderedDict()

    def access(self, e: int, pos: int) -> tuple:
        """Use expert e for the request at sequence position pos; returns (hit, evicted experts)."""
        resident = self.resident
        if e in resident:
            resident.move_to_end(e)
            self._used(e, pos)
            return True, ()
        need = self.sizes[e]
        evicted = []
        while self.used + need > self.capacity:
            victim = self._victim()
            del resident[victim]
            self.used -= self.sizes[victim]
            evicted.append(victim)
        resident[e] = None
        self.used += need
        self._used(e, pos)
        return False, tuple(evicted)

    def _used(self, e: int, pos: int) -> None:
        """Bookkeeping hook for policies that track use counts or positions."""

    def _victim(self) -> int:
        return next(iter(self.resident))


class LRU(ExpertCache):
    pass


class LFU(ExpertCache):
    def __init__(self, capacity, sizes):
        super().__init__(capacity, sizes)
        self.count = [0] * len(sizes)

    def _used(self, e, pos):
        self.count[e] += 1

    def _victim(self):
        count = self.count
        return min(self.resident, key=count.__getitem__)  # min keeps the first (least recent) on ties


class Pinned(ExpertCache):
    def __init__(self, capacity, sizes, pinned):
        super().__init__(capacity, sizes)
        self.pinned = frozenset(pinned)

    def _victim(self):
        return next(e for e in self.resident if e not in self.pinned)


class Belady(ExpertCache):
    """next_use[pos] is the position of the next request for the same expert (NEVER if none known);
    it is shared with the simulator, which fills it in as requests are fed."""

    def __init__(self, capacity, sizes, next_use):
        super().__init__(capacity, sizes)
        self.next_use = next_use
        self.last_pos = [0] * len(sizes)

    def _used(self, e, pos):
        self.last_pos[e] = pos

    def _victim(self):
        nxt, last = self.next_use, self.last_pos
        return max(self.resident, key=lambda r: nxt[last[r]])


POLICIES = ("lru", "lfu", "pinned", "belady")


def make_policy(name: str, capacity: float, sizes: list, next_use: list, pinned=()) -> ExpertCache:
    if name == "lru":
        return LRU(capacity, sizes)
    if name == "lfu":
        return LFU(capacity, sizes)
    if name == "pinned":
        return Pinned(capacity, sizes, pinned)
    if name == "belady":
        return Belady(capacity, sizes, next_use)
    raise ConfigError(f"unknown cache policy {name!r}; policies: {', '.join(POLICIES)}")
