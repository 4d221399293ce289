"""Publish JSON-safe events to websocket groups, after the surrounding transaction commits.

Groups: ``dashboard`` (routing decisions, stats, batch progress), ``map`` (map versions, retraining),
``hwsim`` (simulation progress and occupancy). A browser or script joins them through ``/ws/events/``.
Dashboard traffic goes through the per-process ``dashboard`` coalescer (at most ~10 summaries a second).
Events travel on the bus (coe_site.bus: Redis pub/sub, or in-process in embedded mode); each web process fans them
out to its own sockets (coe_site.fanout).
"""
import atexit
import json
import logging
import os
import threading
import time

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from . import bus

GROUPS = ("dashboard", "map", "hwsim")
log = logging.getLogger(__name__)
_start_lock = threading.Lock()


def json_safe(payload):
    """Round-trip through JSON so dates, decimals and numpy scalars become plain JSON values."""
    return json.loads(json.dumps(payload, cls=_Encoder))


class _Encoder(DjangoJSONEncoder):
    def default(self, o):
        if hasattr(o, "item"):  # numpy scalar
            return o.item()
        if hasattr(o, "tolist"):
            return o.tolist()
        return super().default(o)


def send_now(group, event, data):
    """Send immediately (callers already outside a transaction, e.g. a coalescer flushing). Never raises: a dropped
    live update must not fail the write that caused it (pages catch up from the database)."""
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}")
    try:
        bus.publish(group, json.dumps({"event": event, "data": data}, cls=_Encoder))
    except Exception:
        log.exception("realtime publish to %s failed", group)


def publish(group, event, data):
    """Send ``{"event": event, "data": data}`` to ``group`` once the current transaction commits."""
    safe = json_safe(data)
    transaction.on_commit(lambda: send_now(group, event, safe))


class Coalescer:
    """Fold bursts of routing events into one ``dashboard.summary`` message per ``interval`` (per process).

    Why: a batch commits hundreds of decisions a second; forwarding each would flood every browser. A daemon
    thread sends the first event of a quiet period at once (low latency) and after that at most one summary per
    interval: counts per expert and category, fallbacks, latencies, the newest few decisions, batch progress, and
    ``committed``: [commit time, decisions] per commit folded in, so a client can time every decision, not only the
    few shown (bench/bench_ws_latency.py).
    """

    def __init__(self, group="dashboard", event="dashboard.summary", interval=0.1, feed=25, latencies=500,
                 commits=1000):
        self.group, self.event, self.interval, self.feed, self.max_latencies = group, event, interval, feed, latencies
        self.max_commits = commits
        self._pid = None

    def _ensure_thread(self):
        if self._pid == os.getpid():
            return
        with _start_lock:  # first use, or a forked worker child: the parent's thread did not survive the fork
            if self._pid != os.getpid():
                self._cond = threading.Condition()
                self._pending = None
                self._last_sent = 0.0
                threading.Thread(target=self._run, name="realtime-coalescer", daemon=True).start()
                self._pid = os.getpid()

    def _empty(self):
        return {"count": 0, "experts": {}, "categories": {}, "fallbacks": 0, "latencies": [], "decisions": [],
                "committed": [], "batches": {}, "calls": [], "breakers": None}

    def add_decisions(self, decisions):
        """``decisions``: compact dicts with expert, category, fallback_reason, latency_ms and ``t``, the time their
        transaction committed (newest last)."""
        if not decisions:
            return
        self._ensure_thread()
        with self._cond:
            p = self._pending = self._pending or self._empty()
            p["count"] += len(decisions)
            for d in decisions:
                p["experts"][d["expert"]] = p["experts"].get(d["expert"], 0) + 1
                p["categories"][d["category"]] = p["categories"].get(d["category"], 0) + 1
                p["fallbacks"] += bool(d["fallback_reason"])
            room = self.max_latencies - len(p["latencies"])
            if room > 0:
                p["latencies"].extend(d["latency_ms"] for d in decisions[-room:])
            p["decisions"] = (list(reversed(decisions[-self.feed:])) + p["decisions"])[: self.feed]
            commits = {}
            for d in decisions:
                commits[d.get("t")] = commits.get(d.get("t"), 0) + 1
            p["committed"] = (p["committed"] + [[t, n] for t, n in commits.items()])[-self.max_commits:]
            self._cond.notify()

    def add_calls(self, calls, breakers=None):
        """``calls``: compact expert answers {expert, status, ttft_ms, total_ms, fallback_reason, simulated};
        ``breakers``: this process's breaker snapshot {expert: {state, …}} after them."""
        self._ensure_thread()
        with self._cond:
            p = self._pending = self._pending or self._empty()
            p["calls"] = (p["calls"] + list(calls))[-self.max_latencies:]
            if breakers is not None:
                p["breakers"] = breakers
            self._cond.notify()

    def add_batch(self, progress):
        """``progress``: {id, status, done, total}; the newest state of each batch wins."""
        self._ensure_thread()
        with self._cond:
            self._pending = self._pending or self._empty()
            self._pending["batches"][str(progress["id"])] = progress
            self._cond.notify()

    def flush(self):
        """Send whatever is pending now (tests, shutdown)."""
        if self._pid != os.getpid():
            return
        with self._cond:
            pending, self._pending = self._pending, None
            self._last_sent = time.monotonic()
        if pending:
            self._send(pending)

    def _send(self, pending):
        send_now(self.group, self.event, {"t": time.time(), **pending})

    def _run(self):
        while True:
            with self._cond:
                while self._pending is None:
                    self._cond.wait()
                delay = self._last_sent + self.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # let the burst accumulate: one message carries all of it
            with self._cond:
                pending, self._pending = self._pending, None
                self._last_sent = time.monotonic()
            if pending:
                self._send(pending)


dashboard = Coalescer()
atexit.register(dashboard.flush)
