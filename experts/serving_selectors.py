"""How the experts have been serving: per-expert latency percentiles, error rates and fallbacks over the last few
minutes of ExpertCall rows, and the circuit breakers of every process merged from the shared cache.

The live dashboard loads this on (re)connect and then folds ``calls``/``breakers`` from websocket summaries in, so
the compact call list here has the same shape as ``answering.call_item`` and the percentiles are nearest-rank,
like the page's.
"""
import math
import time
from datetime import timedelta

from django.core.cache import cache
from django.utils import timezone

from .backend_registry import BREAKER_KEY, INDEX_KEY
from .models import Expert, ExpertCall

STATE_RANK = {"closed": 0, "half_open": 1, "open": 2}  # merging processes: the worst state wins
IDLE = {"calls": 0, "errors": 0, "fallbacks": 0, "aborted": 0, "answered": 0, "answered_for_others": 0,
        "error_rate": None, "ttft_p50": None, "ttft_p95": None, "total_p50": None, "total_p95": None}


def percentile(values, p):
    """Nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def _stats(calls):
    """Per expert name: calls it was chosen for, its errors (a fallback is an error of the chosen expert), and the
    latencies of the answers it gave (its own or as somebody's fallback)."""
    out = {}

    def entry(name):
        return out.setdefault(name, {"calls": 0, "errors": 0, "fallbacks": 0, "aborted": 0, "answered": 0,
                                     "answered_for_others": 0, "ttft": [], "total": []})

    for c in calls:
        chosen = entry(c["primary"])
        chosen["calls"] += 1
        chosen["errors"] += c["status"] in ("error", "fallback")
        chosen["fallbacks"] += c["status"] == "fallback"
        chosen["aborted"] += c["status"] == "aborted"
        if c["status"] in ("ok", "fallback"):
            answerer = entry(c["expert"])
            answerer["answered"] += 1
            answerer["answered_for_others"] += c["expert"] != c["primary"]
            if c["ttft_ms"] is not None:
                answerer["ttft"].append(c["ttft_ms"])
            if c["total_ms"] is not None:
                answerer["total"].append(c["total_ms"])
    for s in out.values():
        ttft, total = s.pop("ttft"), s.pop("total")
        s.update(error_rate=s["errors"] / s["calls"] if s["calls"] else None,
                 ttft_p50=percentile(ttft, 0.5), ttft_p95=percentile(ttft, 0.95),
                 total_p50=percentile(total, 0.5), total_p95=percentile(total, 0.95))
    return out


def merged_breakers(now=None):
    """{expert: {state, failures, processes, states}} over every process's snapshot still in the cache.

    A snapshot is taken after a call; an ``open`` breaker whose retry time has passed since then has turned
    ``half_open`` (it would let a trial through), so it is reported as such.
    """
    now = time.time() if now is None else now
    ids = cache.get(INDEX_KEY) or []
    snapshots = cache.get_many([BREAKER_KEY.format(pid) for pid in ids]).values()
    out = {}
    for snap in snapshots:
        for name, b in (snap.get("experts") or {}).items():
            state = b.get("state", "closed")
            if state == "open" and b.get("retry_in_s") is not None and snap["at"] + b["retry_in_s"] <= now:
                state = "half_open"
            m = out.setdefault(name, {"state": "closed", "failures": 0, "processes": 0, "states": {}})
            m["processes"] += 1
            m["states"][state] = m["states"].get(state, 0) + 1
            m["failures"] = max(m["failures"], b.get("failures", 0))
            if STATE_RANK.get(state, 0) > STATE_RANK[m["state"]]:
                m["state"] = state
    return out


def serving_snapshot(window_s=900, max_calls=5000):
    """What the dashboard's serving panel shows: ``experts`` (pool order, with backend and per-expert numbers over
    the last ``window_s`` seconds), ``breakers`` (merged), and ``calls`` (newest first, at most ``max_calls``,
    ``truncated`` if there were more) for the page to keep its sliding window."""
    now = timezone.now()
    rows = list(ExpertCall.objects.filter(created_at__gte=now - timedelta(seconds=window_s)).order_by("-id")
                .values_list("id", "created_at", "status", "fallback_reason", "ttft_ms", "total_ms", "simulated",
                             "completion_tokens", "primary__name", "expert__name")[:max_calls + 1])
    calls = [{"id": pk, "expert": expert or primary, "primary": primary, "status": status,
              "fallback_reason": reason, "ttft_ms": ttft, "total_ms": total, "simulated": simulated,
              "tokens": tokens, "t": at.timestamp()}
             for pk, at, status, reason, ttft, total, simulated, tokens, primary, expert in rows[:max_calls]
             if primary]
    stats = _stats(calls)
    experts = [{"name": e.name, "backend": e.backend, "simulated": e.simulated, "enabled": e.enabled,
                **stats.get(e.name, IDLE)}
               for e in Expert.objects.all() if e.enabled or e.name in stats]
    return {"t": now.timestamp(), "window_s": window_s, "experts": experts, "breakers": merged_breakers(),
            "calls": calls, "truncated": len(rows) > max_calls}
